"""EventBridge schedule expressions (``rate(...)``, ``cron(...)``) parsed, and their due times found.

The spec's ``batch.schedule`` is not an EventBridge rule per model (a model is data, not a stack):
the platform's one periodic trigger asks :meth:`Schedule.latest` for the newest due time of each
model's schedule and starts that due time's job once. The grammar is EventBridge's, in UTC:

* ``rate(N minute|minutes|hour|hours|day|days)``: due at every multiple of the period since
  1970-01-01T00:00Z (``rate(1 day)`` is due at midnight UTC).
* ``cron(minutes hours day-of-month month day-of-week year)``: each field ``*``, a number, a range
  ``a-b``, a step ``*/n`` or ``a-b/n`` or ``a/n``, or a list of those; day-of-week is ``1-7``
  (``SUN``-``SAT``) or names, month ``1-12`` or ``JAN``-``DEC``; one of day-of-month and
  day-of-week is ``?``. ``L``, ``W`` and ``#`` are refused (not evaluated here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mlops.contracts.names import BATCH_TICK_MINUTES

# How often the platform's batch trigger runs (stacks/batch.py); no batch schedule is more frequent.
BATCH_TICK = timedelta(minutes=BATCH_TICK_MINUTES)
_RATE = re.compile(r"^rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
# (name, low, high, names) of the six cron fields.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS),
    ("year", 1970, 2199, {}),
)


class ScheduleError(ValueError):
    """An expression that is not a schedule this module can evaluate (the message says why)."""


def _number(text: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.upper())
    if value is None:
        if not text.isdigit():
            raise ScheduleError(f"cron {field} field: {text!r} is not a number from {low} to {high}")
        value = int(text)
    if not low <= value <= high:
        raise ScheduleError(f"cron {field} field: {value} is outside {low}-{high}")
    return value


def _field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int] | None:
    """The values a field allows; None for ``*`` and ``?`` (any)."""
    if text in ("*", "?"):
        return None
    bare = re.sub("|".join(names) or "^$", "", text.upper())
    if any(mark in bare for mark in ("L", "W", "#")):
        raise ScheduleError(f"cron {field} field: {text!r} uses L, W or #, which batch schedules do not support")
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = _number(step_text, field, 1, high, {}) if step_text else 1
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _number(a, field, low, high, names), _number(b, field, low, high, names)
            if first > last:
                raise ScheduleError(f"cron {field} field: the range {base!r} runs backwards")
        else:
            first = _number(base, field, low, high, names)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed expression: a fixed period (rate) or the allowed values of each cron field."""

    expression: str
    period: timedelta | None = None
    fields: tuple[frozenset[int] | None, ...] = ()

    def matches(self, at: datetime) -> bool:
        """Whether the minute ``at`` (UTC) is a due time."""
        if self.period is not None:
            seconds = int(at.replace(second=0, microsecond=0).timestamp())
            return seconds % int(self.period.total_seconds()) == 0
        weekday = at.isoweekday() % 7 + 1  # EventBridge: SUN=1 .. SAT=7
        values = (at.minute, at.hour, at.day, at.month, weekday, at.year)
        return all(allowed is None or value in allowed for allowed, value in zip(self.fields, values, strict=True))

    def latest(self, now: datetime, within: timedelta) -> datetime | None:
        """The newest due time at or before ``now`` and no older than ``within``, or None."""
        now = now.astimezone(UTC).replace(second=0, microsecond=0)
        if self.period is not None:
            step = int(self.period.total_seconds())
            due = datetime.fromtimestamp(int(now.timestamp()) // step * step, UTC)
            return due if now - due <= within else None
        at = now
        while now - at <= within:
            if self.matches(at):
                return at
            at -= timedelta(minutes=1)
        return None


def parse_schedule(expression: str) -> Schedule:
    """``rate(...)`` or ``cron(...)`` parsed; :class:`ScheduleError` names what is wrong.

    Examples
    --------
    >>> parse_schedule("rate(1 day)").period
    datetime.timedelta(days=1)
    >>> parse_schedule("cron(0 2 * * ? *)").matches(datetime(2026, 12, 6, 2, 0, tzinfo=UTC))
    True
    """
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        return Schedule(text, period=timedelta(seconds=int(rate.group(1)) * _UNIT_SECONDS[rate.group(2).rstrip("s")]))
    if not (text.startswith("cron(") and text.endswith(")")):
        raise ScheduleError(
            f"{expression!r} is not a schedule expression: rate(N minutes|hours|days) or"
            " cron(min hour dom month dow year)"
        )
    parts = text[5:-1].split()
    if len(parts) != 6:
        raise ScheduleError(
            f"{expression!r}: a cron expression has 6 fields (minutes hours day-of-month month day-of-week"
            f" year), not {len(parts)}"
        )
    if (parts[2] == "?") == (parts[4] == "?"):
        raise ScheduleError(f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'")
    fields = tuple(_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True))
    return Schedule(text, fields=fields)
