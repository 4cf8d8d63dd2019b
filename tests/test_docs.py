"""
Every ```python block in docs/*.md and README.md runs, as a reader would run it.

Each block is one test, named after its page and the line of its opening
fence. It runs in a fresh interpreter with a temporary HOME, working
directory and user config path, so the developer's own configuration never
leaks in, and with the repository's ``examples/`` folder importable (the docs
start their receivers with ``from receiver import start``).

A block that cannot run where the tests run (it needs a Loki server, say)
carries a marker on the line right before its fence, with the reason::

    <!-- not-runnable: needs a Loki server -->

A marker without a reason, or one that is not right before a Python fence,
fails :func:`test_not_runnable_markers_are_well_formed`. ``console``,
``toml``, ``text`` and other blocks are never run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RUNNABLE_LANGUAGES = frozenset({"python", "py", "python3"})
# Generous: a block may start a Dask LocalCluster; pytest-timeout is raised to match.
BLOCK_TIMEOUT = 150.0

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*not-runnable\b(?P<rest>.*?)-->\s*$")
_MARKER_START = re.compile(r"^\s*<!--\s*not-runnable\b")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_runnable: str | None  # the marker's reason, or None when the block runs

    @property
    def where(self) -> str:
        try:
            rel = self.path.relative_to(ROOT)
        except ValueError:
            rel = self.path
        return f"{rel.as_posix()}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.language in RUNNABLE_LANGUAGES and self.not_runnable is None


class BlockFailed(AssertionError):
    """A documentation block exited with an error or did not finish in time."""


def _language(info: str) -> str:
    """The language of a fence's info string: ``python``, ``{.python}``, ``py title="x"``."""
    words = info.strip().split()
    if not words:
        return ""
    return words[0].strip("{}").lstrip(".").lower()


