"""The documentation: every code block of the README and of docs/ runs (or says on its first
line that it needs a download or a GPU), the solver-file schema holds for a shipped solver, and
the MkDocs site builds with --strict."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)
NOT_RUN = ("# needs a download", "# needs a GPU")
"""First lines of blocks the tests do not run: the page itself says why."""
FILE = re.compile(r"^# file: (\S+)\n")
"""A Python block that is a file the next blocks use (``# file: my_model.py``): written, not run."""


def code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block of a Markdown page, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def run_blocks(text: str, cwd: Path, where: str, timeout: float = 600) -> dict[str, int]:
    """Run a page's ``python`` and ``bash`` blocks in order in ``cwd`` (each block in its own
    process, with this interpreter's ``bin`` first on ``PATH``); raise ``AssertionError`` naming
    the block on the first failure. Returns how many blocks ran, were skipped or were files."""
    counts = {"ran": 0, "skipped": 0, "files": 0}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for k, (lang, code) in enumerate(code_blocks(text), start=1):
        if lang not in ("python", "bash"):
            continue
        if code.startswith(NOT_RUN):
            counts["skipped"] += 1
            continue
        if lang == "python" and (m := FILE.match(code)):
            (cwd / m.group(1)).write_text(code[m.end():])
            counts["files"] += 1
            continue
        command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"{where}, code block {k} ({lang}) failed with exit {done.returncode}:\n{code}\n"
                                 f"--- output:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
        counts["ran"] += 1
    return counts


@pytest.fixture
def page_dir(tmp_path):
    """A fresh folder that sees the repository's ``docs/`` (the shipped solver file) by its name."""
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    return tmp_path


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_code_block_runs(page, page_dir):
    counts = run_blocks(page.read_text(), page_dir, str(page.relative_to(ROOT)))
    assert counts["ran"] + counts["skipped"] + counts["files"] == sum(
        lang in ("python", "bash") for lang, _ in code_blocks(page.read_text()))


def test_a_broken_block_fails_naming_it(tmp_path):
    page = "text\n\n```python\nprint('fine')\n```\n\n```bash\ns4s no-such-command\n```\n"
    with pytest.raises(AssertionError, match=r"page.md, code block 2 \(bash\) failed"):
        run_blocks(page, tmp_path, "page.md")
    broken = "```python\nimport s4s\ns4s.load_solver('missing.json')\n```\n"
    with pytest.raises(AssertionError, match=r"(?s)code block 1 \(python\).*no solver file at missing.json"):
        run_blocks(broken, tmp_path, "page.md")
    skipped = "```python\n# needs a GPU: ...\nraise SystemExit(1)\n```\n"
    assert run_blocks(skipped, tmp_path, "page.md") == {"ran": 0, "skipped": 1, "files": 0}


def _conforms(value, schema) -> list[str]:
    """The few JSON-schema keywords the solver-file schema uses: type, const, required,
    properties, items, minimum, maximum."""
    kinds = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float)}
    errors = []
    if "const" in schema and value != schema["const"]:
        errors.append(f"{value!r} != {schema['const']!r}")
    if "type" in schema and (not isinstance(value, kinds[schema["type"]]) or isinstance(value, bool)):
        return errors + [f"{value!r:.40} is not {schema['type']}"]
    if isinstance(value, dict):
        errors += [f"missing {k}" for k in schema.get("required", []) if k not in value]
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                errors += [f"{k}: {e}" for e in _conforms(value[k], sub)]
    if isinstance(value, list) and "items" in schema:
        for v in value:
            errors += _conforms(v, schema["items"])
    if isinstance(value, (int, float)):
        if "minimum" in schema and value < schema["minimum"] or "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{value} out of range")
    return errors


def test_the_shipped_solver_file_conforms_to_the_documented_schema():
    page = (ROOT / "docs/reference/solver-file.md").read_text()
    schema = json.loads(next(code for lang, code in code_blocks(page) if lang == "json"))
    shipped = json.loads((ROOT / "docs/digits-s4s_alt-nfe5.json").read_text())
    assert _conforms(shipped, schema) == []
    assert _conforms({**shipped, "version": 2, "nfe": "5"}, schema)  # the check can fail


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None,
                    reason="mkdocs is not installed (make install installs it)")
def test_the_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    done = subprocess.run([mkdocs, "build", "--strict", "-q", "-d", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").read_text().count("s4s learn") > 0
    assert (tmp_path / "site" / "experiments" / "learn-table" / "index.html").is_file()
