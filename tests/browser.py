"""Headless Chromium (Debian's package) driven by Playwright, for tests that look at pages.

Playwright drives the system browser (`executable_path`), so nothing is downloaded. The
browser gets a fresh profile each time and the flags a closed, root-run machine needs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",  # as root, Chromium will not start with its sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MISSING = (
    "Debian's chromium is not installed, so the page cannot be rendered here: `make sysdeps` "
    "installs it (apt-get install chromium, which needs root or sudo)"
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A page in a fresh headless Chromium; skips the test where Chromium is missing."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives every launch a fresh temporary profile (--user-data-dir).
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.llmbench_errors = errors
            yield page
        finally:
            browser.close()


def grid_cell(page: Any, model: str, task: str) -> Any:
    """The HTML report's grid cell of `task` (its row) for `model` (its column)."""
    columns = page.eval_on_selector_all("#grid thead th", "ths => ths.map(t => t.textContent)")
    rows = page.eval_on_selector_all(
        "#grid tbody tr", "trs => trs.map(r => r.children[2].textContent)"
    )
    row, column = rows.index(task) + 1, columns.index(model) + 1
    return page.locator(f"#grid tbody tr:nth-child({row}) td:nth-child({column})")
