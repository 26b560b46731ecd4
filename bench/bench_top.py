"""Benchmark `prog top`: CPU per refresh when sampling 2,000 and 10,000 programs.

    python bench/bench_top.py [--programs 2000,10000] [--refreshes 20] [--runs 3]

Target (issue #17): sampling 2,000 programs once costs well under one interval
(the default interval is 1 s).

For each count, that many small socket filters are loaded and pinned (as
bench_show does), and removed afterwards. Two figures:

* in-process, per refresh (CPU time, ``time.process_time``), the phases of one
  refresh separately and together: the sample (every program's counters read
  through the listing loop), the rows (two samples into per-interval rates,
  sorted), the pids (procfs: which processes hold programs) and the text of a
  headless refresh (JSON Lines and plain). Fastest and median of ``--refreshes``.
* end to end: user + system CPU of a whole `bpft -j prog top interval 0.1 count N`
  process, at two counts; the difference over the extra refreshes is the CPU a
  refresh costs in the real process (start-up and the baseline cancel out).
  Median of ``--runs`` pairs.

Other processes' programs are sampled too (they are on the machine): the
programs count printed is the total each refresh saw.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
import uuid

import typer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BPFFS, bpft_exe, load_socket_filters, remove_dir, report, run_once  # noqa: E402

app = typer.Typer(add_completion=False)


def _cpu_per_call(func, refreshes: int) -> tuple[float, float]:
    """(fastest, median) CPU seconds of ``func()`` over ``refreshes`` calls."""
    got = []
    for _ in range(refreshes):
        t0 = time.process_time()
        func()
        got.append(time.process_time() - t0)
    return min(got), statistics.median(got)


def _in_process(refreshes: int) -> tuple[int, dict[str, tuple[float, float]]]:
    from bpft.kernel.procfs import obj_refs
    from bpft.output import Record
    from bpft_top import headless, rates
    from bpft_top.sample import Sampler
    from bpft_top.top import online_cpus

    sampler = Sampler()
    cpus = online_cpus()
    first = sampler.sample()
    second = sampler.sample()
    refs = obj_refs("prog")
    iv = rates.interval(first, second, cpus, refs)
    rows = rates.sort_rows(iv.rows, rates.SortKey.CPU)

    def rows_phase():
        rates.sort_rows(rates.interval(first, second, cpus, refs).rows, rates.SortKey.CPU)

    def json_text():
        em = headless.JsonLinesEmitter(out=io.StringIO())
        em.record(Record(headless.interval_json_text(iv, rows)))

    def whole():
        current = sampler.sample()
        got = rates.interval(first, current, cpus, obj_refs("prog"))
        em = headless.JsonLinesEmitter(out=io.StringIO())
        em.record(Record(headless.interval_json_text(got, rates.sort_rows(got.rows, rates.SortKey.CPU))))

    phases = {
        "sample (kernel reads)": lambda: sampler.sample(),
        "rows (rates, sorted)": rows_phase,
        "pids (procfs)": lambda: obj_refs("prog"),
        "JSON Lines text": json_text,
        "plain text": lambda: headless.plain_block(iv, rows, None),
        "one -j refresh, all phases": whole,
    }
    return len(second.progs), {name: _cpu_per_call(func, refreshes) for name, func in phases.items()}


def _end_to_end(runs: int, short: int, long: int) -> float:
    """Median CPU seconds per refresh of a whole `bpft -j prog top` process."""
    bpft = bpft_exe()

    def cpu(count: int) -> float:
        _, used, rc = run_once([*bpft, "-j", "prog", "top", "interval", "0.1", "count", str(count)])
        if rc != 0:
            raise SystemExit(f"bpft prog top failed ({rc})")
        return used

    per = [(cpu(long) - cpu(short)) / (long - short) for _ in range(runs)]
    return statistics.median(per)


@app.command()
def main(
    programs: str = typer.Option("2000,10000", help="program counts to measure, comma-separated"),
    refreshes: int = typer.Option(20, help="in-process refreshes measured per phase"),
    runs: int = typer.Option(3, help="end-to-end pairs of runs per count"),
) -> None:
    from bpft_top.stats import StatsSession

    stats = StatsSession()  # as in a session: the counters run (a no-op for the cost of a read)
    stats.start()
    try:
        for count in (int(n) for n in programs.split(",")):
            pin_dir = BPFFS / f"bpft_bench_top_{uuid.uuid4().hex[:8]}"
            try:
                t0 = time.monotonic()
                load_socket_filters(count, pin_dir)
                loaded_in = time.monotonic() - t0
                seen, phases = _in_process(refreshes)
                per_refresh = _end_to_end(runs, 2, 12)
            finally:
                remove_dir(pin_dir)
            print(f"\n{count} programs loaded ({loaded_in:.1f} s); each refresh saw {seen} programs in all")
            rows = [(f"  {name} (fastest / median)", f"{lo * 1e3:.1f} / {mid * 1e3:.1f} ms cpu")
                    for name, (lo, mid) in phases.items()]  # fmt: skip
            whole = phases["one -j refresh, all phases"][1]
            rows.append(("  one refresh, share of a 1 s interval (median)", f"{whole * 100:.1f}%"))
            rows.append(("  end to end: bpft -j prog top, cpu per refresh (median)", f"{per_refresh * 1e3:.1f} ms"))
            report(rows)
    finally:
        stats.close()


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_top needs root (it loads programs)")
    app()
