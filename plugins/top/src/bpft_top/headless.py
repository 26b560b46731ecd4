"""Headless reports: one block of text, one JSON object or one table per interval.

The mode for scripts and exporters (output that is not a terminal, ``-j``,
``--table``, or ``count N``). Each interval is written and flushed as soon as it is measured.

With ``-j`` the output is JSON Lines: one object per interval, one line each
(``-p`` indents them, one object after another)::

    {"time": 1764750000.123456, "interval_s": 0.500213, "programs": [{"id": 12,
     "type": "xdp", "name": "run_xdp", "events": 1000, "events_per_s": 1999.148,
     "avg_ns": 27.317, "cpu_pct": 0.00273, "run_cnt": 1000, "run_time_ns": 27317,
     "pids": [{"pid": 4242, "comm": "xdp-loader"}]}, ...]}

``time`` is the wall-clock time (seconds since the epoch) at which the sample
that ends the interval began; ``interval_s`` the time since the previous
sample began; ``avg_ns`` is null for a program that did not run.
"""

from __future__ import annotations

import time
from typing import TextIO

from bpft.output import Emitter, RawJson, json_quote, render_json

from . import columns
from .rates import Interval, ProgRate

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


class JsonLinesEmitter(Emitter):
    """``-j`` for a stream: every record is one JSON value on its own line, written at once.

    Errors are bpftool's ``{"error": ...}`` object, on a line of its own.
    """

    name = "jsonl"
    is_json = True

    def __init__(self, pretty: bool = False, out: TextIO | None = None, err: TextIO | None = None):
        super().__init__(out, err)
        self.pretty = pretty

    def record(self, rec) -> None:
        if self.pretty:
            from bpft.output import JsonWriter

            writer = JsonWriter(pretty=True)
            writer.value(rec.json)
            text = writer.take()
        else:
            text = render_json(rec.json)
        self.out.write(text + "\n")
        self.out.flush()

    def error(self, message: str) -> None:
        self.out.write('{"error":' + json_quote(message) + "}\n")
        self.out.flush()

    def help(self, text: str) -> None:
        self.out.write("null\n")


def _number(value: float) -> RawJson:
    """A float as JSON: Python's shortest text that reads back as the same float."""
    return RawJson(repr(float(value)))


def program_json(row: ProgRate) -> dict:
    return {
        "id": row.id,
        "type": row.type,
        "name": row.name,
        "events": row.events,
        "events_per_s": _number(row.events_per_s),
        "avg_ns": _number(row.avg_ns) if row.avg_ns is not None else None,
        "cpu_pct": _number(row.cpu_pct),
        "run_cnt": row.run_cnt,
        "run_time_ns": row.run_time_ns,
        "pids": [{"pid": pid, "comm": comm} for pid, comm in row.pids],
    }


def interval_json(iv: Interval, rows: list[ProgRate]) -> dict:
    return {
        "time": _number(iv.sample.wall),
        "interval_s": _number(iv.seconds),
        "programs": [program_json(r) for r in rows],
    }


def program_json_text(row: ProgRate) -> str:
    """:func:`program_json` as compact JSON text, written directly (a refresh of 10,000
    programs makes 10,000 of them: the general renderer costs three times as much)."""
    pids = ",".join(f'{{"pid":{pid},"comm":{json_quote(comm)}}}' for pid, comm in row.pids)
    avg = "null" if row.avg_ns is None else repr(float(row.avg_ns))
    return (
        f'{{"id":{row.id},"type":{json_quote(row.type)},"name":{json_quote(row.name)},"events":{row.events},'
        f'"events_per_s":{float(row.events_per_s)!r},"avg_ns":{avg},"cpu_pct":{float(row.cpu_pct)!r},'
        f'"run_cnt":{row.run_cnt},"run_time_ns":{row.run_time_ns},"pids":[{pids}]}}'
    )


def interval_json_text(iv: Interval, rows: list[ProgRate]) -> RawJson:
    """:func:`interval_json` as compact JSON text (what ``-j`` without ``-p`` writes)."""
    programs = ",".join([program_json_text(r) for r in rows])
    return RawJson(f'{{"time":{_number(iv.sample.wall)},"interval_s":{_number(iv.seconds)},"programs":[{programs}]}}')


def heading(iv: Interval, shown: int) -> str:
    """The first line of an interval's block: when, how long, how many programs."""
    text = (
        f"{time.strftime(_TIME_FORMAT, time.localtime(iv.sample.wall))}  interval {iv.seconds:.3f}s"
        f"  programs {shown}  cpus {iv.cpus}"
    )
    if iv.appeared:
        text += f"  appeared {iv.appeared}"
    if iv.vanished:
        text += f"  vanished {iv.vanished}"
    return text


def plain_block(iv: Interval, rows: list[ProgRate], width: int | None) -> str:
    """An interval as text: the heading, the column titles, a line per program, a blank line."""
    texts = [columns.cells(r) for r in rows]
    placed = columns.layout([columns.titles(), *texts], width)
    out = [heading(iv, len(rows)), columns.line(columns.titles(), placed)]
    out.extend(columns.line(t, placed) for t in texts)
    return "\n".join(out) + "\n\n"


def table_row(row: ProgRate) -> dict:
    return dict(zip((c.title.lower() for c in columns.COLUMNS), columns.cells(row), strict=True))


def table_block(iv: Interval, rows: list[ProgRate]) -> str:
    """``--table``: the heading and a tabulate table (the core's table style)."""
    from tabulate import tabulate

    table = tabulate([table_row(r) for r in rows], headers="keys", tablefmt="simple", disable_numparse=True)
    return heading(iv, len(rows)) + "\n" + (table + "\n" if rows else "") + "\n"
