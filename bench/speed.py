#!/usr/bin/env python3
"""HPSS speed: Demixer's streaming four-stem engine (`cargo bench --bench hpss`) against
`librosa.effects.hpss` (STFT, median-filter HPSS, two inverse STFTs) on the same 10 s of stereo
44.1 kHz audio with the same STFT and kernel settings, both on one core, in one run. Writes the
table into BENCHMARKS.md.

    python3 bench/speed.py          (needs librosa, soundfile; runs cargo)
"""
import os

os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")

import pathlib  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from benchmarks_md import replace_section  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SR, SECONDS = 44100, 10


def cargo(*args):
    return subprocess.run(["cargo", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def presets():
    """Each preset's settings at 44.1 kHz, as the engine computes them (`demixer presets`)."""
    out = cargo("run", "--release", "-q", "-p", "demixer-cli", "--", "presets", "--sample-rate", str(SR))
    result = {}
    for line in out.splitlines():
        name, *fields = line.split()
        result[name] = {k: v for k, v in (f.split("=") for f in fields if "=" in f)}
    return result


def engine_seconds():
    """Median seconds per preset for 10 s of audio, from the divan benchmark."""
    out = cargo("bench", "-p", "demixer-dsp", "--bench", "hpss")
    times = {}
    for name, median in re.findall(r"[├╰]─ (\w+)\s+\S+ \S+\s+│ \S+ \S+\s+│ (\S+ \S+)", out):
        value, unit = median.split()
        times[name] = float(value) * {"s": 1, "ms": 1e-3, "µs": 1e-6}[unit]
    return times


def librosa_seconds(audio, config, repeats=3):
    """Best of `repeats` timings of librosa's HPSS on both channels."""
    kernel = (int(config["harmonic"]), int(config["percussive"]))
    margin = tuple(float(m) for m in config["margin"].split("/"))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        librosa.effects.hpss(audio, kernel_size=kernel, margin=margin, power=float(config["power"]),
                             n_fft=int(config["fft"]), hop_length=int(config["hop"]))
        best = min(best, time.perf_counter() - start)
    return best


def main():
    song, sr = sf.read(ROOT / "examples" / "song.flac", dtype="float32")
    assert sr == SR
    sf.write(ROOT / "dsp" / "benches" / "song.wav", song, SR, subtype="FLOAT")
    audio = np.tile(song.T, (1, SECONDS * SR // len(song) + 1))[:, :SECONDS * SR]
    configs = presets()
    engine = engine_seconds()
    rows = []
    for name, config in configs.items():
        reference = librosa_seconds(audio, config)
        rows.append(f"| {name} | {config['fft']} / {config['hop']} | {config['harmonic']} × {config['percussive']} "
                    f"| {SECONDS / engine[name]:.0f}× | {SECONDS / reference:.1f}× | {reference / engine[name]:.0f}× |")
    table = "\n".join([
        f"Demixer's streaming HPSS engine (four stems, 512-sample blocks) against `librosa.effects.hpss` "
        f"(librosa {librosa.__version__}; harmonic and percussive only) on the same {SECONDS} s of stereo "
        f"44.1 kHz audio (the example song, looped), same STFT, kernels, margins and power, one core each. "
        f"Real-time factor = audio seconds per CPU second.",
        "",
        "| preset | FFT / hop | kernels (frames × bins) | Demixer RTF | librosa RTF | Demixer ÷ librosa |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores. "
        "Command: `python3 bench/speed.py`.",
    ])
    replace_section(ROOT / "BENCHMARKS.md", "speed", "HPSS speed", table)
    print(table)


if __name__ == "__main__":
    main()
