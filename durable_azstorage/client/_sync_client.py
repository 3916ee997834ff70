"""The synchronous ``TaskHubClient``: the async client run on a private event-loop thread.

Azure SDK guidelines put the sync client at the package root and the async one under
``.aio``; both have the same method names. The async client (and its aiohttp sessions) is
created and always used on the private loop, so it is safe to call this one from any
thread, including from inside a foreign running event loop's executor.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection, Coroutine, Iterator
from concurrent.futures import Future
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from ..connection import StorageAccount
from ..model import HistoryEvent, InstanceQuery, OrchestrationState, OrchestrationStatus
from ..storage import PoisonRecord, TaskHubStorage
from ._async_client import DEFAULT_DEDUPE_STATUSES, InstancePage, PurgeResult
from ._async_client import TaskHubClient as AsyncTaskHubClient
from ._entities import SyncEntityClientMixin

__all__ = ["TaskHubClient"]

T = TypeVar("T")


class _LoopThread:
    """One daemon thread running one event loop until closed."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="durable-azstorage-client", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class TaskHubClient(SyncEntityClientMixin):
    """Start, inspect and manage orchestration instances (and entities), synchronously.

    Create with :meth:`from_connection_string` or :meth:`open`; use ``with`` (or call
    :meth:`close`) so the loop thread and HTTP sessions end.
    """

    def __init__(self, account: StorageAccount, task_hub_name: str) -> None:
        self._runner = _LoopThread()
        try:
            self._client = self._runner.run(AsyncTaskHubClient.open(account, task_hub_name))
        except BaseException:
            self._runner.stop()
            raise

    @classmethod
    def open(cls, account: StorageAccount, task_hub_name: str) -> TaskHubClient:
        return cls(account, task_hub_name)

    @classmethod
    def from_connection_string(cls, connection_string: str, task_hub_name: str) -> TaskHubClient:
        return cls(StorageAccount.from_connection_string(connection_string), task_hub_name)

    @property
    def task_hub_name(self) -> str:
        return self._client.task_hub_name

    @property
    def storage(self) -> TaskHubStorage:
        """The hub's stores (async objects: use them from :attr:`aio`'s loop)."""
        return self._client.storage

    @property
    def account(self) -> StorageAccount:
        return self._client.account

    @property
    def aio(self) -> AsyncTaskHubClient:
        """The async client behind this one (only usable on its private loop)."""
        return self._client

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def close(self) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._runner.stop()

    def __enter__(self) -> TaskHubClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def schedule_new_orchestration(
        self,
        name: str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        tags: dict[str, str] | None = None,
        version: str | None = None,
        dedupe_statuses: Collection[OrchestrationStatus] = DEFAULT_DEDUPE_STATUSES,
        raw_input: str | None = None,
    ) -> str:
        return self._run(
            self._client.schedule_new_orchestration(
                name,
                input=input,
                instance_id=instance_id,
                start_at=start_at,
                tags=tags,
                version=version,
                dedupe_statuses=dedupe_statuses,
                raw_input=raw_input,
            )
        )

    def get_orchestration_state(self, instance_id: str, *, fetch_payloads: bool = True) -> OrchestrationState | None:
        return self._run(self._client.get_orchestration_state(instance_id, fetch_payloads=fetch_payloads))

    def get_orchestration_history(self, instance_id: str) -> list[HistoryEvent]:
        return self._run(self._client.get_orchestration_history(instance_id))

    def raise_event(self, instance_id: str, event_name: str, data: Any = None, *, raw_data: str | None = None) -> None:
        self._run(self._client.raise_event(instance_id, event_name, data, raw_data=raw_data))

    def terminate(self, instance_id: str, reason: Any = None) -> None:
        self._run(self._client.terminate(instance_id, reason))

    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        self._run(self._client.suspend(instance_id, reason))

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        self._run(self._client.resume(instance_id, reason))

    def rewind(self, instance_id: str, reason: str | None = None) -> list[str]:
        return self._run(self._client.rewind(instance_id, reason))

    def restart(self, instance_id: str, *, new_instance_id: bool = False) -> str:
        return self._run(self._client.restart(instance_id, new_instance_id=new_instance_id))

    def wait_for_completion(
        self,
        instance_id: str,
        *,
        timeout: float | None = None,
        fetch_payloads: bool = True,
        on_poll: Callable[[OrchestrationState | None], None] | None = None,
    ) -> OrchestrationState:
        return self._run(
            self._client.wait_for_completion(
                instance_id, timeout=timeout, fetch_payloads=fetch_payloads, on_poll=on_poll
            )
        )

    def create_task_hub(self) -> None:
        self._run(self._client.create_task_hub())

    def list_poison_messages(self, queue: str | None = None) -> list[PoisonRecord]:
        return self._run(self._client.list_poison_messages(queue))

    def release_poison_message(self, queue: str, message_id: str, *, requeue: bool) -> bool:
        return self._run(self._client.release_poison_message(queue, message_id, requeue=requeue))

    def purge_instance(self, instance_id: str) -> PurgeResult:
        return self._run(self._client.purge_instance(instance_id))

    def purge_instances(
        self,
        *,
        created_from: datetime,
        created_to: datetime | None = None,
        runtime_status: Collection[OrchestrationStatus] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> PurgeResult:
        """``progress`` is called on the client's loop thread."""
        return self._run(
            self._client.purge_instances(
                created_from=created_from, created_to=created_to, runtime_status=runtime_status, progress=progress
            )
        )

    def query_instances(
        self, query: InstanceQuery | None = None, *, continuation_token: str | None = None, **filters: Any
    ) -> InstancePage:
        return self._run(self._client.query_instances(query, continuation_token=continuation_token, **filters))

    def list_instances(self, query: InstanceQuery | None = None, **filters: Any) -> Iterator[OrchestrationState]:
        """Every matching instance; pages are fetched lazily as the iterator advances."""
        query = query or InstanceQuery.of(**filters)
        token: str | None = None
        while True:
            page = self.query_instances(query, continuation_token=token)
            yield from page.instances
            token = page.continuation_token
            if token is None:
                return

    def create_http_management_payload(
        self, instance_id: str, base_url: str, *, connection: str = "Storage", code: str | None = None
    ) -> dict[str, str]:
        return self._client.create_http_management_payload(instance_id, base_url, connection=connection, code=code)
