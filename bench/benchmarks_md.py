"""Keeps BENCHMARKS.md as sections that each benchmark script rewrites on its own."""
import glob
import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def cargo_bench(bench, **settings):
    """Runs `cargo bench -p demixer-dsp --bench BENCH` with DEMIXER_BENCH_* `settings` (and ONNX
    Runtime from the `onnxruntime` wheel unless DEMIXER_ORT_DYLIB is set); returns its last line
    as JSON."""
    env = dict(os.environ, **{f"DEMIXER_BENCH_{k.upper()}": str(v) for k, v in settings.items()})
    if "DEMIXER_ORT_DYLIB" not in env:
        import onnxruntime
        capi = pathlib.Path(onnxruntime.__file__).parent / "capi"
        env["DEMIXER_ORT_DYLIB"] = sorted(glob.glob(str(capi / "libonnxruntime.so.*")))[-1]
    out = subprocess.run(["cargo", "bench", "-p", "demixer-dsp", "--bench", bench], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def replace_section(path, key, title, body):
    """Replaces (or appends) the section between `<!-- key -->` and `<!-- /key -->`."""
    path = pathlib.Path(path)
    text = path.read_text() if path.exists() else "# Benchmarks\n\nEach section is written by the script it names.\n"
    start, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    section = f"{start}\n## {title}\n\n{body}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
