"""`demixer models` against a model server on 127.0.0.1 that the test starts (no test touches the
real network): a catalog served over HTTP, fixture models standing in for the published files,
and a server that answers 404, cuts a transfer in the middle, or stalls. Each case checks what the
user reads and that the library holds exactly what it should. The tool is the release build
(tests/run.sh builds it); ONNX Runtime comes from DEMIXER_ORT_DYLIB (tests/run.sh sets it)."""
import hashlib
import json
import pathlib

import numpy as np
import pytest
import soundfile as sf

from model_server import FIXTURES, STEMS, TOOL, ModelServer, demixer, installed, sha256, tool_environment

def entry(name, file, url, sha=None, size=None):
    return {"name": name, "kind": "segment", "stems": STEMS, "sample_rate": 44100, "segment": 2048,
            "size": size, "file": file, "url": url, "sha256": sha, "licence": "test fixture",
            "source": "tests/models (a fixture standing in for a published model)"}


@pytest.fixture
def env(tmp_path):
    """A model server with a catalog, an empty library, and the environment that points the tool
    at both."""
    assert TOOL.exists(), f"{TOOL} is missing: run `cargo build --release -p demixer-cli` first"
    server = ModelServer()
    four = (FIXTURES / "four.onnx").read_bytes()
    server.files["four.onnx"] = four
    good_sha = hashlib.sha256(four).hexdigest()
    catalog = {"models": [
        entry("good", "four.onnx", f"{server.base}/four.onnx", sha=good_sha, size=len(four)),
        entry("wrong-hash", "four.onnx", f"{server.base}/four.onnx", sha="0" * 64),
        entry("wrong-size", "four.onnx", f"{server.base}/four.onnx", size=len(four) + 1),
        entry("unpinned", "four.onnx", f"{server.base}/four.onnx"),
        entry("cut", "four.onnx", f"{server.base}/cut/four.onnx"),
        entry("missing", "gone.onnx", f"{server.base}/gone.onnx"),
        entry("stalls", "four.onnx", f"{server.base}/stall/four.onnx"),
        entry("not-a-model", "page.onnx", f"{server.base}/nolength/page.onnx"),
    ]}
    server.files["page.onnx"] = b"<html><body>Sign in to download this file</body></html>"
    server.files["catalog.json"] = json.dumps(catalog).encode()
    library = tmp_path / "library"
    environment = tool_environment(library, f"{server.base}/catalog.json")
    yield server, library, environment
    server.close()


def test_a_new_user_downloads_a_catalog_model_and_separates_with_it(env, tmp_path):
    server, library, environment = env
    listed = demixer(environment, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "good" in listed.stdout and "ONNX Runtime" in listed.stdout and "CPU: yes" in listed.stdout

    got = demixer(environment, "models", "download", "good")
    assert got.returncode == 0, got.stderr
    assert "matches the catalog" in got.stdout
    model = library / "good" / "four.onnx"
    assert model.read_bytes() == server.files["four.onnx"]
    assert installed(library) == ({"good"}, set())
    assert "installed" in demixer(environment, "models", "list").stdout

    info = demixer(environment, "models", "info", "good")
    assert info.returncode == 0, info.stderr
    assert "Sources: drums, bass, other, vocals" in info.stdout
    assert f"SHA-256: {sha256(model)} (matches the library's record)" in info.stdout
    onnx = pytest.importorskip("onnx")
    parameters = sum(int(np.prod(t.dims)) for t in onnx.load(str(model)).graph.initializer)
    assert f"Parameters: {parameters} " in info.stdout

    song = tmp_path / "song.wav"
    t = np.arange(44100) / 44100
    mix = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1) * 0.3
    sf.write(song, mix, 44100, subtype="FLOAT")
    separated = demixer(environment, "separate", song, "--model", "good", "-o", tmp_path / "stems")
    assert separated.returncode == 0, separated.stderr
    stems = [sf.read(tmp_path / "stems" / "song" / f"{stem}.wav")[0] for stem in STEMS]
    assert np.max(np.abs(sum(stems) - mix)) < 1e-4, "the model's stems sum to the song"


