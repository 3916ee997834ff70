"""Partition hash and key encoding (DTAS ``Fnv1aHashHelper``, ``KeySanitation``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durable_azstorage.codec.names import TaskHubNames
from durable_azstorage.codec.partitioning import (
    SENTINEL_ROW_KEY,
    app_lease_id,
    escape_partition_key,
    fnv1a32,
    history_row_key,
    parse_history_row_key,
    partition_index,
    unescape_partition_key,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0x811C9DC5),
        ("a", 0xE40C292C),
        ("foobar", 0xBF9CF968),
        ("instance1", 0xC8489B99),
        ("myinstance", 0xC06A6290),
        ("b0e2f2c1d3e84b8e9a1c2d3e4f5a6b7c", 0x20EFA7CB),
        ("2.2-34a2c9d4-306e-4467-8470-a8018b2e4f11", 0xE3731235),
        ("@counter@mykey", 0xCC6A5E00),
        ("héllo", 0x4AA48540),
    ],
)
def test_fnv1a32_vectors(text: str, expected: int) -> None:
    assert fnv1a32(text) == expected


@pytest.mark.parametrize(
    ("instance_id", "count", "index"),
    [
        ("", 4, 1),
        ("instance1", 4, 1),
        ("instance1", 16, 9),
        ("myinstance", 4, 0),
        ("myinstance", 8, 0),
        ("myinstance", 16, 0),
        ("b0e2f2c1d3e84b8e9a1c2d3e4f5a6b7c", 4, 3),
        ("b0e2f2c1d3e84b8e9a1c2d3e4f5a6b7c", 16, 11),
        ("2.2-34a2c9d4-306e-4467-8470-a8018b2e4f11", 4, 1),
        ("2.2-34a2c9d4-306e-4467-8470-a8018b2e4f11", 16, 5),
        ("@counter@mykey", 16, 0),
    ],
)
def test_partition_index(instance_id: str, count: int, index: int) -> None:
    assert partition_index(instance_id, count) == index


def test_control_queue_for_instance() -> None:
    assert TaskHubNames("MyHub", 4).control_queue_for("instance1") == "myhub-control-01"


def test_lone_surrogate_hashes_like_dotnet_replacement_char() -> None:
    assert fnv1a32("a\ud800") == fnv1a32("a\ufffd")


@pytest.mark.parametrize(
    ("app", "lease_id"),
    [
        ("myapp", "1312a8a6-0000-0000-0000-000000000000"),
        ("", "811c9dc5-0000-0000-0000-000000000000"),
        ("MyFunctionApp", "dda8b646-0000-0000-0000-000000000000"),
    ],
)
def test_app_lease_id(app: str, lease_id: str) -> None:
    assert app_lease_id(app) == lease_id


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a/b", "a^0b"),
        ("x#y?z", "x^2y^3z"),
        ("c:\\path", "c:^1path"),
        ("^", "^^"),
        ("\t", "^\u00c9"),
        ("\x7f", "^\u013f"),
        ("\x9f", "^\u015f"),
        ("plain-id", "plain-id"),
    ],
)
def test_escape_partition_key(raw: str, escaped: str) -> None:
    assert escape_partition_key(raw) == escaped
    assert unescape_partition_key(escaped) == raw


@given(st.text())
def test_escape_round_trips(raw: str) -> None:
    assert unescape_partition_key(escape_partition_key(raw)) == raw


def test_escape_is_not_idempotent() -> None:
    assert escape_partition_key(escape_partition_key("a/b")) == "a^^0b"


@pytest.mark.parametrize(
    ("seq", "key"), [(0, "0000000000000000"), (10, "000000000000000A"), (4096, "0000000000001000")]
)
def test_history_row_keys(seq: int, key: str) -> None:
    assert history_row_key(seq) == key
    assert parse_history_row_key(key) == seq
    assert key < SENTINEL_ROW_KEY
    assert parse_history_row_key(SENTINEL_ROW_KEY) is None
