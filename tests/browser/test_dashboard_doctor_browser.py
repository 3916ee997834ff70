"""The dashboard's health panel with ``doctor``'s findings, as a person sees it (headless Chromium)."""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright, expect

from tests.browser.hub import CHROMIUM_FLAGS, chromium_path
from tests.integration.test_dashboard_doctor import STRANDED, dashboard

pytestmark = [pytest.mark.browser, pytest.mark.integration]
__all__ = ["dashboard"]  # the fixture: a hub with a stranded control queue, its dashboard served


async def test_health_panel_in_a_browser(dashboard: str) -> None:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{dashboard}/")
            finding = page.locator("#health li.finding.error").filter(has_text=STRANDED)
            await expect(finding).to_be_visible(timeout=60_000)
            await expect(finding).to_contain_text("partitions.stranded-queue")
        finally:
            await browser.close()
