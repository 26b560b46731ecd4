"""Benchmark `prog show`: start-up floor and per-program cost, bpft against bpftool.

    python bench/bench_show.py [--programs 2000] [--runs 70] [--rounds 14]

Targets (issue #2):
* start-up: `bpft prog show` with no programs loaded within 2.0x the wall time
  of `python -I -c pass`;
* scale: per-program cost ((wall at N) - (wall at 0)) / N no more than
  bpftool's, plain and -j.

"No programs loaded" means none of ours: programs other processes hold are
there in both measurements and cancel out of the per-program figures.

Each per-program figure is estimated three ways: from the fastest run of each
command in each state (min), from the medians, and "in floors": each run's
wall over the wall of the `python -I -c pass` run made just before it, medians
per state. The last one is for VMs whose speed swings within seconds: a slow
spell during one state stretches bpft's ~60 ms start-up by as much as its
whole per-program signal (2,000 programs add ~12 ms), and bpftool's ~1 ms
start-up by nothing. Measured in floors, a spell that slows every process
alike scales out; the ratio of the two tools' per-program costs is then the
same quantity, with less noise.
"""

from __future__ import annotations

import os
import statistics
import sys
import uuid

import typer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BPFFS, bpft_exe, load_socket_filters, remove_dir, report, sample  # noqa: E402

app = typer.Typer(add_completion=False)


@app.command()
def main(
    programs: int = typer.Option(2000, help="programs to load for the scale test"),
    runs: int = typer.Option(70, help="runs of each command in each state, spread over the rounds"),
    rounds: int = typer.Option(14, help="rounds, each measuring both states"),
) -> None:
    bpft = bpft_exe()
    variants = {"plain": [], "-j": ["-j"]}

    floor_key = ("python", "")
    # the floor is this interpreter (a venv's, like bpft's console script) in isolated mode
    cmds = {floor_key: [sys.executable, "-I", "-c", "pass"]}
    for label, opt in variants.items():
        cmds[("bpft", label)] = [*bpft, *opt, "prog", "show"]
        cmds[("bpftool", label)] = ["bpftool", *opt, "prog", "show"]

    # The machine's speed drifts by tens of percent over a minute, so the two
    # states alternate: each round runs every command with none of our programs
    # loaded, loads them, runs them again, and unloads them.
    per_round = max(1, -(-runs // rounds))
    at0: dict = {}  # command -> one list of (wall, cpu) samples per round
    atn: dict = {}
    for _ in range(rounds):
        for key, got in sample(cmds, per_round).items():
            at0.setdefault(key, []).append(got)
        pin_dir = BPFFS / f"bpft_bench_{uuid.uuid4().hex[:8]}"
        try:
            load_socket_filters(programs, pin_dir)
            for key, got in sample(cmds, per_round).items():
                atn.setdefault(key, []).append(got)
        finally:
            remove_dir(pin_dir)

    def walls(samples: list) -> list[float]:
        return [w for got in samples for w, _ in got]

    def wall_min(samples: list) -> float:
        return min(walls(samples))

    def wall_median(samples: list) -> float:
        return statistics.median(walls(samples))

    def cpu_median(samples: list) -> float:
        return statistics.median([c for got in samples for _, c in got])

    def per_program(key: tuple, pick) -> float:
        return (pick(atn[key]) - pick(at0[key])) / programs

    def in_floors(state: dict, key: tuple) -> float:
        """The median of each run's wall over the wall of the `python -I -c pass` run beside it."""
        return statistics.median(w / f for w, f in zip(walls(state[key]), walls(state[floor_key]), strict=True))

    def ratio(label: str, per) -> float:
        theirs = per(("bpftool", label))
        return per(("bpft", label)) / theirs if theirs > 0 else float("inf")

    def normalized(key: tuple) -> float:
        return in_floors(atn, key) - in_floors(at0, key)

    floor, start = at0[floor_key], at0[("bpft", "plain")]
    rows = [
        ("python -I -c pass (min / median)", f"{wall_min(floor) * 1e3:.1f} / {wall_median(floor) * 1e3:.1f} ms"),
        (
            f"python -I -c pass with {programs} programs (min / median)",
            f"{wall_min(atn[floor_key]) * 1e3:.1f} / {wall_median(atn[floor_key]) * 1e3:.1f} ms",
        ),
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
                f"per-program ratio {label}, in floors (target <= 1.0)",
                f"{ratio(label, normalized):.2f}x",
            )
        )
        rows.append(
            (
                "  raw: min / median / cpu median",
                f"{ratio(label, lambda k: per_program(k, wall_min)):.2f}x"
                f" / {ratio(label, lambda k: per_program(k, wall_median)):.2f}x"
                f" / {ratio(label, lambda k: per_program(k, cpu_median)):.2f}x",
            )
        )
    report(rows)
    print(f"min / median: of {rounds * per_round} runs in each state, over {rounds} rounds that alternate the states;")
    print("cpu: median user+system time, bpft's forked workers included;")
    print(
        "in floors: each run's wall over the `python -I -c pass` run beside it, medians per state (see bench/README.md)"
    )


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_show needs root (it loads programs)")
    app()
