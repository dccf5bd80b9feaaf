#!/usr/bin/env python3
"""Streaming engine speed: a stateful model of realistic size through Demixer's per-hop engine
(`cargo bench --bench streaming`), against the Python reference stepping the same model with
onnxruntime (one thread each), in one run. Writes the table into BENCHMARKS.md.

The model has HS-TasNet's size (about 9.4 M parameters, 37.5 MB) and its streaming shape: hop 128,
stereo, two recurrent layers carried as states, four sources. It is made here with random weights
(PyTorch is not needed): the hop (256 values) through a dense layer, two GRU layers of 925 units
run once per hop, a dense layer to 4 x 2 x 128 mask logits, softmax over the sources, times the hop.

    python3 bench/streaming_speed.py [--seconds 20] [--device cpu|cuda]
"""
import argparse
import os
import pathlib
import platform
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from benchmarks_md import cargo_bench, replace_section

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL = ROOT / "bench" / "out" / "streaming_9m.onnx"
SR, HOP, HIDDEN = 44100, 128, 925


def make_model(path):
    rng = np.random.default_rng(5)

    def weight(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32), name)

    inits = [
        weight("w_in", 2 * HOP, 256), weight("w1", 1, 3 * HIDDEN, 256), weight("r1", 1, 3 * HIDDEN, HIDDEN),
        weight("b1", 1, 6 * HIDDEN), weight("w2", 1, 3 * HIDDEN, HIDDEN), weight("r2", 1, 3 * HIDDEN, HIDDEN),
        weight("b2", 1, 6 * HIDDEN), weight("w_out", HIDDEN, 4 * 2 * HOP),
        numpy_helper.from_array(np.array([1, 2 * HOP], np.int64), "flat"),
        numpy_helper.from_array(np.array([1, 1, 256], np.int64), "seq"),
        numpy_helper.from_array(np.array([1, 1, HIDDEN], np.int64), "seq_h"),
        numpy_helper.from_array(np.array([1, 4, 2, HOP], np.int64), "stems_shape"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Reshape", ["audio", "flat"], ["x"]),
        helper.make_node("MatMul", ["x", "w_in"], ["x1"]),
        helper.make_node("Tanh", ["x1"], ["x2"]),
        helper.make_node("Reshape", ["x2", "seq"], ["x3"]),
        helper.make_node("GRU", ["x3", "w1", "r1", "b1", "", "h1"], ["y1", "h1_out"], hidden_size=HIDDEN),
        helper.make_node("Reshape", ["y1", "seq_h"], ["y1s"]),
        helper.make_node("GRU", ["y1s", "w2", "r2", "b2", "", "h2"], ["y2", "h2_out"], hidden_size=HIDDEN),
        helper.make_node("Reshape", ["y2", "seq_h"], ["y2s"]),
        helper.make_node("MatMul", ["y2s", "w_out"], ["logits_flat"]),
        helper.make_node("Reshape", ["logits_flat", "stems_shape"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["masks"], axis=1),
        helper.make_node("Unsqueeze", ["audio", "axis1"], ["audio4"]),
        helper.make_node("Mul", ["masks", "audio4"], ["stems"]),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "streaming_9m",
        [helper.make_tensor_value_info("audio", f, [1, 2, HOP]), helper.make_tensor_value_info("h1", f, [1, 1, HIDDEN]),
         helper.make_tensor_value_info("h2", f, [1, 1, HIDDEN])],
        [helper.make_tensor_value_info("stems", f, [1, 4, 2, HOP]),
         helper.make_tensor_value_info("h1_out", f, [1, 1, HIDDEN]),
         helper.make_tensor_value_info("h2_out", f, [1, 1, HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {"sources": "drums,bass,other,vocals", "sample_rate": SR, "latency": 2 * HOP}.items():
        model.metadata_props.add(key=key, value=str(value))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def demixer(seconds, device):
    return cargo_bench("streaming", model=MODEL, seconds=seconds, device=device)


def reference(seconds, device):
    """Per-hop times (µs) of onnxruntime stepping the model from Python, one thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(MODEL), options, providers=providers)
    states = {"h1": np.zeros((1, 1, HIDDEN), np.float32), "h2": np.zeros((1, 1, HIDDEN), np.float32)}
    session.run(None, {"audio": np.zeros((1, 2, HOP), np.float32), **states})
    times = []
    for k in range(int(seconds * SR / HOP)):
        i = np.arange(k * HOP, (k + 1) * HOP)
        hop = np.stack([0.2 * np.sin(2 * np.pi * 220 * i / SR), 0.2 * np.sin(2 * np.pi * 330 * i / SR)])
        started = time.perf_counter()
        _, h1, h2 = session.run(None, {"audio": hop[None].astype(np.float32), **states})
        times.append((time.perf_counter() - started) * 1e6)
        states = {"h1": h1, "h2": h2}
    return np.array(times), session.get_providers()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", default=20, type=float)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    parameters = make_model(MODEL)
    ours = demixer(args.seconds, args.device)
    ref, ref_provider = reference(args.seconds, args.device)
    period = HOP * 1e6 / SR
    ref_rtf = args.seconds / (ref.sum() / 1e6)
    table = "\n".join([
        f"A stateful model of HS-TasNet's size ({parameters / 1e6:.2f} M parameters, "
        f"{MODEL.stat().st_size / 1e6:.1f} MB ONNX, random weights: two GRU layers of {HIDDEN} units run once "
        f"per hop, made by the script) on {args.seconds:.0f} s of stereo 44.1 kHz audio, hop {HOP} "
        f"(period {period:.0f} µs), one ONNX Runtime thread. Demixer: `HopStream` (`dsp::onnx::streaming`), "
        f"one hop per call, state copies included. Reference: onnxruntime {ort.__version__} stepping the same "
        f"model from Python. Real-time factor = audio seconds per second of inference (one core).",
        "",
        "| | real-time factor | per hop p50 | p99 | max | share of one core |",
        "|---|---|---|---|---|---|",
        f"| Demixer ({ours['provider']}) | {ours['realtime_factor']:.1f}× | {ours['p50_us']:.0f} µs "
        f"| {ours['p99_us']:.0f} µs | {ours['max_us']:.0f} µs | {100 * ours['core_share']:.1f} % |",
        f"| reference ({ref_provider}) | {ref_rtf:.1f}× | {np.percentile(ref, 50):.0f} µs "
        f"| {np.percentile(ref, 99):.0f} µs | {ref.max():.0f} µs | {100 / ref_rtf:.1f} % |",
        "",
        f"Demixer ÷ reference (real-time factor): {ours['realtime_factor'] / ref_rtf:.2f}. p99 is "
        f"{100 * ours['p99_us'] / period:.0f} % of the hop period. The audio thread's cost does not depend "
        f"on the engine (it only moves samples through rings and mixes): see the audio-thread benchmark. "
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores. Command: "
        f"`python3 bench/streaming_speed.py --device {args.device}`.",
    ])
    replace_section(ROOT / "BENCHMARKS.md", f"streaming-{args.device}", f"Streaming engine speed ({args.device.upper()})",
                    table)
    print(table)


if __name__ == "__main__":
    main()
