"""Shared pieces of the `demixer models` tests (a helper module, not a conftest: tests/hosts has the
conftest that `from conftest import` finds when the whole suite runs): a model server on 127.0.0.1
and the tool."""
import hashlib
import http.server
import pathlib
import subprocess
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOL = ROOT / "target" / "release" / "demixer"
FIXTURES = ROOT / "dsp" / "tests" / "fixtures" / "onnx"
STEMS = ["drums", "bass", "other", "vocals"]


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


class ModelServer:
    """Serves `files` (name -> bytes) and `catalog` on 127.0.0.1; `/cut/NAME` announces the whole
    file but sends half and closes; `/nolength/NAME` sends it without a size, ended by closing;
    `/stall/NAME` sends the headers and then nothing until the test ends."""

    def __init__(self):
        self.files = {}
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = self.path.strip("/").split("/")
                mode, name = (parts[0], parts[-1]) if len(parts) == 2 else ("plain", parts[-1])
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if mode != "nolength":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "stall":
                    self.wfile.flush()
                    server.release.wait(60)
                elif mode == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def demixer(environment, *args, timeout=60):
    return subprocess.run([str(TOOL), *map(str, args)], capture_output=True, text=True, env=environment,
                          timeout=timeout)


def installed(library):
    """Names of the models in the library, and anything else left in it besides pins."""
    if not library.exists():
        return set(), set()
    names = {p.name for p in library.iterdir() if p.is_dir() and not p.name.startswith(".")}
    staging = library / ".staging"
    leftovers = {p.name for p in staging.iterdir()} if staging.exists() else set()
    return names, leftovers


def tool_environment(library, catalog_url, **more):
    """The environment that points the tool at `library` and the catalog at `catalog_url` (and at
    whatever `more` names), with ONNX Runtime and HOME as the test runs them."""
    import os
    environment = {"DEMIXER_MODELS_DIR": str(library), "DEMIXER_CATALOG": catalog_url, "PATH": "/usr/bin:/bin", **more}
    for key in ("DEMIXER_ORT_DYLIB", "HOME"):
        if key in os.environ:
            environment[key] = os.environ[key]
    return environment

