"""Shared helpers for the benchmarks: timing whole commands, loading throwaway programs.

Benchmarks compare bpft with bpftool in the same run and report ratios, so
machine speed cancels out. Wall time is measured over repeated runs of the
whole command (fork + exec + work), taking the median.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BPFFS = Path("/sys/fs/bpf")


def bpft_exe() -> list[str]:
    """The ``bpft`` console script beside the real interpreter.

    Not ``which bpft``: under pyenv that is a shell shim that costs more than
    bpft's own start-up.
    """
    exe = os.path.join(os.path.dirname(sys.executable), "bpft")
    if os.access(exe, os.X_OK):
        return [exe]
    found = shutil.which("bpft")
    return [found] if found else [python_exe(), "-m", "bpft"]


def python_exe() -> str:
    """The real interpreter (not a pyenv shim script), for the `python -c pass` floor."""
    return os.path.realpath(sys.executable)


def run_once(cmd: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """(wall, user + system CPU) seconds of one run of ``cmd`` (stdout discarded), and its exit status.

    The CPU time counts the command's waited-for children too: work a
    command hands to forked workers is in it, so a CPU ratio shows what
    parallelism costs, and a wall ratio far from the CPU ratio flags a
    disturbed run.
    """
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False).returncode
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), rc


def sample(cmds: dict, runs: int, warmup: int = 1) -> dict[str, list[tuple[float, float]]]:
    """``runs`` (wall, CPU) seconds of each named command, its runs interleaved with the others'
    (round by round), so a slow spell of the machine hits every command alike."""
    for _ in range(warmup):
        for cmd in cmds.values():
            run_once(cmd)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            samples[name].append(run_once(cmd)[:2])
    return samples


def measure(cmds: dict[str, list[str]], runs: int, warmup: int = 1) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each named command over :func:`sample`'s interleaved runs."""
    return {
        name: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
        for name, got in sample(cmds, runs, warmup).items()
    }


def load_socket_filters(count: int, pin_dir: Path, insns: bytes | None = None) -> list[Path]:
    """Load ``count`` small socket filters, pin each under ``pin_dir``, close the fds."""
    from bpft.kernel import syscall as sc

    # r0 = 0; exit
    code = insns or bytes.fromhex("b7000000000000009500000000000000")
    pin_dir.mkdir(parents=True, exist_ok=True)
    pins = []
    for i in range(count):
        fd = sc.prog_load_simple(1, code, name=f"bench_{i}")
        try:
            path = pin_dir / f"p{i}"
            sc.obj_pin(fd, str(path))
            pins.append(path)
        finally:
            os.close(fd)
    return pins


def remove_dir(pin_dir: Path) -> None:
    shutil.rmtree(pin_dir, ignore_errors=True)


def report(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
