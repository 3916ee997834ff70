"""host.json / local.settings.json reading (pure file parsing, no storage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from durable_azstorage.app_files import load_app_files
from durable_azstorage.errors import ConfigurationError


def _write(folder: Path, host: object, values: dict[str, object] | None = None) -> Path:
    (folder / "host.json").write_text(json.dumps(host))
    if values is not None:
        (folder / "local.settings.json").write_text(json.dumps({"Values": values}))
    return folder


def test_v2_host_json_section(tmp_path: Path) -> None:
    host = {"version": "2.0", "extensions": {"durableTask": {
        "HubName": "MyHub", "storageProvider": {"partitionCount": 8, "connectionName": "Store"}}}}
    files = load_app_files(_write(tmp_path, host))
    assert (files.task_hub_name({}), files.partition_count(), files.connection_setting()) == ("MyHub", 8, "Store")


def test_v1_host_json_uses_the_root_section(tmp_path: Path) -> None:
    host = {"durableTask": {"hubName": "Old", "AzureStorageConnectionStringName": "S"}}
    files = load_app_files(_write(tmp_path, host))
    assert (files.task_hub_name({}), files.connection_setting()) == ("Old", "S")


def test_missing_files_mean_no_defaults(tmp_path: Path) -> None:
    files = load_app_files(tmp_path)
    assert (files.task_hub_name({}), files.connection_setting(), files.partition_count()) == (None, None, None)


def test_local_values_never_override_the_environment(tmp_path: Path) -> None:
    files = load_app_files(_write(tmp_path, {}, {"A": "from-file", "B": "from-file", "N": 3}))
    environ = {"A": "already"}
    assert files.apply_local_values(environ) == ["B", "N"]
    assert environ == {"A": "already", "B": "from-file", "N": "3"}


def test_hub_reference_resolves_from_local_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HubSetting", raising=False)
    host = {"version": "2.0", "extensions": {"durableTask": {"hubName": "%HubSetting%"}}}
    files = load_app_files(_write(tmp_path, host, {"HubSetting": "FromLocal"}))
    assert files.task_hub_name() == "FromLocal"


@pytest.mark.parametrize(
    ("local", "message"),
    [('{"Values": [1]}', "Values must be a JSON object"), ('{"Values": {"X": {"a": 1}}}', "Values.X must be a string")],
)
def test_bad_local_settings_name_the_file(tmp_path: Path, local: str, message: str) -> None:
    (tmp_path / "local.settings.json").write_text(local)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_app_files(tmp_path)
    assert "local.settings.json" in str(caught.value)
