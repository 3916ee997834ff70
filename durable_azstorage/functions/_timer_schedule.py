"""Timer trigger schedules and the schedule-status document, as the Functions host keeps them. Pure.

* **NCRONTAB** (``{second} {minute} {hour} {day} {month} {day-of-week}``; five fields without
  seconds are accepted too) through ``croniter`` with ``second_at_beginning=True``; day of month and
  day of week must *both* match when both are restricted (NCrontab's rule; ``day_or=False``).
  Occurrences are computed in the host's time zone: ``WEBSITE_TIME_ZONE`` or ``TZ`` (an IANA name),
  else the machine's, as the host uses ``TimeZoneInfo.Local``.
* **TimeSpan** (``hh:mm:ss``, ``d.hh:mm:ss``, ``hh:mm``, or a whole number of days): a constant
  interval from the last occurrence.
* ``useMonitor`` defaults to true and is switched off, as in the host, for schedules that fire
  more often than once a minute (even when the app set it).
* The status blob holds ``{"Last", "Next", "LastUpdated"}`` as Json.NET writes local
  ``DateTime`` values (``2026-11-30T10:45:00+00:00``, fraction trimmed); ``Last`` starts as
  ``0001-01-01T00:00:00+00:00``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from ..errors import ConfigurationError

__all__ = ["MIN_STATUS", "Schedule", "ScheduleStatus", "duration_setting", "host_timezone", "parse_schedule"]

_TIMESPAN = re.compile(r"^\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*$")
_DAYS = re.compile(r"^\s*(\d+)\s*$")


def host_timezone(environ: dict[str, str] | None = None) -> tzinfo:
    env = os.environ if environ is None else environ
    for name in (env.get("WEBSITE_TIME_ZONE"), env.get("TZ")):
        if name:
            try:
                return ZoneInfo(name.lstrip(":"))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else timezone.utc


MIN_STATUS = datetime(1, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Schedule:
    """A parsed ``schedule``: ``next_after(t)`` is the first occurrence strictly after ``t``."""

    expression: str
    cron: str | None
    interval: timedelta | None
    zone: tzinfo

    def next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone)
        if self.interval is not None:
            return local + self.interval
        assert self.cron is not None
        nxt = croniter(self.cron, local, second_at_beginning=self.cron.count(" ") == 5, day_or=False)
        result: datetime = nxt.get_next(datetime)
        return result.astimezone(self.zone)

    def next_occurrences(self, count: int, moment: datetime) -> list[datetime]:
        found = []
        for _ in range(count):
            moment = self.next_after(moment)
            found.append(moment)
        return found

    def monitor_by_default(self, now: datetime) -> bool:
        """The host turns ``useMonitor`` off for schedules more frequent than once a minute."""
        if self.interval is not None:
            return self.interval >= timedelta(minutes=1)
        assert self.cron is not None
        fields = self.cron.split()
        if len(fields) == 6 and all(f == "*" for f in fields[1:]):
            first = self.next_after(now)
            return self.next_after(first) - now > timedelta(minutes=1)
        return True


def parse_schedule(expression: str, zone: tzinfo | None = None) -> Schedule:
    """An NCRONTAB expression or a TimeSpan; a clear error for anything else (as the host)."""
    zone = zone or host_timezone()
    text = " ".join(expression.split())
    if len(text.split(" ")) in (5, 6):
        try:
            croniter(text, second_at_beginning=len(text.split(" ")) == 6)
        except (ValueError, KeyError) as exc:
            raise ConfigurationError(f"the schedule expression {expression!r} is not a valid cron expression: "
                                     f"{exc}") from exc
        return Schedule(expression, text, None, zone)
    interval = _parse_timespan(text)
    if interval is None or interval <= timedelta(0):
        raise ConfigurationError(f"the schedule expression {expression!r} was not recognized as a valid cron "
                                 "expression (six fields: second minute hour day month day-of-week) or timespan "
                                 "string (hh:mm:ss)")
    return Schedule(expression, None, interval, zone)


def duration_setting(value: Any, name: str) -> timedelta:
    """A host.json duration: a TimeSpan string (``00:00:30``) or a number of milliseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(milliseconds=value)
    parsed = _parse_timespan(str(value))
    if parsed is None:
        raise ConfigurationError(f"host.json: {name} must be a TimeSpan (hh:mm:ss) or milliseconds, not {value!r}")
    return parsed


def _parse_timespan(text: str) -> timedelta | None:
    days = _DAYS.match(text)
    if days:
        return timedelta(days=int(days.group(1)))
    match = _TIMESPAN.match(text)
    if match is None:
        return None
    d, h, m, s, fraction = match.groups()
    if int(h) > 23 or int(m) > 59 or int(s or 0) > 59:
        return None
    micro = int((fraction or "0").ljust(7, "0")[:7]) // 10
    return timedelta(days=int(d or 0), hours=int(h), minutes=int(m), seconds=int(s or 0), microseconds=micro)


@dataclass(frozen=True)
class ScheduleStatus:
    """The host's ``ScheduleStatus``: last firing, next expected firing, last update."""

    last: datetime
    next: datetime
    last_updated: datetime

    def to_json(self) -> str:
        return json.dumps({"Last": format_net_datetime(self.last), "Next": format_net_datetime(self.next),
                           "LastUpdated": format_net_datetime(self.last_updated)}, separators=(",", ":"))

    def to_timer_info(self) -> dict[str, str]:
        """What ``TimerRequest.schedule_status`` holds."""
        return dict(json.loads(self.to_json()))

    @classmethod
    def from_json(cls, text: str | bytes) -> ScheduleStatus:
        """Raises ``ValueError`` for a document that is not a status (the caller starts afresh)."""
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the schedule status is not a JSON object")
        return cls(parse_net_datetime(data.get("Last")), parse_net_datetime(data.get("Next")),
                   parse_net_datetime(data.get("LastUpdated")))


def format_net_datetime(moment: datetime) -> str:
    """Json.NET's ISO form of a local ``DateTime``: 7-digit fraction with zeros trimmed, ``+hh:mm``."""
    if moment.year == 1:
        moment = MIN_STATUS
    base = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment:%H:%M:%S}"  # %Y is not 4 digits on glibc
    fraction = f"{moment.microsecond:06d}0".rstrip("0")
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{base}{'.' + fraction if fraction else ''}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


_NET_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def parse_net_datetime(value: Any) -> datetime:
    """Any ISO form the host or a person may have written (7-digit fractions, ``Z``, no offset)."""
    match = _NET_DATE.match(str(value or "").strip())
    if match is None:
        raise ValueError(f"not a date-time: {value!r}")
    base, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime.fromisoformat(base).replace(microsecond=micro)
    if not zone or zone == "Z":
        return moment.replace(tzinfo=timezone.utc)
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if moment.year == 1:
        return MIN_STATUS
    return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
