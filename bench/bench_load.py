"""bpft prog loadall against bpftool, in one run: wall time beyond each tool's start-up.

    python3 bench/bench_load.py [-n N] [--cold] [--use-loader] [--baseline SRC] [OBJ ...]

For each object: the median wall time of ``loadall`` (pins removed between
runs) minus the median of the tool's bare start-up (``bpft --version``,
``bpftool version``), and the ratio bpft/bpftool (issue #4: at most 2.0 for
real CO-RE objects). The four commands run interleaved, round after round, so
a machine that gets busier half-way slows all of them alike. Defaults to the
CO-RE test objects (relocated against the kernel's vmlinux BTF), the kfunc /
ksym / tp_btf object and the README example.

Warm by default, as a user meets bpft on the second load after boot: one
untimed run of each command first, which leaves the vmlinux name index cached
(``bpft_load.vmlinux.cache_dir()``, normally /run/bpft) and Python's bytecode
compiled (PYTHONDONTWRITEBYTECODE is dropped from the children's environment;
an installed wheel ships compiled bytecode). ``--cold`` gives every bpft run an
empty cache directory instead: the first load after boot.

``--use-loader`` times ``-L prog load`` instead (a generated loader program, run once;
nothing is pinned).

``--baseline SRC`` also times another revision of the load plugin in the same
run, e.g. ``git archive REV plugins/load/src | tar -x -C /tmp/rev`` then
``--baseline /tmp/rev/plugins/load/src`` (it is put first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bpft_exe, run_once  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class _Tool:
    """One implementation: its start-up command, its loadall, its environment."""

    def __init__(self, name: str, start: list[str], load: list[str], env: dict, cold: bool = False):
        self.name, self.start, self.load, self.env, self.cold = name, start, load, env, cold
        self.t_start: list[tuple[float, float, int]] = []
        self.t_load: list[tuple[float, float, int]] = []

    def round(self, obj: str, pin: Path) -> None:
        self.t_start.append(run_once(self.start, self.env))
        env = self.env
        cdir = None
        if self.cold:
            cdir = tempfile.mkdtemp(prefix="bpft_bench_cache_")
            env = {**env, "BPFT_CACHE_DIR": cdir}
        try:
            self.t_load.append(run_once([*self.load, obj, str(pin)], env))
        finally:
            shutil.rmtree(pin, ignore_errors=True)
            if cdir:
                shutil.rmtree(cdir, ignore_errors=True)

    def failures(self) -> int:
        return sum(1 for t in self.t_load if t[2])

    def beyond_start(self, what: int = 0) -> float:
        """Median loadall minus median start-up: wall time (what=0) or CPU time (what=1)."""
        return statistics.median(t[what] for t in self.t_load) - statistics.median(t[what] for t in self.t_start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=21, help="timed rounds per object")
    ap.add_argument("--cold", action="store_true", help="an empty vmlinux index cache for every bpft run")
    ap.add_argument("--baseline", metavar="SRC", help="another bpft_load source tree to time in the same run")
    ap.add_argument("--use-loader", action="store_true", help="time -L prog load (a generated loader) instead")
    ap.add_argument("objs", nargs="*")
    a = ap.parse_args()
    objs = a.objs or [
        *(str(p) for p in sorted((ROOT / "tests/bpf").glob("core_*.o"))),
        str(ROOT / "tests/bpf/load_kernel.o"),
        str(ROOT / "examples/hello.bpf.o"),
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    bpft = bpft_exe()
    verb = ["-L", "prog", "load"] if a.use_loader else ["prog", "loadall"]
    tools = [_Tool("bpftool", ["bpftool", "version"], ["bpftool", *verb], env)]
    if a.baseline:
        src = os.path.abspath(a.baseline)
        benv = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))}
        tools.append(_Tool("baseline", [*bpft, "--version"], [*bpft, *verb], benv, a.cold))
    tools.append(_Tool("bpft", [*bpft, "--version"], [*bpft, *verb], env, a.cold))

    from bpft_load.vmlinux import cache_dir

    if a.cold:
        print("cold: every bpft run starts with an empty vmlinux index cache (BPFT_CACHE_DIR=<new dir>)")
    else:
        print(f"warm: vmlinux index cached in {cache_dir()}, bytecode compiled, one untimed run of each command first")
    what = " ".join(verb)
    print(f"{a.n} interleaved rounds; ms = median wall time of {what} minus median start-up of the same tool;")
    print("ratios of those wall times, and (cpu) of user+system CPU times, a check on a busy machine")
    base = Path(f"/sys/fs/bpf/bpft_bench_{uuid.uuid4().hex[:8]}")
    base.mkdir()
    pin = base / "p"
    try:
        cols = "".join(f" {t.name:>9}" for t in tools)
        ratios = "".join(f" {t.name + '/tool':>14} {'(cpu)':>6}" for t in tools[1:])
        print(f"{'object':24}{cols}{ratios}")
        starts: dict[str, list[tuple[float, float, int]]] = {t.name: [] for t in tools}
        for obj in objs:
            ok = subprocess.run(["bpftool", *verb, obj, str(pin)], capture_output=True).returncode == 0
            shutil.rmtree(pin, ignore_errors=True)
            if not ok:
                print(f"{Path(obj).name:24} (bpftool cannot load it here)")
                continue
            for t in tools:
                t.t_start, t.t_load = [], []
                if not t.cold:
                    t.round(obj, pin)  # warm-up, not counted
                    t.t_start, t.t_load = [], []
            for _ in range(a.n):
                for t in tools:
                    t.round(obj, pin)
            tool_wall, tool_cpu = tools[0].beyond_start(0), tools[0].beyond_start(1)
            line = f"{Path(obj).name:24}" + "".join(f" {t.beyond_start() * 1e3:7.1f}ms" for t in tools)
            line += "".join(
                f" {t.beyond_start(0) / max(tool_wall, 1e-6):14.2f} {t.beyond_start(1) / max(tool_cpu, 1e-6):6.2f}"
                for t in tools[1:]
            )
            failed = [f"{t.name} failed {t.failures()} of {len(t.t_load)} runs" for t in tools if t.failures()]
            print(line + (f"  ({'; '.join(failed)}: figures not valid)" if failed else ""), flush=True)
            for t in tools:
                starts[t.name] += t.t_start
        print(
            "start-up: "
            + ", ".join(f"{k} {statistics.median(x[0] for x in v) * 1e3:.1f} ms" for k, v in starts.items() if v)
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
