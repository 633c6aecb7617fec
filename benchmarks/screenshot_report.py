"""Render report.html as a manager sees it: headless Chromium screenshots, English and Chinese.

Usage:
    uv run python benchmarks/screenshot_report.py RUN_FOLDER [RUN_FOLDER ...] [--out DIR]

Each RUN_FOLDER is a ``<out>/<run_date>/`` folder written by ``leadmatch recommend`` (make one
with ``--lang en`` and one with ``--lang zh``). The PNGs go to ``--out`` (default
``screenshots/``, git-ignored), named after the folder's parent and run date; look at them with
an image viewer. Needs Debian's ``chromium`` (and ``fonts-noto-cjk`` for Chinese text):
``apt-get install -y chromium fonts-noto-cjk``. Prints one row per screenshot.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
WINDOW = (1280, 2000)


def chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    page: Path, png: Path, *, window: tuple[int, int] = WINDOW, timeout: float = 120.0
) -> None:
    """Render the HTML file ``page`` to ``png`` with headless Chromium (a fresh profile)."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed: apt-get install -y chromium fonts-noto-cjk")
    with tempfile.TemporaryDirectory(prefix="leadmatch-chromium-") as profile:
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={window[0]},{window[1]}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot for {page}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="run folders with report.html")
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--height", type=int, default=WINDOW[1], help="window height in pixels")
    parser.add_argument(
        "--expand",
        action="store_true",
        help="open the collapsed sections (glossary, technical details) before the screenshot",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{'report':<50} {'language':<8} {'png':<50} {'bytes':>9}")
    for folder in args.folders:
        page = folder / "report.html"
        if not page.is_file():
            print(f"{folder}: no report.html", file=sys.stderr)
            return 2
        text = page.read_text(encoding="utf-8")
        lang = "zh" if '<html lang="zh-CN"' in text else "en"
        suffix = "-expanded" if args.expand else ""
        png = args.out / f"{folder.parent.name}-{folder.name}-{lang}{suffix}.png"
        with tempfile.TemporaryDirectory(prefix="leadmatch-report-") as tmp:
            if args.expand:
                page = Path(tmp) / "report.html"
                page.write_text(text.replace("<details>", "<details open>"), encoding="utf-8")
            screenshot(page, png, window=(WINDOW[0], args.height))
        shown = folder / "report.html"
        print(f"{str(shown):<50} {lang:<8} {str(png):<50} {png.stat().st_size:>9,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
