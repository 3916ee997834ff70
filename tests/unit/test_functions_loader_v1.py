"""Indexing v1 (function.json) apps: what loads, what is skipped, and the message for each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from durable_azstorage.errors import ConfigurationError
from durable_azstorage.functions import load_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "functions_v1_app"


def _function(app: Path, name: str, bindings: list[dict[str, Any]], code: str, **extra: Any) -> Path:
    folder = app / name
    folder.mkdir(parents=True)
    (folder / "function.json").write_text(json.dumps({"bindings": bindings, **extra}))
    (folder / str(extra.get("scriptFile", "__init__.py"))).write_text(code)
    return folder


_ACTIVITY = [{"name": "value", "type": "activityTrigger", "direction": "in"}]


def test_the_example_app_is_indexed_as_the_worker_would() -> None:
    index = load_app(EXAMPLE)
    assert index.model == "v1" and index.problems == []
    assert set(index.orchestrators) == {"E1_HelloSequence", "E2_FanOutFanIn", "E3_HelloCities"}
    assert set(index.activities) == {"E1_SayHello", "E2_GetWorkItems", "E2_Square"}
    assert set(index.entities) == {"Counter"}
    http = {f.name: f for f in index.http}
    assert http["HttpStart"].route == "orchestrators/{functionName}" and http["HttpStart"].methods == ("POST",)
    assert http["HttpStart"].client_binding == "starter" and http["HttpStart"].output_binding == "$return"
    assert http["HttpStart"].auth_level == "function"
    assert http["HttpStartAndWait"].output_binding == "message"  # a named http output
    assert http["HttpStartAndWait"].client_binding == "starter"  # the older orchestrationClient type
    assert http["CounterApi"].auth_level == "anonymous"
    # relative imports through __app__ work (E1_SayHello imports ..shared_code)
    assert index.activities["E1_SayHello"].function(name="Ana") == "Hello Ana!"
    assert index.activities["E2_GetWorkItems"].binding_name == "count"


def test_scriptfile_entrypoint_and_context_parameter() -> None:
    square = load_app(EXAMPLE).activities["E2_Square"]
    assert square.binding_name == "value"
    assert asyncio.run(square.function(value=7)) == 49  # the Context is injected per call


def test_unsupported_binding_broken_json_and_import_error_skip_only_that_function(tmp_path: Path) -> None:
    _function(tmp_path, "Good", _ACTIVITY, "def main(value):\n    return value\n")
    _function(tmp_path, "Sms", [*_ACTIVITY, {"name": "msg", "type": "twilioSms", "direction": "out"}],
              "def main(value, msg):\n    pass\n")
    broken = tmp_path / "Broken"
    broken.mkdir()
    (broken / "function.json").write_text('{\n  "bindings": [,]\n}')
    _function(tmp_path, "Crashes", _ACTIVITY, "raise RuntimeError('boom at import')\n")
    index = load_app(tmp_path)
    assert set(index.activities) == {"Good"}
    problems = sorted(index.problems)
    assert len(problems) == 3
    assert problems[0].startswith("function 'Broken' was not loaded: ")
    assert f"{broken / 'function.json'}: invalid JSON at line 2 column" in problems[0]
    assert "importing Crashes/__init__.py failed: RuntimeError: boom at import" in problems[1]
    assert "binding 'msg' of type 'twilioSms' is not supported" in problems[2]


def test_parameters_must_match_bindings(tmp_path: Path) -> None:
    _function(tmp_path, "Extra", _ACTIVITY, "def main(value, other):\n    return value\n")
    _function(tmp_path, "Missing", _ACTIVITY, "def main():\n    return 1\n")
    _function(tmp_path, "NoMain", _ACTIVITY, "def run(value):\n    return 1\n")
    problems = sorted(load_app(tmp_path).problems)
    assert "declared in Python but not in function.json: ['other']" in problems[0]
    assert "declared in function.json but not in Python: ['value']" in problems[1]
    assert "has no function main() (entryPoint)" in problems[2]


def test_disabled_functions_and_the_host_json_function_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = "def main(value):\n    return value\n"
    _function(tmp_path, "A", _ACTIVITY, code)
    _function(tmp_path, "B", _ACTIVITY, code, disabled=True)
    _function(tmp_path, "C", _ACTIVITY, code)
    _function(tmp_path, "D", _ACTIVITY, code)
    monkeypatch.setenv("AzureWebJobs.C.Disabled", "true")
    assert set(load_app(tmp_path).activities) == {"A", "D"}
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", "functions": ["d"]}))
    assert set(load_app(tmp_path).activities) == {"D"}


def test_script_outside_the_app_and_duplicate_names(tmp_path: Path) -> None:
    app = tmp_path / "app"
    _function(app, "Outside", _ACTIVITY, "def main(value):\n    return value\n", scriptFile="../../elsewhere.py")
    assert "is outside the app folder" in load_app(app).problems[0]
    _function(app, "Twice", _ACTIVITY, "def main(value):\n    return value\n")
    _function(app, "twice", _ACTIVITY, "def main(value):\n    return value\n")
    with pytest.raises(ConfigurationError, match="two functions are named"):
        load_app(app)


def test_a_folder_without_functions_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(ConfigurationError, match="neither a v2 app"):
        load_app(tmp_path)


def test_broken_host_json_names_the_file(tmp_path: Path) -> None:
    _function(tmp_path, "A", _ACTIVITY, "def main(value):\n    return value\n")
    (tmp_path / "host.json").write_text('{"version": "2.0",,}')
    with pytest.raises(ConfigurationError, match=r"host\.json"):
        load_app(tmp_path)


def test_host_json_hub_and_partitions_reach_the_worker_settings() -> None:
    from durable_azstorage.app_files import load_app_files
    from durable_azstorage.connection import StorageAccount
    from durable_azstorage.functions import FunctionsHost

    account = StorageAccount.from_connection_string("UseDevelopmentStorage=true")
    host = FunctionsHost(load_app(EXAMPLE), account, app_files=load_app_files(EXAMPLE))
    assert host.settings.task_hub_name == "FunctionsV1Samples"
    assert host.settings.partition_count == 4 and host.route_prefix == "api"
