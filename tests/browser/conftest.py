"""A real browser for the studio's tests: Playwright for Python driving the system's Chromium
(Debian's `chromium`; scripts/test installs it with apt-get where it can). Without one, the tests are
skipped and say why."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Stack, running_stack


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module-scoped on purpose: Playwright's sync API keeps an asyncio loop running on the main thread
    until it stops, and tests after the browser's module may call asyncio.run()."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on PATH (apt-get install -y chromium): the studio's browser tests need one")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def studio_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from running_stack(tmp_path_factory, "studio")
