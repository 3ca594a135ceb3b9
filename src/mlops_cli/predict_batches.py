"""Batches of ``mlops predict``: planned within the API's limits, split again on a 413, answered in order."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlops.errors import InputError, MlopsError
from mlops_cli.predict_input import Row

# Bytes of a batch body around its records: {"records":[ ... ]}
_ENVELOPE = len(b'{"records":[]}')


def plan_batches(sizes: Sequence[int], max_records: int, max_bytes: int) -> list[range]:
    """Consecutive index ranges over records of JSON ``sizes`` (bytes), each one request within the limits.

    Greedy: a batch takes records in order while it holds at most ``max_records`` and its body
    (``{"records":[r1,r2,...]}``) at most ``max_bytes``. Every index is in exactly one range, in order.

    Raises
    ------
    ValueError
        A record alone makes a body over ``max_bytes`` (its index is ``args[1]``).

    Examples
    --------
    >>> plan_batches([10, 10, 10, 10, 10], max_records=2, max_bytes=1000)
    [range(0, 2), range(2, 4), range(4, 5)]
    >>> plan_batches([40, 40, 40], max_records=10, max_bytes=_ENVELOPE + 81)
    [range(0, 2), range(2, 3)]
    """
    if max_records < 1:
        raise ValueError("max_records must be at least 1")
    batches: list[range] = []
    start, used = 0, _ENVELOPE
    for index, size in enumerate(sizes):
        if _ENVELOPE + size > max_bytes:
            raise ValueError(f"record of {size} bytes is over the {max_bytes}-byte request limit", index)
        grown = used + size + (1 if index > start else 0)
        if index > start and (index - start >= max_records or grown > max_bytes):
            batches.append(range(start, index))
            start, grown = index, _ENVELOPE + size
        used = grown
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches


@dataclass
class Answer:
    """The API's answer to one batch, or the error that refused it."""

    rows: Sequence[Row]
    results: list[dict[str, Any]]  # one per request sent (several when a 413 split the batch)
    error: MlopsError | None = None

    def predictions(self) -> Iterator[dict[str, Any]]:
        rows = iter(self.rows)
        for result in self.results:
            probabilities = result.get("probabilities")
            classes = result.get("classes")
            for index, prediction in enumerate(result["predictions"]):
                row = next(rows)
                out: dict[str, Any] = {"row": row.row, "line": row.line, "prediction": prediction}
                if probabilities and classes:
                    out["probabilities"] = {str(c): p for c, p in zip(classes, probabilities[index], strict=False)}
                out["version"] = result.get("version")
                out["request_id"] = result.get("request_id")
                yield out


class _TooLargeError(InputError):
    """The API answered 413 for a batch (split it and send again)."""


Send = Callable[[bytes], dict[str, Any]]


def predict_batch(send: Send, rows: Sequence[Row], parts: Sequence[bytes]) -> Answer:
    """Send one batch (``parts`` are its records' JSON); a 413 splits it in two, recursively."""
    body = b'{"records":[' + b",".join(parts) + b"]}"
    try:
        return Answer(rows, [send(body)])
    except _TooLargeError as exc:
        if len(rows) == 1:
            return Answer(rows, [], InputError(str(exc)))
        half = len(rows) // 2
        first = predict_batch(send, rows[:half], parts[:half])
        if first.error is not None:
            return Answer(rows, first.results, first.error)
        second = predict_batch(send, rows[half:], parts[half:])
        return Answer(rows, first.results + second.results, second.error)
    except MlopsError as exc:
        return Answer(rows, [], exc)


def _locate(message: str, rows: Sequence[Row], done: int) -> str:
    """The API names records by their index in the batch: name them by input row and line."""

    def replace(match: re.Match[str]) -> str:
        index = int(match.group(1)) - done
        return rows[index].where if 0 <= index < len(rows) else match.group(0)

    return re.sub(r"\brecord (\d+)\b", replace, message)


def _span(rows: Sequence[Row]) -> str:
    first, last = rows[0], rows[-1]
    if first is last:
        return first.where
    lines = f" (lines {first.line}-{last.line})" if first.line is not None and last.line is not None else ""
    return f"rows {first.row}-{last.row}{lines}"


def _in_order(
    run: Callable[[range], Answer], batches: Sequence[range], concurrency: int
) -> Generator[Answer, None, None]:
    """Answers in batch order, with at most ``concurrency`` batches in flight; none is sent after a stop."""
    if concurrency == 1:
        yield from map(run, batches)
        return
    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        pending: deque[Future[Answer]] = deque()
        ahead = iter(batches)
        for batch in ahead:
            pending.append(pool.submit(run, batch))
            if len(pending) >= concurrency:
                break
        while pending:
            answer = pending.popleft().result()
            yield answer
            following = next(ahead, None)
            if following is not None:
                pending.append(pool.submit(run, following))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