@pytest.mark.parametrize("name,says", [
    ("wrong-hash", "does not match the expected"),
    ("wrong-size", "refused"),
    ("cut", "cut after"),
    ("missing", "HTTP 404"),
])
def test_a_bad_download_is_refused_and_leaves_nothing(env, name, says):
    server, library, environment = env
    got = demixer(environment, "models", "download", name)
    assert got.returncode != 0
    assert says in got.stderr and "nothing was installed" in got.stderr, got.stderr
    assert installed(library) == (set(), set())
    listed = demixer(environment, "models", "list").stdout
    assert listed.split("Installed in")[1].split("Catalog")[0].strip().endswith("(none)"), listed


def test_a_stalled_server_is_given_up_within_the_stall_time(env):
    server, library, environment = env
    got = demixer(environment, "models", "download", "stalls", "--stall-timeout", "1", timeout=30)
    assert got.returncode != 0
    assert "sent nothing for 1 s" in got.stderr, got.stderr
    assert installed(library) == (set(), set())


def test_the_first_download_pins_the_hash_and_a_changed_file_is_refused(env):
    server, library, environment = env
    first = demixer(environment, "models", "download", "unpinned")
    assert first.returncode == 0, first.stderr
    assert "pinned now" in first.stdout
    pinned = sha256(library / "unpinned" / "four.onnx")
    assert json.loads((library / "pins.json").read_text()) == {"unpinned": pinned}
    assert demixer(environment, "models", "remove", "unpinned").returncode == 0
    # The same address now serves another four-source model: the pin refuses it.
    server.files["four.onnx"] = (FIXTURES / "htdemucs_tiny.onnx").read_bytes()
    second = demixer(environment, "models", "download", "unpinned")
    assert second.returncode != 0
    assert f"does not match the expected {pinned}" in second.stderr, second.stderr
    assert "demixer models unpin unpinned" in second.stderr and "pins.json" in second.stderr, second.stderr
    assert installed(library) == (set(), set())
    # The publisher really changed the file: forget the pin, and the new file is pinned.
    assert "Forgot the pinned SHA-256" in demixer(environment, "models", "unpin", "unpinned").stdout
    third = demixer(environment, "models", "download", "unpinned")
    assert third.returncode == 0 and "pinned now" in third.stdout, third.stderr


def test_what_is_not_a_model_is_neither_installed_nor_pinned(env):
    server, library, environment = env
    got = demixer(environment, "models", "download", "not-a-model")
    assert got.returncode != 0
    assert "refused" in got.stderr and "nothing was installed" in got.stderr, got.stderr
    assert installed(library) == (set(), set())
    assert not (library / "pins.json").exists() or "not-a-model" not in (library / "pins.json").read_text()


def test_a_damaged_record_can_be_removed_and_names_that_look_like_files_are_refused(env):
    server, library, environment = env
    assert demixer(environment, "models", "download", "good").returncode == 0
    record = library / "good" / "demixer-model.json"
    record.write_text(record.read_text().replace('"sha256": "', '"sha256": "x'))
    listed = demixer(environment, "models", "list")
    assert listed.returncode == 0 and "damaged" in listed.stdout, listed.stdout
    again = demixer(environment, "models", "download", "good")
    assert again.returncode != 0 and "demixer models remove good" in again.stderr, again.stderr
    assert demixer(environment, "models", "remove", "good").returncode == 0
    assert installed(library) == (set(), set())
    named = demixer(environment, "models", "add", FIXTURES / "four.onnx", "--name", "m.onnx")
    assert named.returncode != 0 and "not a model name" in named.stderr, named.stderr


def test_a_streaming_model_is_recognised(env):
    server, library, environment = env
    added = demixer(environment, "models", "add", FIXTURES / "published_interface.onnx", "--name", "hs-tasnet-test")
    assert added.returncode == 0, added.stderr
    assert "(streaming)" in added.stdout and "latency 5.8 ms at 44.1 kHz" in added.stdout, added.stdout
    info = demixer(environment, "models", "info", "hs-tasnet-test")
    assert "Kind: streaming" in info.stdout and "Hop: 128 samples" in info.stdout, info.stdout
    assert "States: 8 (paired by name)" in info.stdout and "audio_history -> next_audio_history" in info.stdout