def extract_blocks(text: str, path: Path) -> tuple[list[Block], list[str]]:
    """
    Return the fenced code blocks of a Markdown text and the problems found.

    Problems are markers without a reason, markers that are not on the line
    right before a Python fence, and fences that are never closed.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    problems: list[str] = []
    marker_lines_used: set[int] = set()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"]
        if fence[0] == "`" and "`" in info:
            i += 1  # inline code such as ```` ``` ```` is not a fence
            continue
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        else:
            problems.append(f"{path}:{i + 1}: the code block opened here is never closed")
            break
        language = _language(info)
        reason: str | None = None
        if i > 0 and _MARKER_START.match(lines[i - 1]):
            marker_lines_used.add(i - 1)
            marker = _MARKER.match(lines[i - 1])
            rest = marker["rest"].strip() if marker else ""
            if not rest.startswith(":") or not rest[1:].strip():
                problems.append(
                    f"{path}:{i}: a not-runnable marker needs a reason: "
                    "<!-- not-runnable: <why this block cannot run in the tests> -->"
                )
                reason = "(marker without a reason)"
            elif language not in RUNNABLE_LANGUAGES:
                problems.append(
                    f"{path}:{i}: a not-runnable marker is only for ```python blocks; "
                    f"this one is ```{language or '(no language)'}, which is never run"
                )
                reason = rest[1:].strip()
            else:
                reason = rest[1:].strip()
        blocks.append(Block(path, i + 1, language, "\n".join(body) + "\n", reason))
        i = j + 1
    for number, line in enumerate(lines):
        if _MARKER_START.match(line) and number not in marker_lines_used:
            problems.append(
                f"{path}:{number + 1}: a not-runnable marker must be on the line right "
                "before the ```python fence it is about"
            )
    return blocks, problems


def doc_pages() -> list[Path]:
    """The pages whose blocks are run: docs/*.md and README.md."""
    return [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


def all_blocks() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    problems: list[str] = []
    for page in doc_pages():
        found, trouble = extract_blocks(page.read_text(encoding="utf-8"), page)
        blocks.extend(found)
        problems.extend(trouble)
    return blocks, problems


def block_env(tmp: Path) -> dict[str, str]:
    """A reader's environment: no STRUCTFLOW__ settings, a temp HOME and config path."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STRUCTFLOW")}
    env.pop("PYTHONSTARTUP", None)
    env["HOME"] = str(home)
    # An empty config file: a block may write its own.
    config = tmp / "config.toml"
    if not config.exists():
        config.touch()
    env["STRUCTFLOW__USER_CONFIG_PATH"] = str(config)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(EXAMPLES), env.get("PYTHONPATH", "")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_COLOR"] = "1"
    return env


def run_block(block: Block, tmp: Path, timeout: float = BLOCK_TIMEOUT) -> str:
    """
    Run *block* in a fresh interpreter in *tmp*; return its output.

    The script is padded with blank lines so that a traceback's line numbers
    are the Markdown file's.

    Raises:
        BlockFailed: the block exited non-zero or ran out of time.
    """
    cwd = tmp / "cwd"
    cwd.mkdir(exist_ok=True)
    script = tmp / f"{block.path.name}.py"
    script.write_text("\n" * block.line + block.code, encoding="utf-8")
    # Its own session, so a timeout also stops what the block started (Dask workers).
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=cwd,
        env=block_env(tmp),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise BlockFailed(
            f"{block.where}: the block did not finish within {timeout:.0f} s\n"
            f"--- stdout ---\n{out}--- stderr ---\n{err}"
        ) from None
    if proc.returncode != 0:
        raise BlockFailed(
            f"{block.where}: the block exited with {proc.returncode}\n"
            f"--- stdout ---\n{out}--- stderr ---\n{err}"
        )
    return out


def _params() -> list[object]:
    blocks, _ = all_blocks()
    params: list[object] = []
    for block in blocks:
        if block.language not in RUNNABLE_LANGUAGES:
            continue
        marks = []
        if block.not_runnable is not None:
            marks.append(pytest.mark.skip(reason=f"not runnable: {block.not_runnable}"))
        params.append(pytest.param(block, id=block.where, marks=marks))
    return params


@pytest.mark.timeout(BLOCK_TIMEOUT + 30)
@pytest.mark.parametrize("block", _params())
def test_docs_block_runs(block: Block, tmp_path: Path) -> None:
    run_block(block, tmp_path)


def test_not_runnable_markers_are_well_formed() -> None:
    _, problems = all_blocks()
    assert problems == []


def test_the_docs_have_runnable_blocks_in_readme_and_pages() -> None:
    """Guards the collection itself: a parser bug must not quietly run nothing."""
    blocks, _ = all_blocks()
    runnable = {b.path.name for b in blocks if b.runnable}
    assert {"README.md", "logs.md", "example.md"} <= runnable


# --- the checker's own behaviour -------------------------------------------------


def _page(tmp_path: Path, text: str) -> list[Block]:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    blocks, problems = extract_blocks(text, page)
    if problems:
        raise ValueError("\n".join(problems))
    return blocks


def test_a_marker_without_a_reason_is_rejected(tmp_path: Path) -> None:
    text = "Intro.\n\n<!-- not-runnable -->\n```python\nprint('hi')\n```\n"
    with pytest.raises(ValueError, match=r"page\.md:3: a not-runnable marker needs a reason"):
        _page(tmp_path, text)


def test_a_marker_with_an_empty_reason_is_rejected(tmp_path: Path) -> None:
    text = "<!-- not-runnable:   -->\n```python\nprint('hi')\n```\n"
    with pytest.raises(ValueError, match="needs a reason"):
        _page(tmp_path, text)


def test_a_marker_separated_from_its_fence_is_rejected(tmp_path: Path) -> None:
    text = "<!-- not-runnable: needs a Loki server -->\n\n```python\nprint('hi')\n```\n"
    with pytest.raises(ValueError, match="right before the ```python fence"):
        _page(tmp_path, text)


def test_a_marker_with_a_reason_skips_only_its_block(tmp_path: Path) -> None:
    text = (
        "<!-- not-runnable: needs a Loki server -->\n```python\nimport loki\n```\n\n"
        "```python\nprint('runs')\n```\n\n```toml\n[logging]\n```\n"
    )
    blocks = _page(tmp_path, text)
    assert [(b.line, b.language, b.not_runnable) for b in blocks] == [
        (2, "python", "needs a Loki server"),
        (6, "python", None),
        (10, "toml", None),
    ]
    assert [b.runnable for b in blocks] == [False, True, False]


def test_an_indented_block_is_dedented(tmp_path: Path) -> None:
    text = "!!! note\n\n    ```python\n    x = 1\n    assert x == 1\n    ```\n"
    (block,) = _page(tmp_path, text)
    assert block.code == "x = 1\nassert x == 1\n"


def test_a_failing_block_fails_the_check(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "```python\nassert 1 + 1 == 3, 'arithmetic'\n```\n")
    with pytest.raises(BlockFailed, match=r"(?s)page\.md:1: the block exited with 1.*arithmetic"):
        run_block(block, tmp_path)


def test_a_traceback_points_at_the_markdown_line(tmp_path: Path) -> None:
    text = "Some prose.\n\n```python\nx = 1\nraise RuntimeError('here')\n```\n"
    (block,) = _page(tmp_path, text)
    with pytest.raises(BlockFailed, match=r'(?s)page\.md\.py", line 5.*RuntimeError: here'):
        run_block(block, tmp_path)


def test_a_block_that_hangs_is_stopped(tmp_path: Path) -> None:
    (block,) = _page(tmp_path, "```python\nimport time\ntime.sleep(60)\n```\n")
    with pytest.raises(BlockFailed, match="did not finish within 1 s"):
        run_block(block, tmp_path, timeout=1.0)


def test_a_block_runs_isolated_from_the_developer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRUCTFLOW__LOGGING__LEVEL", "ERROR")
    code = (
        "```python\n"
        "import os, pathlib, sys\n"
        "import receiver\n"
        "print(os.environ['HOME'])\n"
        "print(os.environ['STRUCTFLOW__USER_CONFIG_PATH'])\n"
        "print(pathlib.Path.cwd())\n"
        "print(sorted(k for k in os.environ if k.startswith('STRUCTFLOW__')))\n"
        "```\n"
    )
    (block,) = _page(tmp_path, code)
    out = run_block(block, tmp_path).splitlines()
    assert [
        str(tmp_path / "home"),
        str(tmp_path / "config.toml"),
        str((tmp_path / "cwd").resolve()),
        "['STRUCTFLOW__USER_CONFIG_PATH']",
    ] == out
