"""Build the documentation site, serve it locally and check it renders in headless Chromium.

`mkdocs build --strict` writes the site into a temporary directory, a local HTTP server (a
thread) serves it, and Debian's Chromium takes screenshots of the home page and a concept page
into `docs/_screenshots/` (gitignored, excluded from the site) and dumps their DOM after the
theme's JavaScript ran. A missing Chromium fails the test: install it with
`apt-get install -y chromium`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "_screenshots"
PAGES = [("", "home"), ("concepts/queries/", "concept-queries")]
MIN_PNG_BYTES = 20_000  # a blank 1280x900 page compresses to a few KB


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


def test_search_index_and_api_reference_are_built(site: Path) -> None:
    assert (site / "search" / "search_index.json").stat().st_size > 10_000
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    for anchor in ("dynorm.Model", "dynorm.query.QuerySet.filter", "dynorm.configure"):
        assert f'id="{anchor}"' in reference, f"the API reference lacks {anchor}"
    errors = (site / "errors" / "index.html").read_text(encoding="utf-8")
    assert 'id="needs-scan"' in errors and 'id="versionconflicterror"' in errors
