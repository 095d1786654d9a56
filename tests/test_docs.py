"""The code blocks of README.md and docs/**/*.md run, and print what they say.

Each ```python block is executed (blocks of one file share a namespace, in
order), except a block right after a `<!-- not run ... -->` comment. A line
`print(...)  # text` must print exactly `text`.
"""
import contextlib
import io
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
BLOCK = re.compile(r"(<!--[^>]*-->\s*)?```python\n(.*?)```", re.S)
EXPECT = re.compile(r"^(\s*print\(.*\))\s+#\s?(.*)$")


def blocks(path):
    for m in BLOCK.finditer(path.read_text()):
        if m.group(1) and "not run" in m.group(1):
            continue
        yield path.read_text()[: m.start()].count("\n") + 1, m.group(2)


def run_block(code, namespace, where):
    """Execute `code`; each `print(...)  # text` line must print exactly `text`."""
    lines = code.splitlines()
    for i, line in enumerate(lines):
        m = EXPECT.match(line)
        if m:
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f"{indent}__check__(lambda: {m.group(1).strip()}, {m.group(2)!r}, {i + 1})"

    def __check__(printer, expected, lineno):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            printer()
        got = buf.getvalue().strip()
        assert got == expected.strip(), f"{where}+{lineno}: printed {got!r}, the doc says {expected!r}"

    namespace["__check__"] = __check__
    exec(compile("\n".join(lines), str(where), "exec"), namespace)


# Pages without a python block (protocols.md: prose and tables) have nothing to run.
DOCS = [p for p in DOCS if any(True for _ in blocks(p))]


def _id(path):
    """README.md, engine.md, api/nn.md: the path below docs/ (readable test ids)."""
    return path.relative_to(ROOT / "docs").as_posix() if path.parent != ROOT else path.name


@pytest.mark.parametrize("path", DOCS, ids=[_id(p) for p in DOCS])
def test_doc_code_blocks_run_and_print_what_they_claim(path):
    namespace = {}
    found = False
    for lineno, code in blocks(path):
        found = True
        run_block(code, namespace, f"{_id(path)}:{lineno}")
    assert found, f"{_id(path)} has no python blocks (it is not in DOCS for that reason)"
