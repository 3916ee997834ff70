from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from durable_azstorage.codec.netjson import (
    CORE_DICT_STRING_STRING,
    DICTIONARY,
    EVENT_MEMBERS,
    MESSAGE_DATA_TYPE,
    NET_TYPE_NAMES,
    Kind,
    dumps,
    format_datetime,
    format_datetime_offset,
    parse_datetime,
    parse_datetime_offset,
    resolve_type_name,
    to_pascal,
    to_snake,
    utf8_bytes,
    utf16_byte_count,
)
from durable_azstorage.errors import MessageDecodeError, UnknownTypeNameError
from durable_azstorage.model import EVENT_CLASSES, ExecutionStartedEvent, GenericEvent

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2023, 3, 24, 20, 53, 5, 909351, tzinfo=UTC), "2023-03-24T20:53:05.909351Z"),
        (datetime(2023, 3, 24, 20, 53, 5, 900000, tzinfo=UTC), "2023-03-24T20:53:05.9Z"),
        (datetime(2023, 3, 24, 20, 53, 5, tzinfo=UTC), "2023-03-24T20:53:05Z"),
        (datetime(2023, 3, 24, 20, 53, 5, 10), "2023-03-24T20:53:05.00001Z"),  # naive = UTC
        (datetime(2023, 3, 24, 22, 53, 5, tzinfo=timezone(timedelta(hours=2))), "2023-03-24T20:53:05Z"),
    ],
)
def test_format_datetime_is_newtonsoft_roundtrip_utc(value: datetime, text: str) -> None:
    assert format_datetime(value) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-03-24T20:53:05.9093518Z", datetime(2023, 3, 24, 20, 53, 5, 909351, tzinfo=UTC)),
        ("2023-03-24T20:53:05.9Z", datetime(2023, 3, 24, 20, 53, 5, 900000, tzinfo=UTC)),
        ("2023-03-24T20:53:05Z", datetime(2023, 3, 24, 20, 53, 5, tzinfo=UTC)),
        ("2023-03-24T20:53:05.1234567", datetime(2023, 3, 24, 20, 53, 5, 123456, tzinfo=UTC)),  # no offset: UTC
        ("2023-03-24T22:53:05.5+02:00", datetime(2023, 3, 24, 20, 53, 5, 500000, tzinfo=UTC)),
        ("2023-03-24T19:53:05-01:00", datetime(2023, 3, 24, 20, 53, 5, tzinfo=UTC)),
        ("9999-12-31T23:59:59.9999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),  # no rounding
        ("0001-01-01T00:00:00+01:00", datetime(1, 1, 1, tzinfo=UTC)),  # clamped, not OverflowError
        ("/Date(1710432005128)/", datetime(2024, 3, 14, 16, 0, 5, 128000, tzinfo=UTC)),
    ],
)
def test_parse_datetime_is_lenient(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "yesterday", "2023-13-01T00:00:00Z", "2023-03-24", "2023-03-24T25:00:00Z"])
def test_parse_datetime_rejects_garbage(text: str) -> None:
    with pytest.raises(MessageDecodeError):
        parse_datetime(text)


