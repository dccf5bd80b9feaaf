"""The committed golden outputs are what the Python reference computes with ONNX Runtime today."""

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

FIXTURES = Path(__file__).resolve().parents[2] / "dsp" / "tests" / "fixtures" / "onnx"
sys.path.insert(0, str(FIXTURES))

from reference import open_model, separate_chunked, transition_weights  # noqa: E402


def test_weights_are_demucs_triangles():
    assert np.allclose(transition_weights(4), [0.5, 1.0, 1.0, 0.5])


def test_golden_files_match_the_reference():
    mix, rate = sf.read(FIXTURES / "input.wav", dtype="float32", always_2d=True)
    models = [("four.onnx", "golden_four.wav"), ("six.onnx", "golden_six.wav"), ("htdemucs_tiny.onnx", "golden_htdemucs_tiny.wav")]
    for model, golden in models:
        stems = separate_chunked(*open_model(FIXTURES / model), np.ascontiguousarray(mix.T))
        expected, _ = sf.read(FIXTURES / golden, dtype="float32", always_2d=True)
        assert np.abs(stems.reshape(-1, stems.shape[-1]).T - expected).max() < 1e-6, model
