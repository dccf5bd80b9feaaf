"""The quality harness on the smoke set (2 songs x 8 s): every Demixer engine must beat the
mixture-as-estimate floor on every stem, by both SDR measures."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))

import quality  # noqa: E402
import songs  # noqa: E402


def test_every_stem_beats_the_mixture_floor():
    summary, text = quality.run(smoke=True, font=songs.soundfont())
    print(text)
    assert any(engine.startswith("Demixer") for engine in summary)
    assert quality.check_against_floor(summary) == []


def test_scoring_refuses_mismatched_estimates():
    import numpy as np
    import pytest

    reference = np.zeros((1000, 2), dtype=np.float32)
    with pytest.raises(quality.ScoringError, match="sample rate"):
        quality.align(reference, reference, 44100, 48000, "x")
    with pytest.raises(quality.ScoringError, match="length"):
        quality.align(reference, reference[:900], 44100, 44100, "x")
    trimmed, estimate = quality.align(reference, reference[:990], 44100, 44100, "x")
    assert len(trimmed) == len(estimate) == 990
