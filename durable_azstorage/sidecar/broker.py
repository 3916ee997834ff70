"""Hands work items to connected gRPC workers and routes their completions back.

The embedded worker host runs exactly as in-process: it leases queue messages, builds an
episode, and calls a runtime; the remote runtimes (:mod:`.remote_runtime`) put that call here
as a :class:`PendingWork` and await its future. The broker picks a connected worker stream
with a free slot for that kind (fewest in flight first, so several workers share fairly and
each one's ``maxConcurrent*`` is respected), stamps a fresh completion token and writes the
work item to the stream. ``Complete*`` resolves the future with the worker's response.

``Abandon*`` or a dropped stream puts the work back at the front of the line for another
worker (after a short pause, so a worker that abandons everything does not spin): the queue
message stays leased by this process and is never returned to storage, so an abandon never
counts as a dequeue toward poison quarantine. Nothing is sent while no worker is connected;
the work simply waits (activity work items keep their queue lease renewed meanwhile).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Broker", "ConnectedWorker", "Kind", "PendingWork", "SidecarStopping", "UnknownCompletionToken"]

log = logging.getLogger(__name__)

ABANDON_PAUSE = 1.0  # seconds before abandoned work is offered again


class Kind(enum.Enum):
    ORCHESTRATION = "orchestration"
    ACTIVITY = "activity"
    ENTITY = "entity"


class UnknownCompletionToken(LookupError):
    """A completion for work this sidecar no longer waits for (re-dispatched, or sidecar restarted)."""


class SidecarStopping(RuntimeError):
    """The sidecar is shutting down: the episode is given back to storage at once."""


@dataclass(eq=False)
class PendingWork:
    """One work item waiting for (or running on) a remote worker."""

    kind: Kind
    work_item: Any  # pb.WorkItem without a token
    match_key: tuple[str, int | None]  # (instance id, task id) for workers that echo no token (Go)
    future: asyncio.Future[Any]
    name: str = ""  # orchestration, activity or entity name, for workers' work-item filters
    version: str | None = None
    token: str = ""
    worker: ConnectedWorker | None = None
    dispatches: int = 0


@dataclass(eq=False)
class ConnectedWorker:
    """One open ``GetWorkItems`` stream."""

    name: str
    limits: dict[Kind, int]
    # Per kind: None takes everything; else accepted names → accepted versions (empty: any).
    filters: dict[Kind, dict[str, frozenset[str]] | None] = field(default_factory=dict)
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    in_flight: dict[str, PendingWork] = field(default_factory=dict)
    dispatched: int = 0
    counts: dict[Kind, int] = field(default_factory=lambda: dict.fromkeys(Kind, 0))

    def add(self, work: PendingWork) -> None:
        self.in_flight[work.token] = work
        self.counts[work.kind] += 1

    def remove(self, token: str) -> None:
        work = self.in_flight.pop(token, None)
        if work is not None:
            self.counts[work.kind] -= 1

    def busy(self, kind: Kind) -> int:
        return self.counts[kind]

    def has_room(self, kind: Kind) -> bool:
        return self.busy(kind) < self.limits[kind]

    def accepts(self, work: PendingWork) -> bool:
        """The worker's work-item filters (as the durabletask in-memory backend reads them)."""
        wanted = self.filters.get(work.kind)
        if wanted is None:
            return True
        name = work.name.lower() if work.kind is Kind.ENTITY else work.name
        versions = wanted.get(name)
        if versions is None:
            return False
        # Activity versions are not known here (the host passes name and input): names only.
        return not versions or work.kind is Kind.ACTIVITY or (work.version or "") in versions


