"""The record of Instances rows a client in this process inserted (read by the local worker)."""

from __future__ import annotations

from durable_azstorage.storage.fresh_starts import FreshStarts


def test_a_recorded_insert_is_taken_once_for_its_execution_only() -> None:
    starts = FreshStarts()
    starts.record("t", "i", "e1")
    assert not starts.take("t", "i", "e2")  # another execution: read the row
    starts.record("t", "i", "e1")
    assert starts.take("t", "i", "e1")
    assert not starts.take("t", "i", "e1")  # taken: a second copy of the start reads the row


def test_tables_are_kept_apart_and_forget_drops_a_replaced_row() -> None:
    starts = FreshStarts()
    starts.record("hub1", "i", "e")
    assert not starts.take("hub2", "i", "e")
    starts.forget("hub1", "i")
    assert not starts.take("hub1", "i", "e")


def test_the_record_is_bounded_in_size_and_age() -> None:
    starts = FreshStarts(limit=3)
    for n in range(5):
        starts.record("t", f"i{n}", "e")
    assert len(starts) == 3
    assert not starts.take("t", "i0", "e")
    assert starts.take("t", "i4", "e")
    old = FreshStarts(max_age=0.0)
    old.record("t", "i", "e")
    assert not old.take("t", "i", "e")
