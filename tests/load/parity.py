"""Load an object with bpftool and with bpft, and compare what the kernel holds.

For each program both pinned (``loadall``), compares ``bpftool prog dump
xlated`` (map ids masked) and ``bpftool -j prog show`` fields (ids, times and
the BTF object id aside; map_ids by count). Used by the parity tests and
runnable by hand: ``python3 tests/load/parity.py OBJ...``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid

_ID = re.compile(r"(map\[id:|id )[0-9]+")


def _bpft() -> list[str]:
    # the bpft beside this interpreter (a venv's), else the one on PATH
    beside = os.path.join(os.path.dirname(sys.executable), "bpft")
    exe = beside if os.access(beside, os.X_OK) else shutil.which("bpft")
    return [exe] if exe else [sys.executable, "-m", "bpft"]


def xlated(pin: str) -> str:
    out = subprocess.run(["bpftool", "prog", "dump", "xlated", "pinned", pin], capture_output=True, text=True).stdout
    return _ID.sub(r"\1X", out)


def show(pin: str) -> dict:
    out = subprocess.run(["bpftool", "-j", "prog", "show", "pinned", pin], capture_output=True, text=True).stdout
    d = json.loads(out)
    for k in ("id", "loaded_at", "btf_id", "pids"):
        d.pop(k, None)
    d["map_ids"] = len(d.get("map_ids", []))
    return d


def compare(obj: str, base: str, *extra: str) -> tuple[int, int, list[str]]:
    """Returns (bpftool rc, bpft rc, differences); ``base`` is a bpffs dir, cleaned by the caller."""
    a, b = os.path.join(base, "bpftool"), os.path.join(base, "bpft")
    ra = subprocess.run(["bpftool", "prog", "loadall", obj, a, *extra], capture_output=True, text=True)
    rb = subprocess.run([*_bpft(), "prog", "loadall", obj, b, *extra], capture_output=True, text=True)
    diffs = []
    pa = sorted(os.listdir(a)) if os.path.isdir(a) else []
    pb = sorted(os.listdir(b)) if os.path.isdir(b) else []
    if pa != pb:
        diffs.append(f"pins differ: {pa} vs {pb}")
    for p in pa:
        if p not in pb:
            continue
        xa, xb = xlated(os.path.join(a, p)), xlated(os.path.join(b, p))
        if not xa.strip():
            diffs.append(f"{p}: empty xlated dump")
        if xa != xb:
            diffs.append(f"{p}: xlated differs")
        sa, sb = show(os.path.join(a, p)), show(os.path.join(b, p))
        if sa != sb:
            diffs.append(f"{p}: show differs: {sa} vs {sb}")
    if ra.returncode != 0 or rb.returncode != 0:
        if (ra.returncode == 0) != (rb.returncode == 0):
            diffs.append(
                f"rc differs: bpftool {ra.returncode} ({ra.stderr[-300:]!r}) bpft {rb.returncode} ({rb.stderr[-300:]!r})"
            )
    return ra.returncode, rb.returncode, diffs


def main(objs: list[str]) -> int:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from conftest import byname_pin_names, byname_pins_removed

    bad = 0
    for obj in objs:
        base = f"/sys/fs/bpf/bpft_parity_{uuid.uuid4().hex[:8]}"
        os.mkdir(base)
        try:
            # maps pinned by name land at /sys/fs/bpf/<name>: removed too
            with byname_pins_removed(byname_pin_names(obj)):
                ra, rb, diffs = compare(obj, base)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        status = "OK" if not diffs else "DIFF"
        bad += bool(diffs)
        print(f"{status} {obj}: bpftool rc {ra}, bpft rc {rb}" + "".join(f"\n   {d}" for d in diffs))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
