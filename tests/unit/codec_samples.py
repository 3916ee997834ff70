"""Fully populated sample events and hypothesis strategies shared by the codec tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from durable_azstorage.codec.netjson import EVENT_MEMBERS, Kind
from durable_azstorage.model import (
    EVENT_CLASSES,
    DistributedTraceContext,
    FailureDetails,
    HistoryEvent,
    OrchestrationInstance,
    OrchestrationState,
    OrchestrationStatus,
    ParentInstance,
)

T0 = datetime(2024, 3, 14, 16, 0, 5, 128542, tzinfo=timezone.utc)

INSTANCE = OrchestrationInstance(instance_id="inst/1", execution_id="aae324dcc8f943e490b37ec5e5bbf9da")
PARENT = ParentInstance(
    name="Parent", orchestration_instance=OrchestrationInstance(instance_id="p", execution_id="e"), task_schedule_id=3
)
FAILURE = FailureDetails(
    error_type="System.InvalidOperationException",
    error_message="boom",
    stack_trace="at X",
    inner_failure=FailureDetails(error_type="Inner", error_message="inner"),
    properties={"k": 1, "nested": {"a": [1, "b"]}},
)
TRACE = DistributedTraceContext(
    trace_parent="00-8fdaec3721ee2f7e0e43b5be5b22e54f-264d84ac14ac0835-01",
    trace_state="a=b",
    id="id1",
    span_id="264d84ac14ac0835",
    activity_start_time=T0,
)
STATE = OrchestrationState(
    orchestration_instance=INSTANCE,
    name="Orch",
    runtime_status=OrchestrationStatus.Completed,
    created_time=T0,
    last_updated_time=T0,
    completed_time=T0,
    tags={"t": "v"},
    size=10,
)

_SAMPLE_VALUES: dict[Kind, Any] = {
    Kind.STRING: "text",
    Kind.INT: 7,
    Kind.OPT_INT: 2,
    Kind.BOOL: True,
    Kind.DATETIME: T0,
    Kind.OPT_DATETIME: T0 + timedelta(hours=1),
    Kind.STATUS: OrchestrationStatus.Failed,
    Kind.INSTANCE: INSTANCE,
    Kind.PARENT: PARENT,
    Kind.FAILURE: FAILURE,
    Kind.TRACE: TRACE,
    Kind.TAGS: {"tag1": "tagValue"},
    Kind.STATE: STATE,
}


def full_event(cls: type[HistoryEvent]) -> HistoryEvent:
    """Every member set to a non-default value, so a lost member shows up in equality."""
    kwargs = {m.attr: _SAMPLE_VALUES[m.kind] for m in EVENT_MEMBERS[cls] if m.kind is not Kind.EVENT_TYPE}
    if cls.__name__ == "ContinueAsNewEvent":
        kwargs["orchestration_status"] = OrchestrationStatus.ContinuedAsNew
    return cls(**kwargs)


def empty_event(cls: type[HistoryEvent]) -> HistoryEvent:
    """Model defaults only: every nullable member is None."""
    return cls(timestamp=T0)


ALL_CLASSES = list(EVENT_CLASSES.values())

# --------------------------------------------------------------------------- strategies

_text = st.text(max_size=20)
_opt_text = st.none() | _text
_key = _text.filter(lambda k: not k.startswith(("$", "__")))
_int32 = st.integers(-(2**31), 2**31 - 1)
_utc = st.datetimes(min_value=datetime(1601, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))
_offset_tz = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_offset_dt = st.datetimes(min_value=datetime(1601, 1, 2), max_value=datetime(9999, 12, 30), timezones=_offset_tz)
_instance = st.builds(OrchestrationInstance, instance_id=_text, execution_id=_opt_text)
_tags = st.dictionaries(_key, _text, max_size=3)
_json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text
_props = st.dictionaries(
    _key,
    st.recursive(
        _json_leaf, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_key, inner, max_size=2), max_leaves=4
    ),
    max_size=3,
)
_failure = st.recursive(
    st.builds(
        FailureDetails, error_type=_text, error_message=_text, stack_trace=_opt_text, properties=st.none() | _props
    ),
    lambda inner: st.builds(
        FailureDetails, error_type=_text, error_message=_text, inner_failure=inner, is_non_retriable=st.booleans()
    ),
    max_leaves=3,
)
_parent = st.builds(
    ParentInstance,
    name=_opt_text,
    orchestration_instance=st.none() | _instance,
    task_schedule_id=_int32,
    version=_opt_text,
)
_trace = st.builds(
    DistributedTraceContext,
    trace_parent=_opt_text,
    trace_state=_opt_text,
    id=_opt_text,
    span_id=_opt_text,
    activity_start_time=st.none() | _offset_dt,
)
_state = st.builds(
    OrchestrationState,
    orchestration_instance=_instance,
    name=_opt_text,
    runtime_status=st.none() | st.sampled_from(OrchestrationStatus),
    custom_status=_opt_text,
    created_time=st.none() | _utc,
    completed_time=st.none() | _utc,
    generation=st.none() | _int32,
    tags=st.none() | _tags,
    parent_instance=st.none() | _parent,
    failure_details=st.none() | _failure,
    size=st.integers(0, 2**40),
)

KIND_STRATEGIES: dict[Kind, st.SearchStrategy[Any]] = {
    Kind.STRING: _opt_text,
    Kind.INT: _int32,
    Kind.OPT_INT: st.none() | _int32,
    Kind.BOOL: st.booleans(),
    Kind.DATETIME: _utc,
    Kind.OPT_DATETIME: st.none() | _utc,
    Kind.STATUS: st.sampled_from(OrchestrationStatus),
    Kind.INSTANCE: st.none() | _instance,
    Kind.PARENT: st.none() | _parent,
    Kind.FAILURE: st.none() | _failure,
    Kind.TRACE: st.none() | _trace,
    Kind.TAGS: st.none() | _tags,
    Kind.STATE: st.none() | _state,
}


def event_strategy(cls: type[HistoryEvent]) -> st.SearchStrategy[HistoryEvent]:
    members = {m.attr: KIND_STRATEGIES[m.kind] for m in EVENT_MEMBERS[cls] if m.kind is not Kind.EVENT_TYPE}
    return st.builds(cls, **members)


any_event: st.SearchStrategy[HistoryEvent] = st.sampled_from(ALL_CLASSES).flatmap(event_strategy)