def test_add_checks_the_contract(env, tmp_path):
    server, library, environment = env
    broken = demixer(environment, "models", "add", FIXTURES / "wrong_input.onnx")
    assert broken.returncode != 0
    assert "refused" in broken.stderr and "no input `mix`" in broken.stderr, broken.stderr
    assert installed(library) == (set(), set())

    added = demixer(environment, "models", "add", FIXTURES / "sidecar.onnx", "--name", "three")
    assert added.returncode == 0, added.stderr
    # Its sidecar (names and rate) comes along.
    assert (library / "three" / "sidecar.json").exists()
    assert "vocals/drums/bass at 22050 Hz" in added.stdout
    bag = demixer(environment, "models", "add", FIXTURES / "bag" / "bag.json", "--name", "bag")
    assert bag.returncode == 0, bag.stderr
    assert {p.name for p in (library / "bag").iterdir()} >= {"bag.json", *(f"{s}.onnx" for s in STEMS)}
    again = demixer(environment, "models", "add", FIXTURES / "four.onnx", "--name", "three")
    assert again.returncode != 0 and "installed already" in again.stderr
    missing = demixer(environment, "separate", tmp_path / "x.wav", "--model", "nothing-here")
    assert missing.returncode != 0
    assert "demixer models download nothing-here" in missing.stderr, missing.stderr


def wheel(path):
    """A wheel like PyPI's onnxruntime one: the installed runtime library under
    onnxruntime/capi/ next to Python files and the Python extension, which are left out."""
    import glob
    import os
    import zipfile
    library = os.environ.get("DEMIXER_ORT_DYLIB") or sorted(glob.glob(
        os.path.join(os.path.dirname(__import__("onnxruntime").__file__), "capi", "libonnxruntime.so.*")))[-1]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.write(library, "onnxruntime/capi/" + pathlib.Path(library).name)
        archive.writestr("onnxruntime/__init__.py", "")
        archive.writestr("onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so", b"\0")
    return path.read_bytes()


@pytest.mark.parametrize("good", [True, False], ids=["verified", "wrong-sha256"])
def test_the_runtime_comes_from_the_index_without_python(env, tmp_path, good):
    server, library, environment = env
    body = wheel(tmp_path / "w.whl")
    name = "onnxruntime-1.31.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
    server.files[name] = body
    digest = hashlib.sha256(body).hexdigest() if good else "f" * 64
    # The index's JSON simple API (PEP 691), as pip reads it: every release's files on one page.
    page = {"meta": {"api-version": "1.1"}, "name": "onnxruntime", "files": [
        {"filename": "onnxruntime-1.30.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
         "url": f"{server.base}/old.whl", "size": 1, "hashes": {"sha256": "1" * 64}},
        {"filename": "onnxruntime-1.31.1-cp311-cp311-win_amd64.whl", "url": f"{server.base}/nothing.whl",
         "size": 1, "hashes": {"sha256": "0" * 64}},
        {"filename": name, "url": f"{server.base}/{name}", "size": len(body), "hashes": {"sha256": digest}},
    ]}
    # /x/simple/onnxruntime/ is served as "onnxruntime" by the server's last path part.
    server.files["onnxruntime"] = json.dumps(page).encode()
    environment = {k: v for k, v in environment.items() if k != "DEMIXER_ORT_DYLIB"}
    environment["DEMIXER_PYPI"] = f"{server.base}/x"
    got = demixer(environment, "models", "runtime", "--download")
    if not good:
        assert got.returncode != 0 and "does not match the expected" in got.stderr, got.stderr
        assert not (library / ".runtime").exists() or not any((library / ".runtime").iterdir())
        assert installed(library) == (set(), set())
        return
    assert got.returncode == 0, got.stderr
    kept = sorted(p.name for p in (library / ".runtime" / "onnxruntime-1.31.1").iterdir())
    assert kept == ["libonnxruntime.so.1.31.1"], kept
    assert f"from {library / '.runtime'}" in got.stdout and "CPU: yes" in got.stdout, got.stdout
    # The installed runtime is found without any variable, and a model loads with it.
    info = demixer(environment, "models", "info", FIXTURES / "four.onnx")
    assert info.returncode == 0 and "Sources: drums, bass, other, vocals" in info.stdout, info.stderr