def test_datetime_offset_keeps_its_offset() -> None:
    utc = datetime(2024, 3, 14, 16, 0, 5, 128668, tzinfo=UTC)
    assert format_datetime_offset(utc) == "2024-03-14T16:00:05.128668+00:00"
    ist = datetime(2024, 3, 14, 16, 0, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    assert format_datetime_offset(ist) == "2024-03-14T16:00:05-05:30"
    parsed = parse_datetime_offset("2024-03-14T16:00:05.1286681-05:30")
    assert parsed.utcoffset() == timedelta(hours=-5, minutes=-30)
    assert parsed == datetime(2024, 3, 14, 21, 30, 5, 128668, tzinfo=UTC)


def test_snake_pascal_mapping() -> None:
    assert to_pascal("task_scheduled_id") == "TaskScheduledId"
    assert to_pascal("id") == "Id"
    assert to_snake("TaskScheduledId") == "task_scheduled_id"
    assert to_snake("Id") == "id"
    assert to_snake("ParentTraceContext") == "parent_trace_context"


def test_every_event_class_has_its_members_in_dotnet_order() -> None:
    assert set(EVENT_MEMBERS) == set(EVENT_CLASSES.values())
    for cls, members in EVENT_MEMBERS.items():
        names = [m.net for m in members]
        assert names[-3:] == ["EventId", "IsPlayed", "Timestamp"], cls
        assert names.count("EventType") == 1
        fields = {f.name for f in dataclasses.fields(cls)}
        for member in members:
            assert to_pascal(member.attr) == member.net
            assert member.attr in fields or member.kind is Kind.EVENT_TYPE, (cls, member)
        assert len(fields) == len(members) - 1, f"{cls.__name__}: model members not all serialised"


def test_fields_come_before_event_type() -> None:
    started = [m.net for m in EVENT_MEMBERS[ExecutionStartedEvent]]
    assert started == [
        "OrchestrationInstance",
        "EventType",
        "ParentInstance",
        "Name",
        "Version",
        "Input",
        "Tags",
        "Correlation",
        "ParentTraceContext",
        "ScheduledStartTime",
        "Generation",
        "GenerateNewTrace",
        "EventId",
        "IsPlayed",
        "Timestamp",
    ]
    assert [m.net for m in EVENT_MEMBERS[GenericEvent]][:2] == ["Data", "EventType"]


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("DurableTask.Core.TaskMessage", "DurableTask.Core.TaskMessage"),
        ("DurableTask.Core.TaskMessage, DurableTask.Core", "DurableTask.Core.TaskMessage"),
        ("DurableTask.TaskMessage, DurableTask", "DurableTask.Core.TaskMessage"),
        ("DurableTask.History.TimerFiredEvent, DurableTask", "DurableTask.Core.History.TimerFiredEvent"),
        ("TimerFiredEvent:#DurableTask.Core.History", "DurableTask.Core.History.TimerFiredEvent"),
        ("DurableTask.AzureStorage.MessageData, DurableTask.AzureStorage", MESSAGE_DATA_TYPE),
        (CORE_DICT_STRING_STRING, DICTIONARY),
        (
            "System.Collections.Generic.Dictionary`2[[System.String, mscorlib],[System.String, mscorlib]], mscorlib",
            DICTIONARY,
        ),
        (
            "System.Collections.Generic.Dictionary`2[[System.String, mscorlib, Version=4.0.0.0, Culture=neutral, "
            "PublicKeyToken=b77a5c561934e089],[System.Object, mscorlib, Version=4.0.0.0, Culture=neutral, "
            "PublicKeyToken=b77a5c561934e089]]",
            DICTIONARY,
        ),
    ],
)
def test_type_name_whitelist_accepts_known_spellings(raw: str, canonical: str) -> None:
    assert resolve_type_name(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "System.Diagnostics.Process, System",
        "DurableTask.Core.Exceptions.OrchestrationException",
        "DurableTask.AzureStorage.AzureStorageOrchestrationService",
        "System.Collections.Generic.Dictionary`2[[System.Int32, mscorlib],[System.String, mscorlib]]",
        "System.Collections.Generic.Dictionary`2[[System.String, Evil],[System.String, mscorlib]]",
        "",
    ],
)
def test_type_name_whitelist_refuses_everything_else(raw: str) -> None:
    with pytest.raises(UnknownTypeNameError):
        resolve_type_name(raw)


def test_written_type_names_have_no_assembly_part() -> None:
    for name in NET_TYPE_NAMES.values():
        assert "," not in name
        assert resolve_type_name(name) == name


def test_dumps_is_compact_and_escapes_like_newtonsoft() -> None:
    assert dumps({"a": "é\u2028", "b": None}) == '{"a":"é\\u2028","b":null}'


def test_byte_counts_match_dotnet_encoders() -> None:
    assert utf16_byte_count("ab") == 4
    assert utf16_byte_count("\U0001f600") == 4
    assert utf8_bytes("\ud800") == "\ufffd".encode()  # lone surrogate replaced, not raised


def test_years_before_1000_are_zero_padded() -> None:
    assert format_datetime(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert format_datetime_offset(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00+00:00"
