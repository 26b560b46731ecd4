"""The columns of the plain and full-screen views, and how they fit a width.

Each column has a title, a text for a row, an alignment, a minimum width and
a priority. :func:`layout` keeps as many columns as fit a width, dropping the
least important first; NAME and PIDS give up width before anything is dropped
(a cut text ends in ``~``). With no width (output that is not a terminal) every
column is kept whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from .rates import ProgRate, SortKey


def _pids(row: ProgRate) -> str:
    return ", ".join(f"{comm}({pid})" for pid, comm in row.pids) or "-"


class Column(NamedTuple):
    title: str
    text: Callable[[ProgRate], str]
    right: bool  # right-aligned (numbers)
    min_width: int
    priority: int  # columns of lower priority are dropped first
    sort: SortKey | None = None  # the sort key this column shows, if any
    shrinks: bool = False  # may be cut below its texts' width


COLUMNS: tuple[Column, ...] = (
    Column("ID", lambda r: str(r.id), True, 2, 100, SortKey.ID),
    Column("TYPE", lambda r: r.type, False, 4, 40),
    Column("NAME", lambda r: r.name, False, 8, 90, SortKey.NAME, shrinks=True),
    Column("EVENTS/S", lambda r: f"{r.events_per_s:.1f}", True, 8, 80, SortKey.EVENTS),
    Column("AVG_NS", lambda r: f"{r.avg_ns:.0f}" if r.avg_ns is not None else "-", True, 6, 60, SortKey.AVG),
    Column("CPU%", lambda r: f"{r.cpu_pct:.2f}", True, 5, 95, SortKey.CPU),
    Column("RUN_CNT", lambda r: str(r.run_cnt), True, 7, 30),
    Column("RUN_TIME_NS", lambda r: str(r.run_time_ns), True, 11, 50, SortKey.RUNTIME),
    Column("PIDS", _pids, False, 4, 20, shrinks=True),
)

GAP = 2  # spaces between columns


class Placed(NamedTuple):
    column: Column
    width: int


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, ``~`` marking a cut."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "~" if width > 0 else ""


def layout(texts: Sequence[Sequence[str]], width: int | None) -> list[tuple[int, int]]:
    """(column index, width) of the columns to show, for rows of cell ``texts`` (one list
    per row, a text per column of :data:`COLUMNS`), within ``width`` characters (None: all)."""
    natural = [
        max([len(col.title), col.min_width if width is not None else 0, *(len(t[i]) for t in texts)])
        for i, col in enumerate(COLUMNS)
    ]
    keep = list(range(len(COLUMNS)))
    if width is None:
        return [(i, natural[i]) for i in keep]
    widths = dict(enumerate(natural))

    def total() -> int:
        return sum(widths[i] for i in keep) + GAP * (len(keep) - 1)

    for i in sorted(keep, key=lambda i: COLUMNS[i].priority):  # shrink the cuttable ones first
        if total() <= width:
            break
        if COLUMNS[i].shrinks:
            widths[i] = max(max(len(COLUMNS[i].title), COLUMNS[i].min_width), widths[i] - (total() - width))
    for i in sorted(range(len(COLUMNS)), key=lambda i: COLUMNS[i].priority):
        if total() <= width or len(keep) == 1:
            break
        keep.remove(i)
    for i in sorted(keep, key=lambda i: -COLUMNS[i].priority):  # what dropping freed goes back to the cut
        spare = width - total()
        if spare <= 0:
            break
        widths[i] = min(natural[i], widths[i] + spare)
    return [(i, widths[i]) for i in keep]


def cells(row: ProgRate) -> list[str]:
    return [col.text(row) for col in COLUMNS]


def line(texts: Sequence[str], placed: list[tuple[int, int]]) -> str:
    """One line of the given cell texts (one per column of :data:`COLUMNS`) in the layout."""
    parts = []
    for i, w in placed:
        text = cut(texts[i], w)
        parts.append(text.rjust(w) if COLUMNS[i].right else text.ljust(w))
    return (" " * GAP).join(parts).rstrip()


def titles() -> list[str]:
    return [col.title for col in COLUMNS]
