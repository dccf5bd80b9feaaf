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
    with the main bus alone ("Reference Delay") or with Demixer's buses ("... (stem buses)")."""
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
