"""Peer: DBOS Transact on a local PostgreSQL (started by the suite, see ``benchmarks/postgres.py``).

DBOS checkpoints each workflow and step in PostgreSQL and does not replay: a workflow function
runs once, step outputs are recorded as they finish. "Transactions" for this column are
SQL statements DBOS sends to PostgreSQL (counted by SQLAlchemy engine events in this process),
the nearest thing to a storage transaction; commits are counted too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from .base import Completion, Engine


class DbosEngine(Engine):
    name = "dbos-postgres"

    def __init__(self, database_url: str, *, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self.url = database_url
        self._sql: Counter[tuple[str, str]] = Counter()
        self._handles: dict[str, Any] = {}  # start_workflow's handles wait on the local future, no polling

    def unsupported(self, workload: str) -> str | None:
        if workload == "entity-ops":
            return "DBOS has no durable entities"
        return None

    async def start(self) -> None:
        from dbos import DBOS

        from . import dbos_app

        self.workflows = dbos_app.WORKFLOWS
        DBOS(config={"name": "bench", "system_database_url": self.url, "log_level": "WARNING"})
        self._listen()
        await asyncio.to_thread(DBOS.launch)
        await asyncio.to_thread(DBOS.register_queue, dbos_app.FANOUT_QUEUE)
        self.dbos = DBOS

    def _listen(self) -> None:
        import sqlalchemy
        from sqlalchemy import event

        sql = self._sql

        def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
            verb = text.lstrip().split(None, 1)[0].upper() if text.strip() else "?"
            sql[("postgres", verb)] += 1

        def commit(conn: Any) -> None:
            sql[("postgres", "COMMIT")] += 1

        event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", statement)
        event.listen(sqlalchemy.engine.Engine, "commit", commit)

    async def stop(self) -> None:
        await asyncio.to_thread(self.dbos.destroy, workflow_completion_timeout_sec=0)

    async def start_many(self, orchestrator: str, inputs: list[Any]) -> list[str]:
        fn: Any = self.workflows[orchestrator]

        def run() -> list[str]:
            ids = []
            for value in inputs:
                handle: Any = self.dbos.start_workflow(fn, value)
                self._handles[handle.get_workflow_id()] = handle
                ids.append(handle.get_workflow_id())
            return ids

        return await asyncio.to_thread(run)

    def _completion(self, instance_id: str) -> Completion:
        handle = self._handles.pop(instance_id, None) or self.dbos.retrieve_workflow(instance_id)
        try:
            output = handle.get_result()
            ok = True
        except Exception as exc:  # a failed workflow is a result here, not a crash
            output, ok = repr(exc), False
        status = self.dbos.get_workflow_status(instance_id)
        seconds = None
        if status is not None and status.created_at and status.updated_at:
            seconds = (status.updated_at - status.created_at) / 1000
        return Completion(instance_id, ok, output, seconds)

    async def wait_all(self, instance_ids: list[str], timeout: float) -> list[Completion]:
        def run() -> list[Completion]:
            return [self._completion(i) for i in instance_ids]

        return await asyncio.wait_for(asyncio.to_thread(run), timeout)

    async def wait_fast(self, instance_id: str, timeout: float) -> Completion:
        return await asyncio.wait_for(asyncio.to_thread(self._completion, instance_id), timeout)

    async def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        await asyncio.to_thread(self.dbos.send, instance_id, data, name)

    def reset_transactions(self) -> None:
        self._sql.clear()

    def transactions(self) -> dict[str, Counter[tuple[str, str]]]:
        return {"engine": Counter(self._sql), "monitor": Counter()}

    def transaction_label(self) -> str:
        return "SQL round trips (statements + commits)"
