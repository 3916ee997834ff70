"""Take the screenshots of docs/dashboard.md: ``python -m tests.browser.screenshots docs/img``.

Starts a private Azurite, populates a hub with real orchestrations (tests/browser/hub.py) and
photographs the main pages with the same headless Chromium the browser tests use.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from playwright.async_api import async_playwright

from durable_azstorage.azurite import Azurite
from durable_azstorage.connection import StorageAccount
from tests.browser.hub import CHROMIUM_FLAGS, chromium_path, populated_hub


async def shoot(out: Path, connection_string: str) -> None:
    account = StorageAccount.from_connection_string(connection_string)
    async with populated_hub(account, "ShopHub") as hub, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await hub.client.raise_event(hub.ids["approval"], "approve", "yes")
        pages = {
            "overview": "/dashboard/overview",
            "instances": "/dashboard/instances",
            "instance-timeline": f"/dashboard/instances/{hub.ids['parent']}",
            "instance-failed": f"/dashboard/instances/{hub.ids['failing']}",
            "entity": "/dashboard/entities/counter/c1",
        }
        for name, path in pages.items():
            await page.goto(hub.url.removesuffix("/dashboard") + path)
            await page.wait_for_selector("main h1")
            if name == "overview":  # counted after the hub was populated (the page refreshes every 10 s)
                await page.wait_for_selector("#status-counts a.card", timeout=60_000)
            await page.wait_for_load_state("networkidle")
            await page.screenshot(path=str(out / f"dashboard-{name}.png"), full_page=name != "instances")
        await browser.close()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
    out.mkdir(parents=True, exist_ok=True)
    with Azurite() as azurite:
        asyncio.run(shoot(out, azurite.connection_string))


if __name__ == "__main__":
    main()
