"""The hub overview: partitions and their queues, work items, poison, status counts, cost.

Every figure is read from storage on request (a handful of point reads and one-message
peeks per partition), except the status counts: counting means scanning the Instances table
(one ``RuntimeStatus`` projection per 1,000 rows), so :class:`HubSampler` does it in the
background every ``interval`` seconds and keeps the series in memory for the chart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError

from ..aio import TaskHubClient
from ..metrics import TransactionCounter
from ..model import OrchestrationStatus
from ._timeline import iso_ms

__all__ = ["HealthCheck", "HealthFinding", "HubSampler", "overview", "partitions", "queue_depth"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthFinding:
    """One line of the health panel (``level``: ok | info | warning | error)."""

    level: str
    title: str
    detail: str = ""
    link: str = ""  # where to look: a dashboard URL or an ``#anchor`` of the overview

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "title": self.title, "detail": self.detail, "link": self.link}


HealthCheck = Callable[[TaskHubClient], Awaitable[list[HealthFinding]]]
"""A source of health findings (issue #21's ``doctor`` plugs in here via ``mount_dashboard``)."""


async def queue_depth(client: TaskHubClient, queue_name: str, now: datetime) -> dict[str, Any]:
    """Approximate message count and the age of the oldest *visible* message (one peek)."""
    queue = client.storage.queue_service.get_queue_client(queue_name)
    try:
        properties = await queue.get_queue_properties()
        peeked = await queue.peek_messages(max_messages=1)
    except ResourceNotFoundError:
        return {"queue": queue_name, "exists": False, "depth": 0, "oldestAgeSeconds": None}
    oldest = peeked[0].inserted_on if peeked else None
    return {
        "queue": queue_name,
        "exists": True,
        "depth": int(properties.approximate_message_count or 0),
        "oldestAgeSeconds": None if oldest is None else max(0.0, (now - oldest).total_seconds()),
    }


async def partitions(client: TaskHubClient, now: datetime) -> list[dict[str, Any]]:
    """The ``{Hub}Partitions`` rows with each control queue's depth and oldest message age."""
    hub = client.storage
    table = hub.table_service.get_table_client(hub.names.partitions_table)
    try:
        rows = {str(e["RowKey"]): e async for e in table.query_entities("PartitionKey eq ''")}
    except ResourceNotFoundError:
        rows = {}
    names = sorted(set(hub.names.control_queues) | set(rows))
    depths = await asyncio.gather(*(queue_depth(client, name, now) for name in names))
    out = []
    for name, depth in zip(names, depths, strict=True):
        row: Any = rows.get(name, {})
        expires = row.get("ExpiresAt")
        out.append(
            {
                "partition": name,
                "owner": row.get("CurrentOwner") or None,
                "nextOwner": row.get("NextOwner") or None,
                "ownedSince": iso_ms(row.get("OwnedSince")),
                "leaseExpires": iso_ms(expires),
                "leaseExpired": bool(expires is not None and expires <= now),
                "draining": bool(row.get("IsDraining", False)),
                "depth": depth["depth"],
                "oldestAgeSeconds": depth["oldestAgeSeconds"],
            }
        )
    return out


async def poison_count(client: TaskHubClient) -> int:
    hub = client.storage
    table = hub.table_service.get_table_client(hub.names.poison_table)
    try:
        return len([e async for e in table.list_entities(select=["PartitionKey"])])
    except ResourceNotFoundError:
        return 0


async def status_counts(client: TaskHubClient) -> dict[str, int]:
    """Orchestrations per runtime status (entities excluded): one projected scan."""
    hub = client.storage
    table = hub.table_service.get_table_client(hub.names.instances_table)
    counts: Counter[str] = Counter()
    try:
        async for e in table.query_entities(
            "PartitionKey lt '@' or PartitionKey ge 'A'", select=["RuntimeStatus"], results_per_page=1000
        ):
            counts[str(e.get("RuntimeStatus") or "Unknown")] += 1
    except ResourceNotFoundError:
        pass
    return {name: counts.get(name, 0) for name in OrchestrationStatus.__members__} | {
        k: v for k, v in counts.items() if k not in OrchestrationStatus.__members__
    }


class HubSampler:
    """Samples status counts and the transaction counter every ``interval`` seconds.

    The series lives in memory (``max_points`` samples): the chart covers the time this
    process has been serving. Transactions are those of this process's storage clients
    (worker included when the dashboard runs inside ``run``/``sidecar``).
    """

    def __init__(
        self,
        client: TaskHubClient,
        counter: TransactionCounter | None,
        *,
        interval: float = 30.0,
        max_points: int = 2880,
    ) -> None:
        self.client = client
        self.counter = counter
        self.interval = interval
        self.points: deque[dict[str, Any]] = deque(maxlen=max_points)
        self._lock = asyncio.Lock()
        self._recount: asyncio.Task[None] | None = None

    async def sample(self) -> dict[str, Any]:
        async with self._lock:
            counts = await status_counts(self.client)
            point = {
                "time": iso_ms(datetime.now(timezone.utc)),
                "counts": counts,
                "transactions": self.counter.total if self.counter is not None else None,
            }
            self.points.append(point)
            return point

    async def latest(self, max_age: float = 5.0) -> dict[str, Any]:
        """The newest sample without waiting for a scan, except for the very first one.

        When it is older than ``max_age`` seconds (a page is open) a recount starts in the
        background and :attr:`counting` tells the page to ask again shortly: on a large hub
        the scan takes seconds and the overview must not wait for it.
        """
        if not self.points:
            return await self.sample()
        taken = datetime.fromisoformat(self.points[-1]["time"].replace("Z", "+00:00"))
        if (datetime.now(timezone.utc) - taken).total_seconds() > max_age and not self.counting:
            self._recount = asyncio.create_task(self._sample_logged(), name="dashboard-recount")
        return self.points[-1]

    @property
    def counting(self) -> bool:
        return self._recount is not None and not self._recount.done()

    async def _sample_logged(self) -> None:
        try:
            await self.sample()
        except (AzureError, OSError):
            log.warning("dashboard.sample_failed", exc_info=True)

    def transactions_per_minute(self) -> list[dict[str, Any]]:
        """Per-minute rates between consecutive samples."""
        out = []
        previous: dict[str, Any] | None = None
        for point in self.points:
            if previous is not None and point["transactions"] is not None and previous["transactions"] is not None:
                seconds = (
                    datetime.fromisoformat(point["time"].replace("Z", "+00:00"))
                    - datetime.fromisoformat(previous["time"].replace("Z", "+00:00"))
                ).total_seconds()
                if seconds > 0:
                    rate = (point["transactions"] - previous["transactions"]) * 60.0 / seconds
                    out.append({"time": point["time"], "perMinute": round(rate, 1)})
            previous = point
        return out

    async def run(self) -> None:
        while True:
            await self._sample_logged()
            await asyncio.sleep(self.interval)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self.run(), name="dashboard-sampler")
        try:
            yield
        finally:
            for running in (task, self._recount):
                if running is not None:
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running


