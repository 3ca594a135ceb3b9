"""EventBridge delivery for the local cloud: targets moto does not deliver to, input
transformers, S3 events and schedules.

moto matches event patterns but delivers only to logs, SQS and event buses; here every matched
rule's targets are delivered asynchronously (as EventBridge does) to Step Functions, Lambda, SQS,
SNS, logs or another bus. Scheduled rules fire on their schedule and on demand (``fire``).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.errors import InputError, NotFoundError

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_path(document: Any, path: str) -> Any:
    """Evaluate the simple JSONPath EventBridge allows (``$.a.b``, ``$.a[0]``, ``$['a-b']``)."""
    if path in ("$", ""):
        return document
    if not path.startswith("$"):
        raise InputError(f"input path {path!r} must start with $")
    value = document
    for name, quoted, index in re.findall(r"\.([^.\[]+)|\['([^']*)'\]|\[(\d+)\]", path[1:]):
        key: Any = name or quoted
        if index:
            key = int(index)
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def transform_input(target: dict[str, Any], event: dict[str, Any], rule_name: str, rule_arn: str) -> str:
    """The string EventBridge sends to ``target`` for ``event`` (Input, InputPath or InputTransformer)."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return json.dumps(json_path(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if not transformer:
        return json.dumps(event)
    paths = transformer.get("InputPathsMap") or {}
    if isinstance(paths, str):
        paths = json.loads(paths)
    values: dict[str, Any] = {name: json_path(event, path) for name, path in paths.items()}
    values.update(
        {
            "aws.events.rule-arn": rule_arn,
            "aws.events.rule-name": rule_name,
            "aws.events.event.ingestion-time": event.get("time", now_iso()),
            "aws.events.event": event,
            "aws.events.event.json": event,
        }
    )
    template = str(transformer.get("InputTemplate", ""))
    is_json = template.lstrip().startswith(("{", "["))
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        match = _PLACEHOLDER.match(template, i) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string or not is_json:  # inside a JSON string (or a plain-text template): the text
                text = value if isinstance(value, str) else json.dumps(value)
                out.append((json.dumps(text)[1:-1] if is_json else text) if value is not None else "")
            else:  # a JSON value position: the value as JSON
                out.append(json.dumps(value))
            i = match.end()
            continue
        if char == "\\" and in_string and i + 1 < len(template):
            out.append(template[i : i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        out.append(char)
        i += 1
    return "".join(out)


# -- schedules ------------------------------------------------------------------------------------
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_MONTHS = {
    m: i + 1 for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
}
_DAYS = {d: i + 1 for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


class ScheduleError(InputError):
    """A schedule expression the local scheduler cannot run."""


def _field(expr: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The set of values a cron field allows; ``None`` for any (``*`` or ``?``)."""
    if expr in ("*", "?"):
        return None
    allowed: set[int] = set()
    for part in expr.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step > 1 else start
        allowed.update(range(start, end + 1, step))
    return allowed


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"cron field value {text!r} is not supported locally (L, W and # are not)")
    return int(text)


@dataclass
class Schedule:
    """``rate(...)`` or ``cron(...)`` (six AWS fields, UTC) evaluated once per minute."""

    expression: str
    every: timedelta | None = None
    fields: list[set[int] | None] = field(default_factory=list)

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        rate = _RATE.match(expression.strip())
        if rate:
            amount, unit = int(rate.group(1)), rate.group(2).rstrip("s")
            return cls(expression, every=timedelta(**{f"{unit}s": amount}))
        if expression.startswith("cron(") and expression.endswith(")"):
            parts = expression[5:-1].split()
            if len(parts) != 6:
                raise ScheduleError(f"{expression}: a cron expression has six fields")
            minute, hour, dom, month, dow, year = parts
            return cls(
                expression,
                fields=[
                    _field(minute, 0, 59),
                    _field(hour, 0, 23),
                    _field(dom, 1, 31),
                    _field(month, 1, 12, _MONTHS),
                    _field(dow, 1, 7, _DAYS),
                    _field(year, 1970, 2199),
                ],
            )
        raise ScheduleError(f"schedule expression {expression!r} is not rate(...) or cron(...)")

    def due(self, moment: datetime, started: datetime) -> bool:
        """Whether the schedule fires in the minute starting at ``moment`` (UTC, whole minute)."""
        if self.every is not None:
            elapsed = moment - started.replace(second=0, microsecond=0)
            minutes = int(self.every.total_seconds() // 60)
            total = int(elapsed.total_seconds() // 60)
            return total > 0 and total % minutes == 0
        values = [moment.minute, moment.hour, moment.day, moment.month, moment.isoweekday() % 7 + 1, moment.year]
        return all(f is None or v in f for f, v in zip(self.fields, values, strict=True))


# -- delivery -----------------------------------------------------------------------------------
@dataclass
class Delivery:
    """One target delivery, kept for status, tests and the demo summary."""

    rule: str
    target_id: str
    target_arn: str
    input: str
    at: str = field(default_factory=now_iso)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class EventDispatcher:
    """Delivers events of matched rules to their targets.

    Parameters
    ----------
    client
        ``client(service)`` returns a boto3 client of the local cloud.
    invoke
        ``invoke(function_arn, payload)`` runs a function and returns ``(payload, function_error)``.
    region, account
        Used in events and ARNs.
    sleep
        Waits between Lambda asynchronous-invocation retries (compressed in tests).
    """

    def __init__(
        self,
        *,
        client: Callable[[str], Any],
        invoke: Callable[[str, bytes], tuple[bytes, str | None]],
        region: str,
        account: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.invoke = invoke
        self.region = region
        self.account = account
        self.sleep = sleep
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="events")
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None

    # Called by the patched moto rule for every event that matched its pattern.
    def on_match(
        self, rule_name: str, rule_arn: str, state: str, targets: list[dict[str, Any]], event: dict[str, Any]
    ) -> list[Future[Delivery]]:
        if state != "ENABLED":
            return []
        return [self.pool.submit(self.deliver, rule_name, rule_arn, target, event) for target in targets]

    def deliver(self, rule_name: str, rule_arn: str, target: dict[str, Any], event: dict[str, Any]) -> Delivery:
        payload = transform_input(target, event, rule_name, rule_arn)
        arn = target["Arn"]
        delivery = Delivery(rule=rule_name, target_id=target.get("Id", ""), target_arn=arn, input=payload)
        service = arn.split(":")[2]
        try:
            if service == "states":
                name = str(uuid.uuid4())  # EventBridge names each execution uniquely
                out = self.client("stepfunctions").start_execution(stateMachineArn=arn, name=name, input=payload)
                delivery.result = {"executionArn": out["executionArn"]}
            elif service == "lambda":
                delivery.result = self._invoke_async(arn, payload.encode())
            elif service == "sqs":
                name = arn.split(":")[5]
                url = self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
                args: dict[str, Any] = {"QueueUrl": url, "MessageBody": payload}
                group = target.get("SqsParameters", {}).get("MessageGroupId")
                if group:
                    args["MessageGroupId"] = group
                delivery.result = {"MessageId": self.client("sqs").send_message(**args)["MessageId"]}
            elif service == "sns":
                delivery.result = {"MessageId": self.client("sns").publish(TopicArn=arn, Message=payload)["MessageId"]}
            elif service == "events" and ":event-bus/" in arn:
                event_in = json.loads(payload)
                self.client("events").put_events(
                    Entries=[
                        {
                            "Source": event_in.get("source", "local"),
                            "DetailType": event_in.get("detail-type", "local"),
                            "Detail": json.dumps(event_in.get("detail", {})),
                            "EventBusName": arn,
                        }
                    ]
                )
            elif service == "logs":
                group = arn.split(":")[6]
                logs = self.client("logs")
                stream = str(uuid.uuid4())
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=[{"timestamp": int(time.time() * 1000), "message": payload}],
                )
            else:
                delivery.error = f"target service {service} is not delivered to by the local cloud"
        except Exception as exc:  # delivery failures are recorded, as EventBridge records failed invocations
            delivery.error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    def _invoke_async(self, arn: str, payload: bytes) -> dict[str, Any]:
        # Lambda's asynchronous invocation: two retries on function errors, then the DLQ (if any).
        attempts: list[dict[str, Any]] = []
        for attempt in range(3):
            body, error = self.invoke(arn, payload)
            attempts.append({"attempt": attempt + 1, "error": error, "payload": body.decode(errors="replace")[:2000]})
            if error is None:
                break
            self.sleep(60.0 * (attempt + 1))
        return {"attempts": attempts, "FunctionError": attempts[-1]["error"]}

    # -- schedules ----------------------------------------------------------------------------
    def scheduled_event(self, rule_arn: str) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": now_iso(),
            "region": self.region,
            "resources": [rule_arn],
            "detail": {},
        }

    def rules(self) -> list[dict[str, Any]]:
        events = self.client("events")
        found: list[dict[str, Any]] = []
        for bus in events.list_event_buses()["EventBuses"]:
            for rule in events.list_rules(EventBusName=bus["Name"]).get("Rules", []):
                targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus["Name"])["Targets"]
                found.append({**rule, "Targets": targets})
        return found

    def schedules(self) -> list[dict[str, Any]]:
        """EventBridge Scheduler schedules (every group), each as ``get_schedule`` returns it."""
        scheduler = self.client("scheduler")
        found: list[dict[str, Any]] = []
        for group in scheduler.list_schedule_groups().get("ScheduleGroups", []):
            for item in scheduler.list_schedules(GroupName=group["Name"]).get("Schedules", []):
                found.append(scheduler.get_schedule(GroupName=group["Name"], Name=item["Name"]))
        return found

    def _deliver_schedule(self, schedule: dict[str, Any]) -> Delivery:
        """What Scheduler does when a schedule fires: its target gets its Input (or ``{}``)."""
        target = schedule["Target"]
        name = f"{schedule.get('GroupName', 'default')}/{schedule['Name']}"
        return self.deliver(
            name,
            schedule.get("Arn", name),
            {"Id": schedule["Name"], "Arn": target["Arn"], "Input": target.get("Input", "{}")},
            {},
        )

    def fire(self, rule_name: str) -> list[Delivery]:
        """Deliver a scheduled event to the rule's targets now and wait for the deliveries.

        ``rule_name`` may also name an EventBridge Scheduler schedule, as ``GROUP/NAME`` or ``NAME``.
        """
        rule = next((r for r in self.rules() if r["Name"] == rule_name), None)
        if rule is None:
            for schedule in self.schedules():
                if rule_name in (schedule["Name"], f"{schedule.get('GroupName')}/{schedule['Name']}"):
                    return [self._deliver_schedule(schedule)]
            raise NotFoundError(f"no rule or schedule named {rule_name} exists in the local cloud")
        event = self.scheduled_event(rule["Arn"])
        return [self.deliver(rule["Name"], rule["Arn"], target, event) for target in rule["Targets"]]

    def start_scheduler(self) -> list[str]:
        """Run scheduled rules and Scheduler schedules on their schedules.

        Returns warnings for rule schedules that cannot run. Scheduler schedules are read every
        minute, so the ones the platform creates while running (one per monitored model) fire too.
        """
        warnings: list[str] = []
        schedules: dict[str, Schedule] = {}
        for rule in self.rules():
            if rule.get("ScheduleExpression"):
                try:
                    schedules[rule["Name"]] = Schedule.parse(rule["ScheduleExpression"])
                except ScheduleError as exc:
                    warnings.append(f"rule {rule['Name']}: {exc}; it only fires on demand")
        started = datetime.now(UTC)
        parsed: dict[str, Schedule | None] = {}

        def tick(minute: datetime) -> None:
            for rule in self.rules():
                schedule = schedules.get(rule["Name"])
                if schedule and rule.get("State") == "ENABLED" and schedule.due(minute, started):
                    event = self.scheduled_event(rule["Arn"])
                    for target in rule["Targets"]:
                        self.pool.submit(self.deliver, rule["Name"], rule["Arn"], target, event)
            for item in self.schedules():
                expression = item.get("ScheduleExpression", "")
                if expression not in parsed:
                    try:
                        parsed[expression] = Schedule.parse(expression)
                    except ScheduleError:
                        parsed[expression] = None  # at(...) and the like: on demand only
                created = item.get("CreationDate") or started
                schedule = parsed[expression]
                if schedule and item.get("State", "ENABLED") == "ENABLED" and schedule.due(minute, created):
                    self.pool.submit(self._deliver_schedule, item)

        def loop() -> None:
            last_minute = started.replace(second=0, microsecond=0)
            while not self._stop.wait(1.0):
                minute = datetime.now(UTC).replace(second=0, microsecond=0)
                if minute <= last_minute:
                    continue
                last_minute = minute
                try:
                    tick(minute)
                except Exception:  # noqa: S112 - the endpoint may be stopping; next minute tries again
                    continue

        self._scheduler = threading.Thread(target=loop, name="scheduler", daemon=True)
        self._scheduler.start()
        return warnings

    def stop(self) -> None:
        self._stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
