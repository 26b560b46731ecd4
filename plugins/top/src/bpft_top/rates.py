"""What each program cost over one interval: two samples in, one row per program out.

The model every view renders (plain lines, JSON Lines, tables, curses). Per
program, between the previous sample and this one:

* ``events``: runs in the interval (the run count's difference);
* ``events_per_s``: ``events`` over the interval's length;
* ``avg_ns``: run time over runs in the interval (None without runs);
* ``cpu_pct``: run time in the interval over (interval x CPUs), in percent:
  the share of the whole machine the program took;
* ``run_cnt``/``run_time_ns``: the kernel's totals at this sample.

A program that appears between two samples was loaded in between (its load
time says so), so all its runs belong to this interval: it is measured from
zero. One that was there before but missed by the previous pass is not
measured until the next interval (``events`` 0). Programs that vanished
between two samples have no row.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from .sample import ProgCounters, Sample


class ProgRate(NamedTuple):
    id: int
    type: str
    name: str
    events: int
    events_per_s: float
    avg_ns: float | None
    cpu_pct: float
    run_cnt: int
    run_time_ns: int
    pids: tuple[tuple[int, str], ...]


class Interval(NamedTuple):
    """One interval's rows, with the sample that closed it and its length."""

    sample: Sample
    seconds: float
    cpus: int
    rows: list[ProgRate]
    appeared: int  # programs first seen in this sample
    vanished: int  # programs of the previous sample not seen in this one


class SortKey(enum.Enum):
    """``sort`` words, in the order the grammar tries their prefixes."""

    CPU = "cpu"
    RUNTIME = "runtime"
    EVENTS = "events"
    AVG = "avg"
    ID = "id"
    NAME = "name"


# (key function, descending by default); ties go to the lower id
_ORDER = {
    SortKey.CPU: (lambda r: (r.cpu_pct, -r.id), True),
    SortKey.RUNTIME: (lambda r: (r.run_time_ns, -r.id), True),
    SortKey.EVENTS: (lambda r: (r.events_per_s, -r.id), True),
    SortKey.AVG: (lambda r: (r.avg_ns if r.avg_ns is not None else -1.0, -r.id), True),
    SortKey.ID: (lambda r: r.id, False),
    SortKey.NAME: (lambda r: (r.name, r.id), False),
}


def sort_rows(rows: list[ProgRate], key: SortKey, reverse: bool = False) -> list[ProgRate]:
    """``rows`` in ``key``'s natural order (costs high to low, ids and names ascending), or reversed."""
    func, descending = _ORDER[key]
    return sorted(rows, key=func, reverse=descending != reverse)


def _rate(prog: ProgCounters, before: ProgCounters | None, seconds: float, cpus: int, pids) -> ProgRate:
    events = prog.run_cnt - before.run_cnt if before else prog.run_cnt
    spent = prog.run_time_ns - before.run_time_ns if before else prog.run_time_ns
    return ProgRate(
        prog.id,
        prog.type,
        prog.name,
        events,
        events / seconds if seconds > 0 else 0.0,
        spent / events if events > 0 else None,
        spent * 100.0 / (seconds * 1e9 * cpus) if seconds > 0 and cpus > 0 else 0.0,
        prog.run_cnt,
        prog.run_time_ns,
        pids,
    )


def interval(previous: Sample, current: Sample, cpus: int, refs: dict | None = None) -> Interval:
    """The rows of the interval from ``previous`` to ``current``; ``refs``: {prog id: [(pid, comm)]}."""
    seconds = (current.monotonic_ns - previous.monotonic_ns) / 1e9
    refs = refs or {}
    before_progs = previous.progs
    rows = []
    appeared = 0
    for prog in current.progs.values():
        before = before_progs.get(prog.id)
        if before is None:
            appeared += 1
            if prog.load_time < previous.boottime_ns:  # missed by the previous pass: no baseline
                before = prog
        rows.append(_rate(prog, before, seconds, cpus, tuple(refs.get(prog.id, ()))))
    vanished = sum(1 for prog_id in before_progs if prog_id not in current.progs)
    return Interval(current, seconds, cpus, rows, appeared, vanished)
