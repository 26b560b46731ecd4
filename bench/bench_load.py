"""bpft prog loadall against bpftool, in one run: wall time beyond each tool's start-up.

    python3 bench/bench_load.py [-n N] [OBJ ...]

For each object: the median wall time of ``loadall`` (pins removed between
runs) minus the median of the tool's bare start-up (``bpft --version``,
``bpftool version``), and the ratio bpft/bpftool. Defaults to the CO-RE test
objects (relocated against the kernel's vmlinux BTF) and the README example.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bpft() -> list[str]:
    exe = shutil.which("bpft")
    return [exe] if exe else [sys.executable, "-m", "bpft"]


def _time(cmd: list[str], n: int, cleanup=None) -> float:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
        if cleanup:
            cleanup()
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("objs", nargs="*")
    a = ap.parse_args()
    objs = a.objs or [
        str(p) for p in sorted((ROOT / "tests/bpf").glob("core_*.o")) + [ROOT / "tests/bpf/load_kernel.o"]
    ] + [str(ROOT / "examples/hello.bpf.o")]
    base = Path(f"/sys/fs/bpf/bpft_bench_{uuid.uuid4().hex[:8]}")
    base.mkdir()
    try:
        s_bpft = _time([*_bpft(), "--version"], a.n)
        s_tool = _time(["bpftool", "version"], a.n)
        print(f"start-up: bpft {s_bpft * 1e3:.1f} ms, bpftool {s_tool * 1e3:.1f} ms")
        print(f"{'object':40} {'bpftool':>9} {'bpft':>9} {'ratio':>6}")
        for obj in objs:
            pin = base / "p"

            def clean(pin=pin):
                shutil.rmtree(pin, ignore_errors=True)

            ok = subprocess.run(["bpftool", "prog", "loadall", obj, str(pin)], capture_output=True).returncode == 0
            clean()
            if not ok:
                print(f"{Path(obj).name:40} (bpftool cannot load it here)")
                continue
            t_tool = _time(["bpftool", "prog", "loadall", obj, str(pin)], a.n, clean) - s_tool
            t_bpft = _time([*_bpft(), "prog", "loadall", obj, str(pin)], a.n, clean) - s_bpft
            print(f"{Path(obj).name:40} {t_tool * 1e3:7.1f}ms {t_bpft * 1e3:7.1f}ms {t_bpft / max(t_tool, 1e-6):6.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
