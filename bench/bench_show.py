"""Benchmark `prog show`: start-up floor and per-program cost, bpft against bpftool.

    python bench/bench_show.py [--programs 2000] [--runs 15]

Targets (issue #2):
* start-up: `bpft prog show` with no programs loaded within 2.0x the wall time
  of `python3 -c pass`;
* scale: per-program cost ((wall at N) - (wall at 0)) / N no more than
  bpftool's, plain and -j.

"No programs loaded" means none of ours: programs other processes hold are
there in both measurements and cancel out of the per-program figures.
"""

from __future__ import annotations

import os
import sys
import uuid

import typer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BPFFS, bpft_exe, load_socket_filters, python_exe, remove_dir, report, wall  # noqa: E402

app = typer.Typer(add_completion=False)


@app.command()
def main(programs: int = typer.Option(2000, help="programs to load for the scale test"), runs: int = 15) -> None:
    bpft = bpft_exe()
    floor = wall([python_exe(), "-c", "pass"], runs)
    variants = {"plain": [], "-j": ["-j"]}
    at0 = {}
    for label, opt in variants.items():
        at0[("bpft", label)] = wall([*bpft, *opt, "prog", "show"], runs)
        at0[("bpftool", label)] = wall(["bpftool", *opt, "prog", "show"], runs)
    pin_dir = BPFFS / f"bpft_bench_{uuid.uuid4().hex[:8]}"
    try:
        load_socket_filters(programs, pin_dir)
        atn = {}
        scale_runs = max(3, runs // 3)
        for label, opt in variants.items():
            atn[("bpft", label)] = wall([*bpft, *opt, "prog", "show"], scale_runs)
            atn[("bpftool", label)] = wall(["bpftool", *opt, "prog", "show"], scale_runs)
    finally:
        remove_dir(pin_dir)

    rows = [
        ("python3 -c pass", f"{floor * 1e3:.1f} ms"),
        ("bpft prog show (no programs)", f"{at0[('bpft', 'plain')] * 1e3:.1f} ms"),
        ("start-up ratio (target <= 2.0)", f"{at0[('bpft', 'plain')] / floor:.2f}x"),
    ]
    for label in variants:
        per = {tool: (atn[(tool, label)] - at0[(tool, label)]) / programs for tool in ("bpft", "bpftool")}
        rows.append((f"per program, {label}: bpft", f"{per['bpft'] * 1e6:.1f} us"))
        rows.append((f"per program, {label}: bpftool", f"{per['bpftool'] * 1e6:.1f} us"))
        ratio = per["bpft"] / per["bpftool"] if per["bpftool"] > 0 else float("inf")
        rows.append((f"per-program ratio {label} (target <= 1.0)", f"{ratio:.2f}x"))
    report(rows)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_show needs root (it loads programs)")
    app()
