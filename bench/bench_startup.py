"""Start-up of bpft against the bare interpreter it runs on (issue #14).

    python bench/bench_startup.py [--runs 60]

The floor is ``python -I -c pass`` through the same interpreter as bpft's console script
(``sys.executable``, the venv's: not a pyenv shim, which costs more than bpft's whole
start-up, and not the resolved binary, which skips the venv's own start-up). Each bpft
command is timed through the ``bpft`` script beside it; runs are interleaved round by
round with the floor's, and each ratio is given for the fastest runs (min) and the
medians. Targets: ``bpft prog show`` <= 4x the floor, aiming at 3x.

``bpft prog show`` lists whatever programs are loaded: other processes' programs add
their cost, so the count is printed beside the figures, and ``bpft prog show id N`` of
one program this script loads (and holds) is the start-up figure that does not move
with them. ``cold cache`` runs with
``BPFT_NO_CACHE=1``, i.e. without the plugin cache (pluggy and every plugin's hook
module imported, every hook asked), as every run was before the cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bpft_exe, report, run_once  # noqa: E402


def load_one() -> tuple[int, int]:
    """(fd, id) of a socket filter loaded for the run (unloaded when the fd closes)."""
    from bpft.kernel import info, syscall

    fd = syscall.prog_load_simple(1, bytes.fromhex("b7000000000000009500000000000000"), name="bench_startup")
    return fd, info.prog_info(fd).id


def count_programs() -> int:
    from bpft.progs import iter_prog_ids

    return sum(1 for _ in iter_prog_ids())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="runs of each command")
    args = parser.parse_args()
    bpft = bpft_exe()
    fd, prog_id = load_one()
    try:
        measure(bpft, prog_id, args.runs)
    finally:
        os.close(fd)


def measure(bpft: list[str], prog_id: int, runs: int) -> None:
    cold = {**os.environ, "BPFT_NO_CACHE": "1"}
    cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "python -I -c pass": ([sys.executable, "-I", "-c", "pass"], None),
        f"bpft prog show id {prog_id}": ([*bpft, "prog", "show", "id", str(prog_id)], None),
        "bpft prog show": ([*bpft, "prog", "show"], None),
        "bpft -j prog show": ([*bpft, "-j", "prog", "show"], None),
        "bpft prog help": ([*bpft, "prog", "help"], None),
        "bpft version": ([*bpft, "version"], None),
        "bpft completion query (prog sh)": ([*bpft, "completion", "query", "--", "prog", "sh"], None),
        "bpft prog show, cold cache": ([*bpft, "prog", "show"], cold),
    }
    for cmd, env in cmds.values():  # warm up: byte-compiled modules, the plugin cache
        run_once(cmd, env)
    walls: dict[str, list[float]] = {name: [] for name in cmds}
    programs = count_programs()
    for _ in range(runs):
        for name, (cmd, env) in cmds.items():
            walls[name].append(run_once(cmd, env)[0])
    programs = max(programs, count_programs())
    floor = walls["python -I -c pass"]
    rows = [("interpreter", sys.executable), ("programs loaded (by anyone)", str(programs))]
    for name, got in walls.items():
        ratio = (
            ""
            if got is floor
            else f"  = {min(got) / min(floor):.2f}x / {statistics.median(got) / statistics.median(floor):.2f}x"
        )
        rows.append((f"{name} (min / median)", f"{min(got) * 1e3:.1f} / {statistics.median(got) * 1e3:.1f} ms{ratio}"))
    report(rows)


if __name__ == "__main__":
    main()