def builtin_findings(parts: list[dict[str, Any]], poison: int, work_items: dict[str, Any]) -> list[HealthFinding]:
    """What the overview itself can tell: no worker, expired leases, poison, stuck queues."""
    findings: list[HealthFinding] = []
    if not any(p["owner"] for p in parts):
        findings.append(HealthFinding("warning", "No worker owns a partition", "Start a worker (or `run`)."))
    expired = [p["partition"] for p in parts if p["owner"] and p["leaseExpired"]]
    if expired:
        findings.append(HealthFinding("warning", "Expired partition leases", ", ".join(expired), link="#partitions"))
    if poison:
        findings.append(HealthFinding("warning", f"{poison} quarantined message(s)", "requeue or drop them below",
                                      link="#poison"))
    stuck = [q for q in [*parts, work_items] if (q.get("oldestAgeSeconds") or 0) > 300]
    if stuck:
        names = ", ".join(str(q.get("partition") or q.get("queue")) for q in stuck)
        findings.append(HealthFinding("warning", "Messages waiting over 5 minutes", names, link="#partitions"))
    return findings or [HealthFinding("ok", "No problems seen")]


async def overview(
    client: TaskHubClient, sampler: HubSampler, checks: list[HealthCheck]
) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    parts, work_items, poison, _ = await asyncio.gather(
        partitions(client, now),
        queue_depth(client, client.storage.names.work_item_queue, now),
        poison_count(client),
        sampler.latest(),
    )
    latest = sampler.points[-1]  # a background recount may have finished meanwhile
    findings = builtin_findings(parts, poison, work_items)
    for check in checks:
        try:
            findings.extend(await check(client))
        except Exception as exc:  # a broken plug-in must not take the overview down
            log.warning("dashboard.health_check_failed", exc_info=True)
            findings.append(HealthFinding("error", "A health check failed", f"{type(exc).__name__}: {exc}"))
    counter = sampler.counter
    return {
        "taskHub": client.task_hub_name,
        "now": iso_ms(now),
        "statusCounts": latest["counts"],
        "countedAt": latest["time"],
        "counting": sampler.counting,
        "series": list(sampler.points),
        "sampleIntervalSeconds": sampler.interval,
        "partitions": parts,
        "workItems": work_items,
        "poisonCount": poison,
        "transactions": {
            "total": counter.total if counter is not None else None,
            "byService": counter.by_service() if counter is not None else {},
            "perMinute": sampler.transactions_per_minute(),
        },
        "health": [f.to_json() for f in findings],
    }
