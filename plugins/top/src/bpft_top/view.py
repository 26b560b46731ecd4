"""The full-screen view (curses, from the standard library), for a terminal.

Keys::

    q, Ctrl-C        quit (the terminal is restored)
    c r e a i n      sort by CPU %, total run time, events/s, avg ns, id, name
                     (the same key again reverses the order)
    /                type a filter: programs whose name or type contains it
                     (Enter keeps it, Esc puts the old one back, an empty one clears)
    Up/Down, k/j     select a program; PgUp/PgDn, Home/End move further
    m                the sparkline shows CPU % or events/s

The screen is drawn again on every interval, key and resize. The bottom lines
show the selected program's recent CPU % (or events/s) as a sparkline.
"""

from __future__ import annotations

import curses
import locale
import os
import sys
import time
from collections import deque

from . import columns, rates
from .rates import ProgRate, SortKey
from .sparkline import ASCII_BLOCKS, BLOCKS, sparkline
from .stats import StatsSource

HISTORY = 120  # intervals kept per program for the sparkline
SORT_KEYS = {
    ord("c"): SortKey.CPU,
    ord("r"): SortKey.RUNTIME,
    ord("e"): SortKey.EVENTS,
    ord("a"): SortKey.AVG,
    ord("i"): SortKey.ID,
    ord("n"): SortKey.NAME,
}
_FAR = 1 << 30  # Home and End: as far as the rows go
MOVES = {curses.KEY_UP: -1, ord("k"): -1, curses.KEY_DOWN: 1, ord("j"): 1, curses.KEY_HOME: -_FAR, curses.KEY_END: _FAR}
PAGES = {curses.KEY_PPAGE: -1, curses.KEY_NPAGE: 1}
HELP = "q quit  / filter  c r e a i n sort  Up/Down select  m sparkline: cpu%/events"
_ESC, _ENTERS, _BACKSPACES = 27, (10, 13, curses.KEY_ENTER), (8, 127, curses.KEY_BACKSPACE)
_HEAD_LINES, _FOOT_LINES = 3, 2


class Quit(Exception):
    """``q`` was pressed."""


