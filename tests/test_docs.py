"""Run every Python example in the documentation against DynamoDB Local.

Conventions for code blocks in `docs/**/*.md`:

- A fenced block whose language is `python` is executed. Fence attributes are allowed
  (```python title="shop/models.py"```), and so is indentation (blocks inside admonitions or
  content tabs).
- The `python` blocks of one page run in order, in one shared namespace (a fresh module per
  page), inside `dynorm._registry.isolated_registry()` and with the `dynorm_table` fixture: a
  fresh table on DynamoDB Local that dynorm is configured to use. Models a page defines do not
  clash with the test suite's models, and pages call `dynorm.create_table()` after defining
  their models (it is idempotent and adds the GSIs they need).
- A block that must be shown but not run is either written as ```py (highlighted as Python,
  never executed; use it for code that needs AWS credentials, a web framework, or a pytest
  run of its own), or keeps ```python and has the HTML comment `<!-- skip -->` alone on the
  line just before its fence. Prefer ```py.
- Blocks must never reconfigure the endpoint or the table (`dynorm.configure(endpoint_url=...)`):
  show configuration code in ```py blocks. `configure(cursor_secret=...)` is fine; the fixture
  restores the configuration afterwards.
- `assert` statements in examples are welcome: they are checked here.
- A page with the HTML comment `<!-- dynorm: s3 -->` also gets the `blob_bucket` fixture (an
  S3 server and a fresh bucket, configured as the blob bucket); its name is `BUCKET` there.

One pytest test per page that has executable blocks; a failure names the page and the Markdown
line of the block (tracebacks point into the `.md` file).
"""

from __future__ import annotations

import re
import sys
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dynorm import _registry

DOCS = Path(__file__).resolve().parent.parent / "docs"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\n]*)$")
_SKIP = "<!-- skip -->"
_S3 = "<!-- dynorm: s3 -->"


@dataclass(frozen=True)
class Block:
    """One fenced code block of a docs page."""

    page: Path
    line: int  # 1-based line of the first code line
    language: str
    code: str
    skipped: bool

    @property
    def runs(self) -> bool:
        return self.language == "python" and not self.skipped


def iter_blocks(page: Path) -> Iterator[Block]:
    """Yield every fenced code block of a Markdown page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        info = match["info"].strip()
        language = info.split()[0].lstrip(".").lower() if info else ""
        previous = lines[i - 1].strip() if i > 0 else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        else:
            raise AssertionError(f"{page}:{i + 1}: unclosed code fence")
        yield Block(page, i + 2, language, "\n".join(body) + "\n", previous == _SKIP)
        i = j + 1


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


RUNNABLE = [p for p in pages() if any(b.runs for b in iter_blocks(p))]


def test_docs_exist_and_have_examples() -> None:
    assert DOCS.is_dir(), "docs/ is missing"
    assert len(RUNNABLE) >= 10, [_page_id(p) for p in RUNNABLE]


@pytest.mark.parametrize("page", RUNNABLE, ids=_page_id)
def test_page_examples_run(page: Path, dynorm_table: str, request: pytest.FixtureRequest) -> None:
    slug = re.sub(r"\W", "_", _page_id(page).removesuffix(".md"))
    module = types.ModuleType(f"docs_{slug}")
    if _S3 in page.read_text(encoding="utf-8"):
        module.BUCKET = request.getfixturevalue("blob_bucket")  # type: ignore[attr-defined]
    module.__file__ = str(page)
    sys.modules[module.__name__] = module  # pydantic resolves annotations through it
    main = sys.modules["__main__"]
    try:
        with _registry.isolated_registry():
            for block in iter_blocks(page):
                if block.runs:
                    _run(block, module)
    finally:
        del sys.modules[module.__name__]
        # Streamlit's AppTest leaves its script as `__main__`, and with it the script's
        # globals (a connection, whose __del__ then fails at interpreter shutdown).
        sys.modules["__main__"] = main


def _run(block: Block, module: types.ModuleType) -> None:
    # Pad with newlines so line numbers in tracebacks are the .md file's.
    source = "\n" * (block.line - 1) + block.code
    try:
        exec(compile(source, str(block.page), "exec"), module.__dict__)
    except Exception as exc:
        failure = exc
    else:
        return
    frames = [
        f"  {_page_id(Path(f.filename))}:{f.lineno}: {f.line}"
        if f.filename == str(block.page)
        else f"  {f.filename}:{f.lineno}: {f.line}"
        for f in traceback.extract_tb(failure.__traceback__)[1:]
    ]
    pytest.fail(
        f"{_page_id(block.page)}: the block starting at line {block.line} raised "
        f"{type(failure).__name__}: {failure}\n" + "\n".join(frames),
        pytrace=False,
    )


def test_skip_marker_only_precedes_python_blocks() -> None:
    """`<!-- skip -->` before anything but a python fence is a typo: say so."""
    for page in pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        fences = {b.line - 2 for b in iter_blocks(page) if b.language == "python"}
        for number, line in enumerate(lines):
            if line.strip() == _SKIP:
                assert number + 1 in fences, (
                    f"{_page_id(page)}:{number + 1}: {_SKIP} must sit on the line just "
                    "before a ```python fence"
                )


def test_parser_handles_indent_attributes_and_skip(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "text\n"
        '```python title="a.py"\n'
        "x = 1\n"
        "```\n"
        "<!-- skip -->\n"
        "```python\n"
        "boom()\n"
        "```\n"
        "!!! note\n    ```python\n    if x:\n        y = 2\n    ```\n"
        "```py\nnot_run()\n```\n"
        "````markdown\n```python\ninside()\n```\n````\n",
        encoding="utf-8",
    )
    blocks = list(iter_blocks(page))
    assert [(b.language, b.runs) for b in blocks] == [
        ("python", True),
        ("python", False),
        ("python", True),
        ("py", False),
        ("markdown", False),
    ]
    assert blocks[0].line == 3 and blocks[0].code == "x = 1\n"
    assert blocks[2].code == "if x:\n    y = 2\n"
    assert "inside()" in blocks[4].code
