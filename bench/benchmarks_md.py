"""Keeps BENCHMARKS.md as sections that each benchmark script rewrites on its own."""
import pathlib


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
