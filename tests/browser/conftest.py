"""Browser tests: register the ``browser`` marker and find a usable Chromium + Playwright."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def pytest_configure(config):
    # Also declared in pyproject.toml; registering here keeps --strict-markers happy either way.
    config.addinivalue_line("markers", "browser: drives JupyterLab in headless Chromium "
                                       "(needs the playwright package and Debian's chromium)")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of the system Chromium, or skip (never downloads a browser)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser test skipped: the 'playwright' Python package is not installed "
                    "(pip install playwright; do NOT run 'playwright install')")
    for path in CHROMIUM_CANDIDATES:
        if shutil.which(path):
            return path
    found = shutil.which("chromium")
    if found:
        return found
    pytest.skip("browser test skipped: no system Chromium (apt-get install -y chromium)")
