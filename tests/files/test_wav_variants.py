"""Every WAV layout libsndfile (through the `soundfile` package) writes and reads, in RIFF/WAVE and
in its 64-bit containers RF64 and Sony Wave64 (all but Wave64's GSM 6.10, which symphonia does not
decode), decodes in the `demixer` command-line tool to the same samples: the stems of each file sum
to libsndfile's decoding of it. For IMA and MS ADPCM, libsndfile and ffmpeg disagree with each other
(by up to 0.0034, measured on this signal); Demixer (symphonia) agrees with ffmpeg to 2e-8, so those
two are held to ffmpeg's decoding. The tool is the release build (`cargo build --release -p
demixer-cli`, which tests/run.sh does)."""
import pathlib
import subprocess

import numpy as np
import pytest
import soundfile as sf

TOOL = pathlib.Path(__file__).resolve().parents[2] / "target" / "release" / "demixer"
SR = 22050
ADPCM = ("IMA_ADPCM", "MS_ADPCM")
VARIANTS = [
    ("WAV", subtype) for subtype in
    ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM")
] + [("WAVEX", subtype) for subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "ULAW", "ALAW")] + [
    ("RF64", subtype) for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW")
] + [
    ("W64", subtype) for subtype in
    ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM")
]


def chord(seconds=1.5):
    t = np.arange(int(SR * seconds)) / SR
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 3300 * t)
    right = 0.25 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sign(np.sin(2 * np.pi * 4 * t)) * np.exp(-(t % 0.25) * 30)
    return np.stack([left, right], axis=1)


@pytest.mark.parametrize("container,subtype", VARIANTS, ids=[f"{c}-{s}" for c, s in VARIANTS])
def test_stems_sum_to_what_libsndfile_decodes(tmp_path, container, subtype):
    song = tmp_path / ("song.w64" if container == "W64" else "song.wav")
    sf.write(song, chord(), SR, subtype=subtype, format=container)
    reference, rate = sf.read(song, dtype="float64", always_2d=True)
    if subtype in ADPCM:
        decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(song), "-f", "f64le", "-"], capture_output=True,
                                 check=True).stdout
        reference = np.frombuffer(decoded, "<f8").reshape(-1, 2)
    assert TOOL.exists(), f"{TOOL} is missing: run `cargo build --release -p demixer-cli` first"
    result = subprocess.run([str(TOOL), "separate", str(song), "-o", str(tmp_path / "out")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    stems = [sf.read(tmp_path / "out" / "song" / f"{stem}.wav", always_2d=True) for stem in
             ("drums", "bass", "other", "vocals")]
    assert all(r == rate for _, r in stems)
    total = sum(audio for audio, _ in stems)
    assert total.shape == reference.shape, f"{total.shape} frames decoded, libsndfile {reference.shape}"
    assert np.abs(total - reference).max() < 1e-4
