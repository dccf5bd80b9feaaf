"""Shared fixtures for the real-host tests: the bundles that `cargo xtask bundle demixer --release`
writes, and test signals."""
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUNDLES = ROOT / "target" / "bundled"


def bundle(name, package="demixer"):
    """The path of the bundle `name` in target/bundled; fails the test when it was not built."""
    path = BUNDLES / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo xtask bundle {package} --release` first")
    return str(path)


@pytest.fixture(scope="session")
def vst3_path():
    return bundle("Demixer.vst3")


@pytest.fixture(scope="session")
def clap_path():
    return bundle("Demixer.clap")


@pytest.fixture(scope="session")
def reference_path():
    """The reference plugins (tests/reference-delay): a delay of 1000 samples that reports 1000,
    with the main bus alone ("Reference Delay") or with Demixer's buses ("... (stem buses)"), and
    a probe with Demixer's buses whose main output is how many auxiliary output channels came with
    buffers ("Reference Bus Probe")."""
    return bundle("Reference Delay.vst3", "reference-delay")


def music(sample_rate=44100, seconds=3.0, seed=3):
    """Stereo test music: a panned chord, a centred bass line and noise hits, float32 [2, n]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    bass = np.sin(2 * np.pi * 55 * t)
    hits = rng.uniform(-1, 1, t.size) * np.exp(-(t % 0.25) * 40)
    left = 0.1 * chord + 0.3 * bass + 0.2 * hits
    right = 0.05 * chord + 0.3 * bass + 0.2 * hits
    return np.stack([left, right]).astype(np.float32)


# JUCE's MemoryBlock base64 (`toBase64Encoding`): "<size>." then 6-bit groups, least significant bit
# first, in JUCE's own alphabet. DawDreamer's `save_state` wraps a VST3 plugin's component state
# in it, inside JUCE's binary XML ("VC2!", a little-endian size, the XML text).
JUCE_BASE64 = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"


def juce_base64_decode(text):
    size, chars = text.split(".", 1)
    out = bytearray(int(size))
    for i, char in enumerate(chars):
        value = JUCE_BASE64.index(char)
        for bit in range(i * 6, i * 6 + 6):
            if bit // 8 < len(out) and value >> (bit - i * 6) & 1:
                out[bit // 8] |= 1 << (bit % 8)
    return bytes(out)


def juce_base64_encode(data):
    chars = []
    for i in range((len(data) * 8 + 5) // 6):
        value = sum(1 << (bit - i * 6) for bit in range(i * 6, i * 6 + 6)
                    if bit // 8 < len(data) and data[bit // 8] >> (bit % 8) & 1)
        chars.append(JUCE_BASE64[value])
    return f"{len(data)}." + "".join(chars)


def choose_model(plugin, model, state_file):
    """Points a DawDreamer plugin's saved model settings at `model` (a file or library name), the way
    a project that chose it is restored: save the state, edit Demixer's JSON inside, load it."""
    import json
    import re
    import struct
    plugin.save_state(str(state_file))
    blob = state_file.read_bytes()
    xml = blob[8:8 + struct.unpack("<I", blob[4:8])[0]].decode()
    encoded = re.search(r"<IComponent>([^<]*)</IComponent>", xml).group(1)
    state = json.loads(juce_base64_decode(encoded))
    settings = {"model": str(model), "sha256": "", "runtime": "", "device": "cpu", "threads": 1}
    state["fields"]["model"] = json.dumps(settings)
    xml = xml.replace(encoded, juce_base64_encode(json.dumps(state).encode()))
    body = xml.encode()
    state_file.write_bytes(blob[:4] + struct.pack("<I", len(body)) + body)
    plugin.load_state(str(state_file))