class Broker:
    """Fair dispatch of work to connected workers; completion tokens; abandon and re-dispatch."""

    def __init__(self, *, abandon_pause: float = ABANDON_PAUSE) -> None:
        self._workers: list[ConnectedWorker] = []
        self._waiting: dict[Kind, deque[PendingWork]] = {kind: deque() for kind in Kind}
        self._by_token: dict[str, PendingWork] = {}
        self._counter = itertools.count(1)
        self._abandon_pause = abandon_pause
        self.connected = asyncio.Event()
        self._stopping = False
        self.abandoned = 0  # work items given back by workers (Abandon*), for logs and tests

    # ------------------------------------------------------------------ runtime side
    async def run(
        self, kind: Kind, work_item: Any, match_key: tuple[str, int | None], *, name: str = "",
        version: str | None = None,
    ) -> Any:
        """Send ``work_item`` to a worker and return its completion (waits for one to connect)."""
        future = asyncio.get_running_loop().create_future()
        work = PendingWork(kind, work_item, match_key, future, name=name, version=version)
        if self._stopping:
            self._give_up(work)
        else:
            self._waiting[kind].append(work)
            self._dispatch()
        try:
            return await work.future
        finally:
            self._forget(work)

    def _forget(self, work: PendingWork) -> None:
        """The runtime stopped waiting (done, or the episode was cancelled on shutdown)."""
        if work.token:
            self._by_token.pop(work.token, None)
        if work.worker is not None:
            work.worker.remove(work.token)
            work.worker = None
            self._dispatch()
        queue = self._waiting[work.kind]
        if work in queue:
            queue.remove(work)

    # ------------------------------------------------------------------ worker side
    def connect(
        self, limits: dict[Kind, int], filters: dict[Kind, dict[str, frozenset[str]] | None] | None = None
    ) -> ConnectedWorker:
        worker = ConnectedWorker(name=f"worker-{next(self._counter)}", limits=limits, filters=filters or {})
        self._workers.append(worker)
        self.connected.set()
        limits_text = {k.value: v for k, v in limits.items()}
        log.info("sidecar.worker_connected", extra={"worker": worker.name, "limits": limits_text})
        self._dispatch()
        return worker

    def disconnect(self, worker: ConnectedWorker) -> None:
        """A stream ended: everything it held goes back to the front of the line, at once."""
        if worker in self._workers:
            self._workers.remove(worker)
        if not self._workers:
            self.connected.clear()
        returned = list(worker.in_flight.values())
        worker.in_flight.clear()
        worker.counts = dict.fromkeys(Kind, 0)
        for work in reversed(returned):
            self._by_token.pop(work.token, None)
            work.worker, work.token = None, ""
            if not work.future.done():
                self._waiting[work.kind].appendleft(work)
        log.info("sidecar.worker_disconnected", extra={"worker": worker.name, "returned": len(returned)})
        self._dispatch()

    def complete(self, kind: Kind, token: str, response: Any, match_key: tuple[str, int | None]) -> None:
        work = self._take(kind, token, match_key)
        if not work.future.done():
            work.future.set_result(response)

    def abandon(self, kind: Kind, token: str) -> None:
        """The worker gave the work back: offer it again after a short pause, never to storage."""
        work = self._take(kind, token, None)
        self.abandoned += 1
        log.info("sidecar.work_abandoned", extra={"kind": kind.value, "instance_id": work.match_key[0]})
        loop = asyncio.get_running_loop()
        loop.call_later(self._abandon_pause, self._requeue, work)

    def _requeue(self, work: PendingWork) -> None:
        if not work.future.done():
            self._waiting[work.kind].appendleft(work)
            self._dispatch()

    def _take(self, kind: Kind, token: str, match_key: tuple[str, int | None] | None) -> PendingWork:
        work = self._by_token.get(token) if token else self._match(kind, match_key)
        if work is None or work.kind is not kind:
            raise UnknownCompletionToken(
                f"no {kind.value} work item with completion token {token!r} is in flight here "
                "(it was given to another worker, or the sidecar restarted); the result is dropped"
            )
        self._by_token.pop(work.token, None)
        if work.worker is not None:
            work.worker.remove(work.token)
            work.worker = None
        work.token = ""
        self._dispatch()
        return work

    def _match(self, kind: Kind, match_key: tuple[str, int | None] | None) -> PendingWork | None:
        if match_key is None:
            return None
        for work in self._by_token.values():
            if work.kind is kind and work.match_key == match_key:
                return work
        return None

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self) -> None:
        for kind, queue in self._waiting.items():
            for work in list(queue):
                if not any(w.has_room(kind) for w in self._workers):
                    break
                worker = self._pick(work)
                if worker is not None:
                    queue.remove(work)
                    self._send(worker, work)

    def _pick(self, work: PendingWork) -> ConnectedWorker | None:
        candidates = [w for w in self._workers if w.has_room(work.kind) and w.accepts(work)]
        if not candidates:
            return None
        # Fewest in flight first; among equals the one served longest ago (round robin).
        return min(candidates, key=lambda w: (len(w.in_flight), w.dispatched))

    def _send(self, worker: ConnectedWorker, work: PendingWork) -> None:
        work.token = uuid.uuid4().hex
        work.worker = worker
        work.dispatches += 1
        worker.add(work)
        worker.dispatched = next(self._counter)
        self._by_token[work.token] = work
        item = type(work.work_item)()
        item.CopyFrom(work.work_item)
        item.completionToken = work.token
        worker.outbox.put_nowait(item)

    # ------------------------------------------------------------------ shutdown
    def stop_waiting(self) -> None:
        """Stop: work no worker has taken yet is given up now; work in flight may still finish."""
        self._stopping = True
        for queue in self._waiting.values():
            while queue:
                self._give_up(queue.popleft())

    def close(self) -> None:
        """After the server stopped: give up everything still pending."""
        self.stop_waiting()
        for work in list(self._by_token.values()):
            self._give_up(work)

    @staticmethod
    def _give_up(work: PendingWork) -> None:
        """Orchestration/entity episodes fail (the host abandons their messages at once); an
        activity is cancelled, because the host would report a raised error as the activity's
        own failure: its work item re-appears when its queue lease ends."""
        if work.future.done():
            return
        if work.kind is Kind.ACTIVITY:
            work.future.cancel()
        else:
            work.future.set_exception(SidecarStopping("the sidecar is stopping"))

    # ------------------------------------------------------------------ introspection
    @property
    def worker_count(self) -> int:
        return len(self._workers)

    def waiting(self, kind: Kind) -> int:
        return len(self._waiting[kind])
