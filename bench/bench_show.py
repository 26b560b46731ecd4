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
import statistics
import sys
import uuid

import typer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BPFFS, bpft_exe, load_socket_filters, measure, python_exe, remove_dir, report  # noqa: E402

app = typer.Typer(add_completion=False)


@app.command()
def main(programs: int = typer.Option(2000, help="programs to load for the scale test"), runs: int = 15) -> None:
    bpft = bpft_exe()
    variants = {"plain": [], "-j": ["-j"]}

    def commands() -> dict:
        cmds = {("python", ""): [python_exe(), "-c", "pass"]}
        for label, opt in variants.items():
            cmds[("bpft", label)] = [*bpft, *opt, "prog", "show"]
            cmds[("bpftool", label)] = ["bpftool", *opt, "prog", "show"]
        return cmds

    # The machine's speed drifts by tens of percent over a minute, so the two
    # states alternate: each round measures every command with none of our
    # programs loaded, loads them, measures again, and unloads them.
    rounds = max(3, runs // 3)
    samples0: dict = {}
    samplesn: dict = {}
    for _ in range(rounds):
        for key, got in measure(commands(), 3).items():
            samples0.setdefault(key, []).append(got)
        pin_dir = BPFFS / f"bpft_bench_{uuid.uuid4().hex[:8]}"
        try:
            load_socket_filters(programs, pin_dir)
            for key, got in measure({k: v for k, v in commands().items() if k[0] != "python"}, 3).items():
                samplesn.setdefault(key, []).append(got)
        finally:
            remove_dir(pin_dir)

    def medians(samples: dict) -> dict:
        return {k: tuple(statistics.median(x[i] for x in v) for i in (0, 1)) for k, v in samples.items()}

    at0, atn = medians(samples0), medians(samplesn)
    floor = at0[("python", "")][0]
    rows = [
        ("python3 -c pass", f"{floor * 1e3:.1f} ms"),
        ("bpft prog show (no programs)", f"{at0[('bpft', 'plain')][0] * 1e3:.1f} ms"),
        ("start-up ratio (target <= 2.0)", f"{at0[('bpft', 'plain')][0] / floor:.2f}x"),
    ]
    for label in variants:
        per = {
            tool: [(atn[(tool, label)][k] - at0[(tool, label)][k]) / programs for k in (0, 1)]
            for tool in ("bpft", "bpftool")
        }
        for tool in ("bpft", "bpftool"):
            rows.append(
                (f"per program, {label}: {tool}", f"{per[tool][0] * 1e6:.1f} us  (cpu {per[tool][1] * 1e6:.1f} us)")
            )
        ratio = per["bpft"][0] / per["bpftool"][0] if per["bpftool"][0] > 0 else float("inf")
        cpu_ratio = per["bpft"][1] / per["bpftool"][1] if per["bpftool"][1] > 0 else float("inf")
        rows.append((f"per-program ratio {label} (target <= 1.0)", f"{ratio:.2f}x  (cpu {cpu_ratio:.2f}x)"))
        # the same ratio within each round (both states and both tools measured within seconds)
        by_round = []
        for r in range(rounds):
            d = {t: samplesn[(t, label)][r][0] - samples0[(t, label)][r][0] for t in ("bpft", "bpftool")}
            by_round.append(d["bpft"] / d["bpftool"] if d["bpftool"] > 0 else float("inf"))
        rows.append(
            (
                f"  per round {label}",
                " ".join(f"{x:.2f}x" for x in by_round) + f"  (median {statistics.median(by_round):.2f}x)",
            )
        )
    report(rows)
    print(f"wall: median over {rounds} rounds, each measuring without and with the programs; cpu: user+system")
    print("time, bpft's forked workers included")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_show needs root (it loads programs)")
    app()
