"""Benchmark `prog show`: start-up floor and per-program cost, bpft against bpftool.

    python bench/bench_show.py [--programs 2000] [--runs 35] [--rounds 7]

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
import statistics
import sys
import uuid

import typer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BPFFS, bpft_exe, load_socket_filters, python_exe, remove_dir, report, sample  # noqa: E402

app = typer.Typer(add_completion=False)


@app.command()
def main(
    programs: int = typer.Option(2000, help="programs to load for the scale test"),
    runs: int = typer.Option(35, help="runs of each command in each state, spread over the rounds"),
    rounds: int = typer.Option(7, help="rounds, each measuring both states"),
) -> None:
    bpft = bpft_exe()
    variants = {"plain": [], "-j": ["-j"]}

    def commands(with_floor: bool) -> dict:
        cmds = {("python", ""): [python_exe(), "-c", "pass"]} if with_floor else {}
        for label, opt in variants.items():
            cmds[("bpft", label)] = [*bpft, *opt, "prog", "show"]
            cmds[("bpftool", label)] = ["bpftool", *opt, "prog", "show"]
        return cmds

    # The machine's speed drifts by tens of percent over a minute, so the two
    # states alternate: each round runs every command with none of our programs
    # loaded, loads them, runs them again, and unloads them.
    per_round = max(1, -(-runs // rounds))
    at0: dict = {}  # command -> one list of (wall, cpu) samples per round
    atn: dict = {}
    for _ in range(rounds):
        for key, got in sample(commands(True), per_round).items():
            at0.setdefault(key, []).append(got)
        pin_dir = BPFFS / f"bpft_bench_{uuid.uuid4().hex[:8]}"
        try:
            load_socket_filters(programs, pin_dir)
            for key, got in sample(commands(False), per_round).items():
                atn.setdefault(key, []).append(got)
        finally:
            remove_dir(pin_dir)

    def wall_min(samples: list) -> float:
        return min(w for got in samples for w, _ in got)

    def wall_median(samples: list) -> float:
        return statistics.median([w for got in samples for w, _ in got])

    def cpu_median(samples: list) -> float:
        return statistics.median([c for got in samples for _, c in got])

    def per_program(key: tuple, pick) -> float:
        return (pick(atn[key]) - pick(at0[key])) / programs

    def ratio(label: str, pick) -> float:
        theirs = per_program(("bpftool", label), pick)
        return per_program(("bpft", label), pick) / theirs if theirs > 0 else float("inf")

    floor, start = at0[("python", "")], at0[("bpft", "plain")]
    rows = [
        ("python3 -c pass (min / median)", f"{wall_min(floor) * 1e3:.1f} / {wall_median(floor) * 1e3:.1f} ms"),
        ("bpft prog show, no programs", f"{wall_min(start) * 1e3:.1f} / {wall_median(start) * 1e3:.1f} ms"),
        (
            "start-up ratio (target <= 2.0)",
            f"{wall_min(start) / wall_min(floor):.2f}x / {wall_median(start) / wall_median(floor):.2f}x",
        ),
    ]
    for label in variants:
        for tool in ("bpft", "bpftool"):
            key = (tool, label)
            rows.append(
                (
                    f"per program, {label}: {tool}",
                    f"{per_program(key, wall_min) * 1e6:.1f} / {per_program(key, wall_median) * 1e6:.1f} us"
                    f"  (cpu {per_program(key, cpu_median) * 1e6:.1f} us)",
                )
            )
        rows.append(
            (
                f"per-program ratio {label} (target <= 1.0)",
                f"{ratio(label, wall_min):.2f}x / {ratio(label, wall_median):.2f}x  (cpu {ratio(label, cpu_median):.2f}x)",
            )
        )
        # the same ratio within each round (both states and both tools measured within seconds)
        by_round = []
        for r in range(rounds):
            d = {
                t: wall_min(atn[(t, label)][r : r + 1]) - wall_min(at0[(t, label)][r : r + 1])
                for t in ("bpft", "bpftool")
            }
            by_round.append(d["bpft"] / d["bpftool"] if d["bpftool"] > 0 else float("inf"))
        rows.append(
            (
                f"  per round {label}, min",
                " ".join(f"{x:.2f}x" for x in by_round) + f"  (median {statistics.median(by_round):.2f}x)",
            )
        )
    report(rows)
    print(f"min / median: of {rounds * per_round} runs in each state, over {rounds} rounds that alternate the states;")
    print("cpu: median user+system time, bpft's forked workers included")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_show needs root (it loads programs)")
    app()