class View:
    """What the screen shows, the keys' effects, and drawing."""

    def __init__(self, screen, session, source: StatsSource, blocks: str = BLOCKS):
        self.screen = screen
        self.session = session
        self.source = source
        self.blocks = blocks
        self.sort = session.opts.sort
        self.reverse = False
        self.filter = ""
        self.typing: str | None = None  # the filter being typed, or None
        self.filter_before = ""
        self.selected: int | None = None  # a program id
        self.first_row = 0  # scrolling
        self.metric_cpu = True
        self.interval: rates.Interval | None = None
        self.history: dict[int, deque] = {}

    # -- the model
    def take(self, iv: rates.Interval) -> None:
        self.interval = iv
        seen = set()
        for row in iv.rows:
            seen.add(row.id)
            got = self.history.get(row.id)
            if got is None:
                got = self.history[row.id] = deque(maxlen=HISTORY)
            got.append((row.cpu_pct, row.events_per_s))
        for gone in [i for i in self.history if i not in seen]:
            del self.history[gone]

    def rows(self) -> list[ProgRate]:
        if self.interval is None:
            return []
        wanted = (self.typing if self.typing is not None else self.filter).lower()
        rows = self.interval.rows
        if wanted:
            rows = [r for r in rows if wanted in r.name.lower() or wanted in r.type.lower()]
        return rates.sort_rows(rows, self.sort, self.reverse)

    # -- keys
    def key(self, ch: int) -> None:
        if ch == curses.KEY_RESIZE:
            self._resized()
            return
        if self.typing is not None:
            self._filter_key(ch, self.typing)
            return
        if ch in (ord("q"), ord("Q")):
            raise Quit()
        if ch in SORT_KEYS:
            key = SORT_KEYS[ch]
            self.reverse = not self.reverse if key == self.sort else False
            self.sort = key
        elif ch == ord("/"):
            self.typing, self.filter_before = self.filter, self.filter
        elif ch == ord("m"):
            self.metric_cpu = not self.metric_cpu
        elif ch in MOVES:
            self._move(MOVES[ch])
        elif ch in PAGES:
            self._move(PAGES[ch] * max(1, curses.LINES - _HEAD_LINES - _FOOT_LINES))

    def _resized(self) -> None:
        # ncurses may take the size from LINES/COLUMNS, which do not follow a resize:
        # ask the terminal itself (resizeterm queues another KEY_RESIZE, so only on a change)
        terminal = sys.__stdout__  # None only without a stdout: then curses' own size stands
        try:
            if terminal is not None:
                size = os.get_terminal_size(terminal.fileno())
                if curses.is_term_resized(size.lines, size.columns):
                    curses.resizeterm(size.lines, size.columns)
        except (OSError, ValueError, curses.error):
            pass
        curses.update_lines_cols()
        # the terminal may have re-wrapped what was on it: paint every cell again,
        # rather than what curses believes has changed
        self.screen.clearok(True)

    def _filter_key(self, ch: int, typing: str) -> None:
        """A key while the filter is typed; ``typing`` is what is typed so far."""
        if ch in _ENTERS:
            self.filter, self.typing = typing.strip(), None
        elif ch == _ESC:
            self.filter, self.typing = self.filter_before, None
        elif ch in _BACKSPACES:
            self.typing = typing[:-1]
        elif 32 <= ch < 127:
            self.typing = typing + chr(ch)

    def _move(self, step: int) -> None:
        rows = self.rows()
        if not rows:
            return
        ids = [r.id for r in rows]
        at = ids.index(self.selected) if self.selected in ids else 0
        self.selected = ids[max(0, min(len(ids) - 1, at + step))]

    # -- drawing
    def _put(self, y: int, text: str, attr: int = 0) -> None:
        height, width = self.screen.getmaxyx()
        if 0 <= y < height and width > 0:
            try:
                self.screen.addnstr(y, 0, text.ljust(width), width - (1 if y == height - 1 else 0), attr)
            except curses.error:
                pass

    def draw(self) -> None:
        height, width = self.screen.getmaxyx()
        self.screen.erase()
        rows = self.rows()
        iv = self.interval
        clock = time.strftime("%H:%M:%S", time.localtime(iv.sample.wall)) if iv else "--:--:--"
        total = len(iv.rows) if iv else 0
        self._put(
            0,
            f"bpft prog top  {clock}  interval {self.session.opts.interval:g}s  {self.session.cpus} CPUs"
            f"  programs {total} (shown {len(rows)})  stats: {self.source.value}",
            curses.A_BOLD,
        )
        order = "reversed" if self.reverse else ""
        filt = f"filter: {self.typing}_" if self.typing is not None else f"filter: {self.filter or '-'}"
        self._put(1, f"sort: {self.sort.value} {order}".rstrip() + f"  {filt}")
        texts = [columns.cells(r) for r in rows]
        titles = columns.titles()
        placed = columns.layout([titles, *texts], width)
        self._put(2, columns.line(titles, placed), curses.A_REVERSE)
        if iv is None:
            self._put(_HEAD_LINES, "waiting for the first interval ...")
        body = max(0, height - _HEAD_LINES - _FOOT_LINES)
        ids = [r.id for r in rows]
        if rows and self.selected not in ids:
            self.selected = ids[0]
        at = ids.index(self.selected) if self.selected in ids else 0  # in ids whenever there are rows
        if at < self.first_row:
            self.first_row = at
        elif at >= self.first_row + body:
            self.first_row = at - body + 1
        self.first_row = max(0, min(self.first_row, max(0, len(rows) - body)))
        for n, cells in enumerate(texts[self.first_row : self.first_row + body]):
            index = self.first_row + n
            self._put(_HEAD_LINES + n, columns.line(cells, placed), curses.A_REVERSE if index == at else 0)
        self._put(height - 2, self._spark_line(width, rows[at] if rows else None))
        self._put(height - 1, HELP, curses.A_DIM)
        self.screen.refresh()

    def _spark_line(self, width: int, row: ProgRate | None) -> str:
        if row is None:
            return ""
        series = [cpu if self.metric_cpu else events for cpu, events in self.history.get(row.id, ())]
        now = f"{series[-1]:.2f}" if series else "-"
        label = f"{row.id} {row.name}  {'cpu%' if self.metric_cpu else 'events/s'} {now} "
        return label + sparkline(series, max(0, width - len(label) - 1), self.blocks)

    # -- the loop
    def wait(self, seconds: float) -> None:
        """Until ``seconds`` have passed, answer keys (each redraws)."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.screen.timeout(max(1, int(left * 1000)))
            ch = self.screen.getch()
            if ch != -1:
                self.key(ch)
                self.draw()


def _blocks() -> str:
    try:
        "".join(BLOCKS).encode(locale.getpreferredencoding(False))
    except (UnicodeEncodeError, LookupError):
        return ASCII_BLOCKS
    return BLOCKS


def _main(screen, session, source: StatsSource) -> None:
    for setting, value in ((curses.curs_set, 0), (curses.set_escdelay, 25)):  # no cursor, a quick Esc
        try:
            setting(value)
        except curses.error:
            pass
    screen.keypad(True)
    view = View(screen, session, source, _blocks())
    view.draw()
    try:
        for iv in session.intervals(view.wait):
            view.take(iv)
            view.draw()
    except Quit:
        return


def run_view(session, source: StatsSource) -> None:
    """The full-screen view until ``q`` or Ctrl-C; curses.wrapper restores the terminal on any way out."""
    locale.setlocale(locale.LC_ALL, "")
    for name in ("LINES", "COLUMNS"):  # the terminal's size, not a stale one a shell exported
        os.environ.pop(name, None)
    try:
        curses.wrapper(_main, session, source)
    except curses.error as e:
        from bpft.errors import BpftError

        raise BpftError(f"cannot draw on this terminal: {e}") from None
