"""The dashboard as a person uses it: real headless Chromium, real orchestrations on Azurite.

One hub for the module (tests/browser/hub.py): completed, failed, waiting and sub-orchestrated
instances, a counter entity and a quarantined message. Tests run in file order and each one
leaves the hub as the next expects it. Every wait is Playwright's polling ``expect`` or
``eventually``: no sleeps.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from durable_azstorage.connection import StorageAccount
from durable_azstorage.dashboard import create_dashboard_app
from durable_azstorage.model import OrchestrationStatus
from tests.browser.hub import (
    CHROMIUM_FLAGS,
    PopulatedHub,
    chromium_path,
    populated_hub,
    quarantine_event,
    wait_status,
)
from tests.helpers import eventually

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LONG = 60_000  # ms: a worker step on a loaded 2-core machine can take seconds
expect.set_options(timeout=LONG)  # every expect polls up to LONG (Playwright's default is 5 s)


@pytest.fixture(scope="module")
async def hub(storage_account: StorageAccount) -> AsyncIterator[PopulatedHub]:
    async with populated_hub(storage_account, "b" + uuid.uuid4().hex[:12]) as populated:
        yield populated


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    tab = await context.new_page()
    tab.set_default_timeout(LONG)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    await context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


async def test_overview_shows_partitions_counts_and_poison(hub: PopulatedHub, page: Page) -> None:
    await page.goto(f"{hub.url}/")
    rows = page.locator("#partitions tbody tr")
    await expect(rows).to_have_count(4)
    for n in range(4):
        await expect(rows.nth(n)).to_contain_text(hub.worker.settings.worker_id)
    await expect(page.locator('#status-counts [data-status="Failed"] .num')).to_have_text("1")
    await expect(page.locator('#status-counts [data-status="Running"] .num')).to_have_text("3")
    await expect(page.locator("#work-items")).to_contain_text("-workitems")
    await expect(page.locator("#poison tbody tr")).to_have_count(1)
    await expect(page.locator("#health")).to_contain_text("1 quarantined message")
    await page.locator("#health a", has_text="quarantined").click()  # the finding points at the table
    await expect(page.locator("#poison")).to_be_in_viewport()
    await expect(page.locator("#partitions tbody tr")).to_have_count(4)  # the view stayed (no re-render)
    await expect(page.locator("#transactions")).to_contain_text("transactions by this process")
    # A status card is a link to the filtered instances table.
    await page.locator('#status-counts a.card[data-status="Failed"]').click()
    await expect(page).to_have_url(re.compile(r"/dashboard/instances\?status=Failed$"))
    await expect(page.locator("#instances-table tbody tr")).to_have_count(1)
    await expect(page.locator("#instances-table tbody tr").first).to_have_attribute("data-instance-id", "failing-1")


async def test_filter_sort_open_instance_and_follow_timeline_links(hub: PopulatedHub, page: Page) -> None:
    await page.goto(f"{hub.url}/instances")
    table_rows = page.locator("#instances-table tbody tr")
    await expect(table_rows).to_have_count(9)
    await page.locator('th[data-column="instanceId"]').click()
    await page.locator('th[data-column="instanceId"]').click()  # second click: descending
    await expect(table_rows.first).to_have_attribute("data-instance-id", "seq-2")
    await page.locator('th[data-column="duration"]').click()
    await page.locator('th[data-column="duration"]').click()
    durations = [int(d) for d in await page.locator("td[data-duration]").evaluate_all(
        "cells => cells.map(c => c.dataset.duration)")]
    assert len(durations) == 9 and durations == sorted(durations, reverse=True)

    await page.locator('label.chip:has-text("Completed") input').check()
    await page.fill("input[name=namePrefix]", "parent")
    await page.click("#instance-filters button[type=submit]")
    await expect(table_rows).to_have_count(1)
    await expect(table_rows.first).to_have_attribute("data-instance-id", "order-parent")
    assert "namePrefix=parent" in page.url and "status=Completed" in page.url  # a filtered view is a link

    await table_rows.first.locator("a").click()
    await expect(page.locator("#instance-id")).to_have_text("order-parent")
    assert page.url.endswith("/dashboard/instances/order-parent")
    sub = page.locator('.tl-row[data-kind="suborchestration"]')
    await expect(sub).to_have_count(1)
    await expect(sub.locator(".tl-bar")).to_have_class(re.compile("bar-completed"))
    box = await sub.locator(".tl-bar").bounding_box()
    assert box is not None and box["width"] > 20
    timer = page.locator('.tl-row[data-kind="timer"] .tl-bar')
    await expect(timer).to_have_class(re.compile("bar-completed"))
    assert int(await timer.get_attribute("data-duration-ms") or 0) >= 900  # a 1 s timer

    await sub.locator("a").click()
    await expect(page.locator("#instance-id")).to_have_text("order-parent-child")
    await expect(page.locator('.tl-row[data-kind="activity"] .tl-bar.bar-completed')).to_have_count(3)
    await page.locator("#parent-link").click()
    await expect(page.locator("#instance-id")).to_have_text("order-parent")
    await page.locator('button[data-tab="history"]').click()
    await expect(page.locator('#history tr[data-event-type="SubOrchestrationInstanceCompleted"]')).to_have_count(1)


async def test_failed_instance_shows_failure_and_failed_bar(hub: PopulatedHub, page: Page) -> None:
    await page.goto(f"{hub.url}/instances/failing-1")  # a deep link, loaded cold
    await expect(page.locator("#failure")).to_contain_text("the payment service said no")
    await expect(page.locator('.tl-row[data-kind="activity"] .tl-bar.bar-failed')).to_have_count(1)
    await expect(page.locator('button[data-action="rewind"]')).to_be_enabled()
    await expect(page.locator('button[data-action="terminate"]')).to_be_disabled()
    await page.goto(f"{hub.url}/instances/no-such-instance")  # a stale link: one clear line, a way back
    await expect(page.locator(".error-box")).to_have_text("no orchestration instance with id 'no-such-instance'")
    await page.click("text=← all instances")
    await expect(page.locator("#instances-table")).to_be_visible()


async def test_raise_event_completes_the_instance(hub: PopulatedHub, page: Page) -> None:
    await page.goto(f"{hub.url}/instances/approval-1")
    await expect(page.locator("dl.facts [data-status]")).to_have_text("Running")
    await expect(page.locator('.tl-row[data-kind="waiting"] .tl-bar.open')).to_have_count(1)
    await page.click('button[data-action="raise-event"]')
    await page.fill("#confirm-fields input[name=event]", "approve")
    await page.fill("#confirm-fields textarea[name=data]", '"yes"')
    await page.click("#confirm-ok")
    await expect(page.locator("dl.facts [data-status]")).to_have_text("Completed", timeout=LONG)
    await expect(page.locator("#instance-output")).to_contain_text('"approved": "yes"')
    await expect(page.locator('.tl-row[data-kind="event"]')).to_contain_text("approve")
    state = await hub.client.get_orchestration_state("approval-1")
    assert state is not None and state.runtime_status == OrchestrationStatus.Completed


async def test_terminate_from_the_instance_page(hub: PopulatedHub, page: Page) -> None:
    await page.goto(f"{hub.url}/instances/doomed-1")
    await page.click('button[data-action="terminate"]')
    await expect(page.locator("#confirm-dialog")).to_be_visible()
    await page.fill("#confirm-fields input[name=reason]", "not needed any more")
    await page.click("#confirm-ok")
    await expect(page.locator("dl.facts [data-status]")).to_have_text("Terminated", timeout=LONG)
    await expect(page.locator("#instance-output")).to_contain_text("not needed any more")


async def test_bulk_purge_asks_first(hub: PopulatedHub, page: Page) -> None:
    await page.goto(f"{hub.url}/instances?instanceIdPrefix=seq-")
    rows = page.locator("#instances-table tbody tr")
    await expect(rows).to_have_count(3)
    for instance_id in ("seq-1", "seq-2"):
        await page.locator(f'tr[data-instance-id="{instance_id}"] input[type=checkbox]').check()
    await page.click("text=Purge selected")
    await expect(page.locator("#confirm-title")).to_have_text("Purge 2 instance(s)?")
    await page.click("#confirm-dialog button[value=cancel]")  # cancelling changes nothing
    await expect(rows).to_have_count(3)
    await page.click("text=Purge selected")
    await page.click("#confirm-ok")
    await expect(rows).to_have_count(1)
    assert await hub.client.get_orchestration_state("seq-1") is None
    assert await hub.client.get_orchestration_state("seq-0") is not None


async def test_entity_state_and_signal(hub: PopulatedHub, page: Page) -> None:
    await page.goto(f"{hub.url}/entities")
    row = page.locator('#entities-table tr[data-entity="@counter@c1"]')
    await expect(row).to_contain_text("5")
    await row.locator("a").first.click()
    await expect(page.locator("#entity-id")).to_have_text("@counter@c1")
    await expect(page.locator("#entity-state")).to_have_text("5")
    await expect(page.locator("#entity-lock")).to_have_text("not locked")
    await page.click('button[data-action="signal"]')
    await page.fill("#confirm-fields input[name=op]", "add")
    await page.fill("#confirm-fields textarea[name=input]", "2")
    await page.click("#confirm-ok")
    await expect(page.locator("#entity-state")).to_have_text("7", timeout=LONG)
    await page.locator(".crumbs a").first.click()
    await page.click("#clean-entities")
    await page.click("#confirm-ok")
    await expect(page.locator("#toast")).to_contain_text("Removed 0 empty entities, released 0 orphaned locks")
    await expect(page.locator('#entities-table tr[data-entity="@counter@c1"]')).to_contain_text("7")


async def test_requeue_a_poison_message_delivers_it_and_drop_deletes_one(hub: PopulatedHub, page: Page) -> None:
    dropped = await quarantine_event(hub.client, "doomed-1", "approve", '"too late"')
    await page.goto(f"{hub.url}/overview")
    gone = page.locator(f'#poison tr[data-message-id="{dropped}"]')
    await gone.locator('button[data-action="drop"]').click()
    await expect(page.locator("#confirm-title")).to_contain_text("Drop message")
    await page.click("#confirm-ok")
    await expect(gone).to_have_count(0)
    assert await hub.client._hub.poison.get(hub.client._hub.names.control_queue_for("doomed-1"), dropped) is None
    row = page.locator(f'#poison tr[data-message-id="{hub.ids["poison"]}"]')
    await expect(row).to_contain_text("approval-2")
    await row.locator('button[data-action="requeue"]').click()
    await page.click("#confirm-ok")
    await expect(page.locator("#poison")).to_contain_text("No quarantined messages.")
    await wait_status(hub.client, "approval-2", OrchestrationStatus.Completed)
    state = await hub.client.get_orchestration_state("approval-2")
    assert state is not None and json.loads(state.output or "null") == {"approved": "from the poison table"}


async def test_a_keyed_server_asks_for_its_key(hub: PopulatedHub, page: Page) -> None:
    app = create_dashboard_app(hub.client, key="s3cret")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/dashboard/api/hub") as r:
                assert r.status == 401 and "key" in (await r.json())["Message"]
            async with http.get(f"{base}/dashboard/api/hub", headers={"x-functions-key": "s3cret"}) as r:
                assert r.status == 200
            async with http.get(f"{base}/dashboard/") as r:  # the page itself holds no data
                assert r.status == 200 and "text/html" in r.headers["Content-Type"]
        await page.goto(f"{base}/dashboard/instances")
        await expect(page.locator("#key-dialog")).to_be_visible()
        await page.fill("#key-input", "s3cret")
        await page.click("#key-dialog button")
        await expect(page.locator("#instances-table tbody tr").first).to_be_visible()
        await expect(page.locator("#hub-name")).to_have_text(hub.client.task_hub_name, timeout=LONG)
    finally:
        await runner.cleanup()


async def test_auto_refresh_suspend_resume_restart_and_purge(hub: PopulatedHub, page: Page) -> None:
    status = page.locator("dl.facts [data-status]")
    await page.goto(f"{hub.url}/instances?namePrefix=approval")
    await expect(page.locator("#instances-table tbody tr")).to_have_count(3)
    await page.check("#auto-refresh")
    await hub.client.schedule_new_orchestration("approval", instance_id="approval-9")
    new_row = page.locator('tr[data-instance-id="approval-9"]')
    await expect(new_row).to_have_count(1)  # appears without a click: auto-refresh
    await new_row.locator("a").click()
    await expect(status).to_have_text("Running")
    await page.click('button[data-action="suspend"]')
    await page.click("#confirm-ok")
    await expect(status).to_have_text("Suspended")
    await page.click('button[data-action="resume"]')
    await page.click("#confirm-ok")
    await expect(status).to_have_text("Running")

    await page.click('button[data-action="restart"]')
    await page.fill("#confirm-fields input[name=newId]", "true")
    await page.click("#confirm-ok")
    await expect(page.locator("#instance-id")).not_to_have_text("approval-9")
    restarted = await page.locator("#instance-id").inner_text()
    await expect(page.locator("dl.facts dd").first).to_have_text("approval")

    await page.click('button[data-action="purge"]')
    await page.click("#confirm-ok")
    await expect(page).to_have_url(re.compile(r"/dashboard/instances$"))
    await eventually(lambda: _gone(hub, restarted), timeout=30, message="restarted instance purged")


async def _gone(hub: PopulatedHub, instance_id: str) -> bool:
    return await hub.client.get_orchestration_state(instance_id) is None


async def test_rewind_a_failed_instance_to_completion(hub: PopulatedHub, page: Page) -> None:
    await page.goto(f"{hub.url}/instances/failing-1")
    await page.click('button[data-action="rewind"]')
    await page.click("#confirm-ok")
    await expect(page.locator("dl.facts [data-status]")).to_have_text("Completed", timeout=LONG)
    await expect(page.locator("#instance-output")).to_contain_text("paid failing-1")


async def test_another_site_cannot_use_the_dashboard_through_the_browser(hub: PopulatedHub) -> None:
    bulk = f"{hub.url}/api/instances/bulk"
    body = json.dumps({"action": "purge", "instanceIds": ["seq-0"]})
    async with aiohttp.ClientSession() as http:
        # A "simple" cross-site POST (text/plain needs no preflight) is refused before it runs.
        async with http.post(bulk, data=body, headers={"Content-Type": "text/plain"}) as r:
            assert r.status == 415
        async with http.post(bulk, data=body, headers={"Content-Type": "application/json",
                                                       "Origin": "http://evil.example"}) as r:
            assert r.status == 403 and "cross-origin" in (await r.json())["Message"]
        # DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 is not answered.
        async with http.get(f"{hub.url}/api/hub", headers={"Host": "evil.example:80"}) as r:
            assert r.status == 403 and "loopback" in (await r.json())["Message"]
        async with http.get(f"{hub.url}/api/hub", headers={"Host": "localhost"}) as r:
            assert r.status == 200
    assert await hub.client.get_orchestration_state("seq-0") is not None
