"""``durable-azstorage run``: a storage error is one line and exit code 2, not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from durable_azstorage import cli
from durable_azstorage.cli import hosts
from durable_azstorage.functions import _host

EXAMPLE = Path(__file__).parents[2] / "examples" / "functions_v1_app"


def test_unreachable_storage_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def unreachable(self: Any) -> None:
        raise ServiceRequestError("Cannot connect to host 127.0.0.1:1\nmore detail")

    async def reachable(*_: Any) -> None:  # the start-up check passes; the storage goes away after it
        return None

    monkeypatch.setattr(_host.FunctionsHost, "start", unreachable)
    monkeypatch.setattr(hosts, "_preflight", reachable)
    monkeypatch.setattr(sys, "argv", ["durable-azstorage", "run", str(EXAMPLE), "--port", "0",
                                      "--connection", "UseDevelopmentStorage=true"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "error: storage request failed: Cannot connect to host 127.0.0.1:1"
    assert "Traceback" not in err
