"""``bpft prog top [PROG] [interval SECONDS] [count N] [sort SORT]``: the verb.

The session: parse the words, turn statistics on (:mod:`bpft_top.stats`),
take a first sample as the baseline, then one sample per interval, each
turned into rows (:mod:`bpft_top.rates`) and shown: full screen on a terminal
(:mod:`bpft_top.view`), else as text, tables or JSON Lines
(:mod:`bpft_top.headless`). Statistics go back to how they were on every way
out: the end of ``count``, ``q``, Ctrl-C, SIGTERM, SIGHUP, an error (and, with
the ENABLE_STATS fd, SIGKILL: the kernel closes the fd).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator

from bpft.api import Context
from bpft.grammar import Args
from bpft.output import Record

from . import headless, options, rates
from .sample import Sample, Sampler
from .stats import StatsSession


class Terminated(Exception):
    """SIGTERM or SIGHUP arrived: end the session in order (statistics and terminal restored)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum, frame):
    raise Terminated(signum)


def online_cpus() -> int:
    """The CPUs programs can run on now (the denominator of CPU %)."""
    return os.sysconf("SC_NPROCESSORS_ONLN") or 1


class Session:
    """Samples every ``interval`` seconds and yields each interval's rows."""

    def __init__(self, opts: options.TopOptions, want_pids: bool = True):
        self.opts = opts
        self.sampler = Sampler(opts.prog_fds)
        self.cpus = online_cpus()
        self.want_pids = want_pids
        self.previous: Sample | None = None  # the last sample: baseline() takes the first

    def refs(self) -> dict:
        if not self.want_pids:
            return {}
        from bpft.kernel.procfs import obj_refs

        return obj_refs("prog")

    def baseline(self) -> None:
        self.previous = self.sampler.sample()

    def measure(self) -> rates.Interval:
        """Sample now and return the interval since the previous sample."""
        assert self.previous is not None, "baseline() comes first"
        current = self.sampler.sample()
        iv = rates.interval(self.previous, current, self.cpus, self.refs())
        self.previous = current
        return iv

    def intervals(self, wait=None) -> Iterator[rates.Interval]:
        """Each interval as it ends, ``count`` of them or forever. ``wait(seconds)`` sleeps
        (the full-screen view waits for keys meanwhile); the clock does not drift."""
        wait = wait or time.sleep
        assert self.previous is not None, "baseline() comes first"
        due = self.previous.monotonic_ns / 1e9  # samples begin an interval apart
        done = 0
        while self.opts.max_intervals is None or done < self.opts.max_intervals:
            due += self.opts.interval
            left = due - time.monotonic()
            if left > 0:
                wait(left)
            else:
                due = time.monotonic()  # sampling fell behind: start again from now
            yield self.measure()
            done += 1

    def close(self) -> None:
        self.sampler.close()


def _width(stream) -> int | None:
    """The width rows must fit: the terminal's, or COLUMNS; None (no limit) for a pipe or file."""
    if "COLUMNS" in os.environ or stream.isatty():
        return shutil.get_terminal_size().columns
    return None


def _headless(ctx: Context, session: Session) -> None:
    """Each interval as one block of the emitter's format, written at once."""
    em = ctx.emitter
    table = ctx.options.format == "table"
    width = _width(em.out)
    to_json = headless.interval_json if ctx.options.pretty else headless.interval_json_text
    for iv in session.intervals():
        rows = rates.sort_rows(iv.rows, session.opts.sort)
        if em.is_json:
            em.record(Record(to_json(iv, rows)))  # JSON Lines: written and flushed
            continue
        em.text(headless.table_block(iv, rows) if table else headless.plain_block(iv, rows, width))
        em.out.flush()


def run(ctx: Context, args: Args) -> int:
    opts = options.parse(ctx, args)
    headless_asked = ctx.json or ctx.options.format == "table" or opts.max_intervals is not None
    interactive = not headless_asked and sys.stdout.isatty() and sys.stdin.isatty()
    if ctx.json:  # one object per interval, each on its line, at once
        ctx.emitter = headless.JsonLinesEmitter(pretty=ctx.options.pretty)
    session = Session(opts)
    stats = StatsSession()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        for s in handlers:
            signal.signal(s, _terminate)
        source = stats.start()
        ctx.debug(f"top: statistics on through {source.value}{f' ({stats.refusal})' if stats.refusal else ''}")
        session.baseline()
        if interactive:
            from .view import run_view

            run_view(session, source)
        else:
            _headless(ctx, session)
    except KeyboardInterrupt:
        pass
    except Terminated as e:
        return 128 + e.signum  # as a shell reports a death by that signal
    finally:
        stats.close()
        session.close()
        for s, h in handlers.items():
            signal.signal(s, h)
    return 0
