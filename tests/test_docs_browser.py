"""Build the documentation site, serve it locally and check it renders in headless Chromium.

`mkdocs build --strict` writes the site into a temporary directory, a local HTTP server (a
thread) serves it, and Debian's Chromium takes screenshots of the home page and a concept page
into `docs/_screenshots/` (gitignored, excluded from the site) and dumps their DOM after the
theme's JavaScript ran. A missing Chromium fails the test: install it with
`apt-get install -y chromium`.

The layout check loads a copy of a page with a small script appended, which measures every
code block once the page (theme JavaScript and fonts included) has loaded and writes the
result into the DOM, which `--dump-dom` returns. Offline, the theme's Roboto Mono (a Google
font) falls back to the system monospace face (DejaVu Sans Mono on Debian), whose characters
are as wide (0.602 em against 0.600 em), so the measurement stands for what readers see.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "_screenshots"
PAGES = [("", "home"), ("concepts/queries/", "concept-queries")]
MIN_PNG_BYTES = 20_000  # a blank 1280x900 page compresses to a few KB
VIEWPORT_WIDTH = 1280  # a common laptop width; both of the theme's sidebars are shown from 1220 px

# A chart drawn at twice its display density (benchmarks/plot.py) keeps its text at the size it
# was designed for as long as the page shows it at half its pixel width or more.
MAX_IMAGE_DOWNSCALE = 2.1

# Appended to a copy of a page: after the load event (images loaded) and the fonts, record the
# width of every `pre > code` (the theme's scroll container for a code block) and every image
# in the content, with the link around it, in a data attribute.
MEASURE_LAYOUT = """
<script>
window.addEventListener("load", function () {
  var fonts = document.fonts ? document.fonts.ready : Promise.resolve();
  fonts.then(function () {
    var blocks = Array.prototype.slice.call(document.querySelectorAll("pre > code"));
    var result = {
      viewport: window.innerWidth,
      blocks: blocks.map(function (code) {
        var lines = code.textContent.split("\\n");
        var longest = lines.reduce(function (a, b) { return b.length > a.length ? b : a; }, "");
        return {
          scrollWidth: code.scrollWidth,
          clientWidth: code.clientWidth,
          longest: longest
        };
      }),
      images: Array.prototype.slice.call(document.querySelectorAll(".md-content img")).map(
        function (img) {
          var link = img.closest("a");
          return {
            src: img.currentSrc || img.src,
            naturalWidth: img.naturalWidth,
            width: img.getBoundingClientRect().width,
            href: link ? link.href : null
          };
        }
      )
    };
    var out = document.createElement("div");
    out.id = "dynorm-layout-check";
    out.setAttribute("data-result", JSON.stringify(result));
    document.body.appendChild(out);
  });
});
</script>
"""


def chromium() -> str:
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if path is None:
        pytest.fail(
            "Chromium is not installed, so the docs cannot be checked in a browser. "
            "Install Debian's package: `apt-get install -y chromium` (the Makefile does).",
            pytrace=False,
        )
    return path


def run_chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-2000:]}"
    return result


class _ResultParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.result: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id") == "dynorm-layout-check":
            self.result = values.get("data-result")


def measure_layout(site: Path, base_url: str, path: str, profile: Path) -> dict[str, Any]:
    """Load `path` at VIEWPORT_WIDTH with MEASURE_LAYOUT appended; return its result."""
    page = site / path / "index.html"
    probe = page.with_name("_layout-check.html")  # same directory: relative URLs still resolve
    html = page.read_text(encoding="utf-8")
    assert "</body>" in html, f"{page} has no </body>"
    probe.write_text(html.replace("</body>", MEASURE_LAYOUT + "</body>", 1), encoding="utf-8")
    dom = run_chromium(
        f"--window-size={VIEWPORT_WIDTH},900",
        "--virtual-time-budget=10000",
        "--dump-dom",
        base_url + path + probe.name,
        profile=profile,
    ).stdout
    parser = _ResultParser()
    parser.feed(dom)
    assert parser.result is not None, f"the measuring script did not run on {base_url + path}"
    result: dict[str, Any] = json.loads(parser.result)
    return result


PRIVATE_NAME = re.compile(r"(?<!\w)_[A-Za-z]\w*")  # `_Key`, `_config`; not `__init__`
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class _ReferenceParser(HTMLParser):
    """Collect what the API reference says about each object, apart from its prose.

    That is: the ids of the object headings, the object names in them, the signatures, the
    `Bases:` lines, and the Name, Type and Default cells of the Parameters/Returns/Raises
    tables (not their descriptions), with the name in the tooltip (`title`: the object's path)
    of every cross-reference there.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.texts: list[tuple[str, str]] = []  # (where, text)
        self._stack: list[tuple[str, str | None]] = []  # (tag, the context it opens)

    def _context(self) -> str | None:
        for _tag, context in reversed(self._stack):
            if context == "prose":
                return None
            if context is not None:
                return context
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        context = None
        if "doc-heading" in classes:
            context = "heading"
        elif "doc-signature" in classes:
            context = "signature"
        elif "doc-class-bases" in classes:
            context = "bases"
        elif "doc-section-item" in classes:
            context = "table"
        elif "doc-md-description" in classes:
            context = "prose"
        ident = values.get("id") or ""
        if ident.startswith("dynorm.") or context == "heading" and ident:
            self.ids.append(ident)
        inside = context if context not in (None, "prose") else self._context()
        if inside is not None and values.get("title"):  # the object's path: judge its name
            self.texts.append((f"{inside} cross-reference", values["title"].rsplit(".", 1)[-1]))
        if tag not in VOID_TAGS:
            self._stack.append((tag, context))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                return

    def handle_data(self, data: str) -> None:
        context = self._context()
        if context is not None and data.strip():
            self.texts.append((context, data))


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    assert (out / "index.html").is_file()
    return out


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_chromium_is_installed() -> None:
    assert Path(chromium()).exists()


@pytest.mark.parametrize(("path", "name"), PAGES, ids=[name for _, name in PAGES])
def test_page_renders_with_the_theme(base_url: str, path: str, name: str, tmp_path: Path) -> None:
    url = base_url + path
    dom = run_chromium("--dump-dom", url, profile=tmp_path / "dom").stdout
    for marker in ("md-header", "md-nav", "md-tabs", "md-search", "highlight"):
        assert marker in dom, f"{url}: the rendered DOM has no {marker!r}"
    # Copy buttons are inserted by the theme's JavaScript (`content.code.copy`).
    assert "clipboard-target" in dom, f"{url}: no code copy buttons (did the theme's JS run?)"
    assert "Traceback" not in dom and "Page not found" not in dom

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = SCREENSHOTS / f"{name}.png"
    png.unlink(missing_ok=True)
    run_chromium(f"--screenshot={png}", "--window-size=1280,900", url, profile=tmp_path / "shot")
    assert png.is_file(), f"Chromium wrote no screenshot of {url}"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    assert len(data) > MIN_PNG_BYTES, f"{png} is only {len(data)} bytes: a blank page?"


def test_home_page_code_blocks_fit_a_1280px_window_without_scrolling(
    site: Path, base_url: str, tmp_path: Path
) -> None:
    result = measure_layout(site, base_url, "", tmp_path / "layout")
    assert result["viewport"] == VIEWPORT_WIDTH
    blocks = result["blocks"]
    assert blocks, "the home page has no code block to measure"
    overflowing = [block for block in blocks if block["scrollWidth"] > block["clientWidth"]]
    assert not overflowing, (
        f"{len(overflowing)} code block(s) on the home page scroll sideways at "
        f"{VIEWPORT_WIDTH} px: "
        + "; ".join(
            f"{b['scrollWidth']} px of content in {b['clientWidth']} px, longest line "
            f"{len(b['longest'])} characters: {b['longest']!r}"
            for b in overflowing
        )
    )


def test_benchmark_charts_are_shown_near_full_size_and_link_to_the_full_size_png(
    site: Path, base_url: str, tmp_path: Path
) -> None:
    images = measure_layout(site, base_url, "benchmarks/", tmp_path / "layout")["images"]
    charts = [image for image in images if "/assets/benchmarks" in image["src"]]
    assert len(charts) >= 2, f"the benchmarks page shows fewer than two charts: {images}"
    for chart in charts:
        assert chart["naturalWidth"] > 0, f"{chart['src']} did not load"
        assert chart["href"] == chart["src"], f"{chart['src']} is not a link to itself: {chart}"
        downscale = chart["naturalWidth"] / chart["width"]
        assert downscale <= MAX_IMAGE_DOWNSCALE, (
            f"{chart['src']} ({chart['naturalWidth']} px) is shown {chart['width']:.0f} px wide "
            f"at {VIEWPORT_WIDTH} px, {downscale:.1f}x smaller: its text is too small to read. "
            "Draw it for the page width (benchmarks/plot.py) or split it."
        )


def test_api_reference_shows_no_private_names(site: Path) -> None:
    parser = _ReferenceParser()
    parser.feed((site / "reference" / "index.html").read_text(encoding="utf-8"))
    assert len(parser.ids) > 50 and any(where == "signature" for where, _ in parser.texts)
    private_ids = [i for i in parser.ids if any(PRIVATE_NAME.fullmatch(p) for p in i.split("."))]
    assert not private_ids, f"the API reference documents private names: {private_ids}"
    found = sorted(
        {
            f"{where}: {name!r} in {' '.join(text.split())[:120]!r}"
            for where, text in parser.texts
            for name in PRIVATE_NAME.findall(text)
        }
    )
    assert not found, "the API reference shows private names:\n" + "\n".join(found)


def test_search_index_and_api_reference_are_built(site: Path) -> None:
    assert (site / "search" / "search_index.json").stat().st_size > 10_000
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    for anchor in ("dynorm.Model", "dynorm.query.queryset.QuerySet.filter", "dynorm.configure"):
        assert f'id="{anchor}"' in reference, f"the API reference lacks {anchor}"
    errors = (site / "errors" / "index.html").read_text(encoding="utf-8")
    assert 'id="needs-scan"' in errors and 'id="versionconflicterror"' in errors
