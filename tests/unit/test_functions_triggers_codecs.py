"""Pure parts of the Functions host's triggers: schedules, status documents, options, expressions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from durable_azstorage.connection import DEVELOPMENT_STORAGE_CONNECTION_STRING, StorageAccount
from durable_azstorage.errors import ConfigurationError
from durable_azstorage.functions._bindings import QueueEncoding, queue_texts, resolve_expression
from durable_azstorage.functions._blob_trigger import BlobPattern
from durable_azstorage.functions._connections import Connections, host_id
from durable_azstorage.functions._queue_trigger import QueueOptions
from durable_azstorage.functions._timer import check_past_due
from durable_azstorage.functions._timer_schedule import (
    MIN_STATUS,
    ScheduleStatus,
    format_net_datetime,
    parse_net_datetime,
    parse_schedule,
)

UTC = timezone.utc


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------------------- schedules
def test_six_field_ncrontab_has_seconds_first() -> None:
    schedule = parse_schedule("*/15 * * * * *", UTC)
    assert schedule.next_occurrences(3, at(2026, 1, 1, 0, 0, 1)) == [
        at(2026, 1, 1, 0, 0, 15), at(2026, 1, 1, 0, 0, 30), at(2026, 1, 1, 0, 0, 45)]
    assert parse_schedule("0 30 9 * * 1-5", UTC).next_after(at(2026, 1, 2, 9, 30)) == at(2026, 1, 5, 9, 30)  # Fri→Mon


def test_five_fields_are_minutes_first_and_day_fields_must_both_match() -> None:
    assert parse_schedule("0 12 * * *", UTC).next_after(at(2026, 1, 1)) == at(2026, 1, 1, 12)
    # NCrontab: day-of-month 13 AND Friday (cron's OR would give 2026-01-02, a Friday).
    assert parse_schedule("0 0 0 13 * 5", UTC).next_after(at(2026, 1, 1)) == at(2026, 2, 13)


def test_timespan_schedules() -> None:
    assert parse_schedule("00:05:00", UTC).next_after(at(2026, 1, 1)) == at(2026, 1, 1, 0, 5)
    assert parse_schedule("1.02:00:00", UTC).interval == timedelta(days=1, hours=2)
    assert parse_schedule("2", UTC).interval == timedelta(days=2)


@pytest.mark.parametrize("bad", ["", "every day", "* * *", "61 * * * * *", "25:00:00"])
def test_a_bad_schedule_is_one_clear_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="schedule expression"):
        parse_schedule(bad, UTC)


def test_use_monitor_is_off_by_default_for_sub_minute_schedules() -> None:
    now = at(2026, 1, 1)
    assert not parse_schedule("*/10 * * * * *", UTC).monitor_by_default(now)
    assert parse_schedule("0 * * * * *", UTC).monitor_by_default(now)
    assert parse_schedule("0 */5 * * * *", UTC).monitor_by_default(now)
    assert not parse_schedule("00:00:30", UTC).monitor_by_default(now)
    assert parse_schedule("00:01:00", UTC).monitor_by_default(now)


def test_a_named_time_zone_is_honoured() -> None:
    from zoneinfo import ZoneInfo

    schedule = parse_schedule("0 0 9 * * *", ZoneInfo("Europe/Berlin"))
    assert schedule.next_after(at(2026, 7, 1)) == at(2026, 7, 1, 7)  # 09:00 CEST


# ---------------------------------------------------------------------------- status document
def test_status_json_is_written_as_json_net_writes_local_datetimes() -> None:
    status = ScheduleStatus(MIN_STATUS, at(2026, 11, 30, 12), datetime(2026, 11, 30, 10, 40, 0, 4901, tzinfo=UTC))
    assert status.to_json() == ('{"Last":"0001-01-01T00:00:00+00:00","Next":"2026-11-30T12:00:00+00:00",'
                                '"LastUpdated":"2026-11-30T10:40:00.004901+00:00"}')
    assert ScheduleStatus.from_json(status.to_json()) == status


def test_status_written_by_the_functions_host_is_read() -> None:
    text = ('{"Last":"2020-03-26T10:40:00.0049012+00:00","Next":"2020-03-26T10:45:00-07:00",'
            '"LastUpdated":"2020-03-26T10:40:00Z"}')
    status = ScheduleStatus.from_json(text)
    assert status.last == datetime(2020, 3, 26, 10, 40, 0, 4901, tzinfo=UTC)
    assert status.next == at(2020, 3, 26, 17, 45)
    assert parse_net_datetime("0001-01-01T00:00:00-08:00") == MIN_STATUS
    pacific = timezone(timedelta(hours=-7))
    assert format_net_datetime(datetime(2026, 1, 1, tzinfo=pacific)) == "2026-01-01T00:00:00-07:00"
    with pytest.raises(ValueError):
        ScheduleStatus.from_json('"not a status"')


def test_past_due_check_follows_the_hosts_schedule_monitor() -> None:
    hourly = parse_schedule("0 0 * * * *", UTC)
    now = at(2026, 1, 1, 12, 30)
    fresh, write, overdue = check_past_due(hourly, now, None)
    assert (fresh, write, overdue) == (ScheduleStatus(MIN_STATUS, at(2026, 1, 1, 13), now), True, timedelta(0))
    # The host was down from 09:00 on: due at 10:00, so past due by 2.5 h — one firing, not three.
    recorded = ScheduleStatus(at(2026, 1, 1, 9), at(2026, 1, 1, 10), at(2026, 1, 1, 9))
    status, write, overdue = check_past_due(hourly, now, recorded)
    assert (status, write, overdue) == (recorded, False, timedelta(hours=2, minutes=30))
    # A schedule changed while down (hourly → daily): re-recorded, not fired.
    daily = parse_schedule("0 0 0 * * *", UTC)
    status, write, overdue = check_past_due(daily, now, recorded)
    assert write and overdue == timedelta(0) and status.next == at(2026, 1, 2) and status.last == MIN_STATUS


# ---------------------------------------------------------------------------- queues
def test_queue_options_from_host_json() -> None:
    assert QueueOptions.from_host_json({}) == QueueOptions()
    options = QueueOptions.from_host_json({"version": "2.0", "extensions": {"queues": {
        "batchSize": 4, "newBatchThreshold": 2, "maxPollingInterval": "00:00:02", "visibilityTimeout": "00:00:30",
        "maxDequeueCount": 2, "messageEncoding": "none"}}})
    assert options == QueueOptions(4, 2, timedelta(seconds=2), timedelta(seconds=30), 2, QueueEncoding(base64=False))
    assert QueueOptions.from_host_json({"queues": {"maxPollingInterval": 2000}}).max_polling_interval == \
        timedelta(seconds=2)  # Functions 1.x root section, milliseconds
    assert options.threshold == 2
    with pytest.raises(ConfigurationError, match=r"batchSize must be 1\.\.32"):
        QueueOptions.from_host_json({"extensions": {"queues": {"batchSize": 64}}})
    with pytest.raises(ConfigurationError, match="messageEncoding"):
        QueueOptions.from_host_json({"extensions": {"queues": {"messageEncoding": "utf7"}}})


def test_queue_encoding_and_output_values() -> None:
    assert QueueEncoding().encode("héllo") == "aMOpbGxv" and QueueEncoding().decode("aMOpbGxv") == "héllo"
    with pytest.raises(ValueError):
        QueueEncoding().decode("%%not base64%%")
    assert QueueEncoding(base64=False).decode("plain") == "plain"
    assert queue_texts(["a", b"b", {"c": 1}, None]) == ["a", "b", '{"c": 1}']


# ---------------------------------------------------------------------------- expressions and paths
def test_binding_expressions() -> None:
    data = {"orderId": "A1", "customer": {"id": 7}}
    assert resolve_expression("receipts/{orderid}-{customer.id}.json", data) == "receipts/A1-7.json"
    assert resolve_expression("%Folder%/{orderId}", data, {"Folder": "in"}) == "in/A1"
    guid = resolve_expression("x/{rand-guid}", {})
    assert len(guid) == 38 and guid != resolve_expression("x/{rand-guid}", {})
    with pytest.raises(LookupError, match="No value for named parameter 'missing'"):
        resolve_expression("{missing}", data)
    with pytest.raises(ConfigurationError, match="%Nope%"):
        resolve_expression("%Nope%", {}, {})


def test_blob_trigger_patterns() -> None:
    pattern = BlobPattern("samples/in/{name}.{ext}")
    assert (pattern.container, pattern.prefix) == ("samples", "in/")
    assert pattern.match("in/report.2026.csv") == {"name": "report", "ext": "2026.csv"}
    assert pattern.match("out/report.csv") is None
    assert BlobPattern("samples").match("any/thing") == {}
    with pytest.raises(ConfigurationError):
        BlobPattern("{container}/x")


# ---------------------------------------------------------------------------- connections
def test_connections_resolve_as_the_host_does() -> None:
    default = StorageAccount.from_connection_string(DEVELOPMENT_STORAGE_CONNECTION_STRING)
    other = DEVELOPMENT_STORAGE_CONNECTION_STRING.replace("127.0.0.1:10001", "10.0.0.1:10001")
    env = {"Orders": other, "AzureWebJobsLegacy": other, "Identity__queueServiceUri": "https://acct.queue.core.windows.net/",
           "Identity__serviceUri": "https://acct.blob.core.windows.net", "Named__accountName": "acct2"}
    connections = Connections(default, env)
    assert connections.account(None) is default and connections.account("") is default
    assert connections.account("Orders").queue_endpoint == "http://10.0.0.1:10001/devstoreaccount1"
    assert isinstance(connections.account("Orders").credential, AzureNamedKeyCredential)
    assert connections.account("Legacy").queue_endpoint == "http://10.0.0.1:10001/devstoreaccount1"
    identity = connections.account("Identity")
    assert (identity.queue_endpoint, identity.blob_endpoint) == ("https://acct.queue.core.windows.net",
                                                                 "https://acct.blob.core.windows.net")
    assert connections.account("Named").queue_endpoint == "https://acct2.queue.core.windows.net"
    with pytest.raises(ConfigurationError, match="connection 'Missing' is not configured"):
        connections.account("Missing")


def test_host_id() -> None:
    assert host_id(Path("/app"), {"AzureFunctionsWebHost__hostid": "My-App_Id"}) == "my-appid"
    assert host_id(Path("/app"), {"WEBSITE_SITE_NAME": "a" * 40}) == "a" * 32
    local = host_id(Path("/app"), {})
    assert local == host_id(Path("/app"), {}) != host_id(Path("/other"), {}) and len(local) <= 32


def test_status_round_trip_is_plain_json() -> None:
    status = ScheduleStatus(at(2026, 1, 1), at(2026, 1, 2), at(2026, 1, 1))
    assert set(json.loads(status.to_json())) == {"Last", "Next", "LastUpdated"}
