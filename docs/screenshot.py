"""Regenerates docs/report.png from a real local run: `.venv/bin/python docs/screenshot.py`.

The README shows it; the run is `make run`'s (iris) with a quality gate, and chromium renders the report
at 1280 px as tests/test_run_report.py does."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([str(ROOT / ".venv/bin/sagestep"), "local", str(ROOT / "examples/iris.csv"), "--label", "species",
                        "--quality-metric", "validation:mlogloss", "--quality-threshold", "0.5", "--report",
                        "--out", out, "--json"], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto((Path(out) / "report.html").as_uri(), wait_until="load")
            page.screenshot(path=str(ROOT / "docs/report.png"), full_page=True)
            browser.close()
    print(ROOT / "docs/report.png")


if __name__ == "__main__":
    sys.exit(main())
