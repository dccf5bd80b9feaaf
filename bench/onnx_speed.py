#!/usr/bin/env python3
"""ONNX engine speed: the real-time factor of a full-size HT-Demucs (demucs' HTDemucs with random
weights, exported by bench/export_htdemucs.py) through Demixer's streaming engine
(`cargo bench --bench onnx`), against the Python reference (onnxruntime + numpy chunked overlap-add,
dsp/tests/fixtures/onnx/reference.py) on the same audio with the same ONNX Runtime, in one run.
Writes the table into BENCHMARKS.md.

    python3 bench/export_htdemucs.py bench/out/htdemucs_random.onnx   # once (needs torch, demucs)
    python3 bench/onnx_speed.py [--device cpu|cuda] [--seconds 30]
"""
import argparse
import os
import pathlib
import platform
import sys
import time

import numpy as np
import onnxruntime as ort

from benchmarks_md import cargo_bench, replace_section

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dsp" / "tests" / "fixtures" / "onnx"))
from reference import separate_chunked  # noqa: E402

SR = 44100


def demixer(model, seconds, device):
    return cargo_bench("onnx", model=model, seconds=seconds, device=device)


def reference(model, seconds, device):
    """Seconds the Python reference takes for the same signal (the same tones as the Rust bench)."""
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(model), providers=providers)
    segment = session.get_inputs()[0].shape[-1]
    i = np.arange(int(seconds * SR))
    tone = lambda f: np.sin(2 * np.pi * f * i / SR)  # noqa: E731
    mix = np.stack([0.2 * tone(220) + 0.1 * tone(55), 0.2 * tone(330) + 0.1 * tone(82.4)]).astype(np.float32)
    zeros = np.zeros((1, 2, segment), np.float32)
    session.run(["stems"], {"mix": zeros})  # warm-up, as Demixer's load does
    started = time.perf_counter()
    separate_chunked(session, segment, mix)
    return time.perf_counter() - started, session.get_providers()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=ROOT / "bench" / "out" / "htdemucs_random.onnx", type=pathlib.Path)
    parser.add_argument("--seconds", default=30, type=float)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    ours = demixer(args.model.resolve(), args.seconds, args.device)
    ref_seconds, ref_provider = reference(args.model, args.seconds, args.device)
    ref_rtf = args.seconds / ref_seconds
    size_mb = args.model.stat().st_size / 1e6
    table = "\n".join([
        f"Full-size HT-Demucs architecture (demucs' `HTDemucs`, random weights, {size_mb:.0f} MB ONNX, "
        f"7.8 s segments, 25 % overlap) on {args.seconds:.0f} s of stereo 44.1 kHz audio. Demixer: the "
        f"streaming engine (`dsp::onnx`, overlap-add in Rust). Reference: the Python chunked overlap-add "
        f"(`reference.py`, onnxruntime {ort.__version__}) on the same audio, same library, same threads "
        f"(ONNX Runtime's default). Real-time factor = audio seconds per wall-clock second; model "
        f"loading and warm-up excluded (Demixer's load took {ours['load']:.1f} s).",
        "",
        "| device | Demixer RTF | reference RTF | Demixer ÷ reference |",
        "|---|---|---|---|",
        f"| {ours['provider']} | {ours['realtime_factor']:.2f}× | {ref_rtf:.2f}× ({ref_provider}) "
        f"| {ours['realtime_factor'] / ref_rtf:.2f} |",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores. ONNX Runtime "
        f"{ort.__version__}, ort 2.0.0-rc.15. Commands: `python3 bench/export_htdemucs.py "
        f"bench/out/htdemucs_random.onnx`, then `python3 bench/onnx_speed.py --device {args.device}`.",
    ])
    replace_section(ROOT / "BENCHMARKS.md", f"onnx-{args.device}", f"ONNX engine speed ({args.device.upper()})", table)
    print(table)


if __name__ == "__main__":
    main()
