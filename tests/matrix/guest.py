"""Helpers of the kernel-matrix suite: bpft in-process against bpftool in the same kernel.

The suite runs in one Python process inside each guest kernel (and on the host,
as part of the ordinary test run): bpft is called through :mod:`inproc`, bpftool
(C, quick to start) as a subprocess.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import inproc
import pytest

ROOT = Path(__file__).resolve().parents[2]
BPF_DIR = ROOT / "tests" / "bpf"

_ID = re.compile(r"(map\[id:|id )[0-9]+")
_DURATION = re.compile(r"(duration(?: \(average\))?: )\d+ns|(\"duration\": ?)\d+")


class Output:
    """One command's status and text, from either tool."""

    def __init__(self, status: int, stdout: str, stderr: str):
        self.status, self.stdout, self.stderr = status, stdout, stderr

    def __repr__(self) -> str:
        return f"Output({self.status}, {self.stdout[-300:]!r}, {self.stderr[-300:]!r})"


def bpftool(*words: str, input: bytes | None = None) -> Output:
    proc = subprocess.run(["bpftool", *words], input=input, capture_output=True, timeout=120)
    return Output(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


def bpft(*words: str) -> Output:
    r = inproc.run(words)
    assert "Traceback" not in r.stderr, r.stderr
    return Output(r.status, r.stdout, r.stderr)


def release() -> tuple[int, int]:
    major, minor = os.uname().release.split("-")[0].split(".")[:2]
    return int(major), int(minor)


def requires(version: str, what: str) -> None:
    """Skip unless the running kernel is ``version`` or newer: ``requires 5.13: BTF_KIND_FLOAT``."""
    want = tuple(int(x) for x in version.split("."))
    if release() < want:
        pytest.skip(f"requires {version}: {what}")


def lockdown() -> str | None:
    try:
        text = Path("/sys/kernel/security/lockdown").read_text()
    except OSError:
        return None
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m and m.group(1) != "none" else None


def tracing_allowed() -> None:
    """Skip where fentry/fexit cannot load (kernels before 5.5, lockdown, a hypervisor
    without trampolines), with the reason."""
    requires("5.5", "fentry/fexit (BPF trampolines)")
    mode = lockdown()
    if mode:
        pytest.skip(f"needs fentry/fexit, which lockdown={mode} refuses here")
    refusal = _tracing_refusal()
    if refusal:
        pytest.skip(f"needs fentry/fexit, which this kernel refuses: {refusal}")


@functools.cache
def _tracing_refusal() -> str | None:
    """bpftool's error loading matrix_trace.o here, or None if it loads."""
    pins = Path("/sys/fs/bpf") / f"bpft_test_{os.getpid()}_trace_probe"
    try:
        r = bpftool("prog", "loadall", str(BPF_DIR / "matrix_trace.o"), str(pins))
    finally:
        shutil.rmtree(pins, ignore_errors=True)
    if r.status == 0:
        return None
    lines = [x for x in r.stderr.splitlines() if "BPF program load failed" in x or "failed to" in x]
    return lines[0].removeprefix("libbpf: ") if lines else r.stderr.strip()[:200]


def same(*words: str, json_mode: bool | None = None) -> Output:
    """bpftool and bpft with the same words: the same status, stdout and stderr."""
    theirs, ours = bpftool(*words), bpft(*words)
    assert ours.status == theirs.status, (words, ours, theirs)
    assert ours.stderr == re.sub(r"\bbpftool\b(?![\w/])", "bpft", theirs.stderr), words
    a, b = _DURATION.sub("N", ours.stdout), _DURATION.sub("N", theirs.stdout)
    if json_mode is None:
        json_mode = "-j" in words or "-p" in words
    if json_mode and b.strip():
        assert json.loads(a) == json.loads(b), words
    else:
        assert a == b, words
    return ours


def xlated(pin: str) -> str:
    return _ID.sub(r"\1X", bpftool("prog", "dump", "xlated", "pinned", pin).stdout)


def show_fields(pin: str) -> dict:
    d = json.loads(bpftool("-j", "prog", "show", "pinned", pin).stdout)
    for k in ("id", "loaded_at", "btf_id", "pids"):
        d.pop(k, None)
    d["map_ids"] = len(d.get("map_ids", []))
    return d


def loads_like_bpftool(obj: str, base: Path, *extra: str) -> tuple[int, list[str]]:
    """loadall with both tools into ``base``/{bpftool,bpft}: (bpftool's status, differences).

    The same decision (both load or neither), the same pins, and for each program the
    same xlated code and ``prog show`` fields (ids and times aside)."""
    a, b = base / "bpftool", base / "bpft"
    ra = bpftool("prog", "loadall", obj, str(a), *extra)
    rb = bpft("prog", "loadall", obj, str(b), *extra)
    diffs = []
    if (ra.status == 0) != (rb.status == 0):
        diffs.append(f"decision differs: bpftool {ra} bpft {rb}")
    pa = sorted(os.listdir(a)) if a.is_dir() else []
    pb = sorted(os.listdir(b)) if b.is_dir() else []
    if pa != pb:
        diffs.append(f"pins differ: {pa} vs {pb}")
    for p in set(pa) & set(pb):
        xa, xb = xlated(str(a / p)), xlated(str(b / p))
        if not xa.strip() or xa != xb:
            diffs.append(f"{p}: xlated differs")
        sa, sb = show_fields(str(a / p)), show_fields(str(b / p))
        if sa != sb:
            diffs.append(f"{p}: show differs: {sa} vs {sb}")
    return ra.status, diffs


def libxdp_dir() -> Path | None:
    """libxdp1's objects: $BPFT_LIBXDP_DIR (kernel.sh fetch puts them in its cache)."""
    d = os.environ.get("BPFT_LIBXDP_DIR")
    return Path(d) if d and Path(d).is_dir() else None


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


# what differs between two runs of the same loader: kernel addresses, ids, fds, timings
_LOADER_RUN_NOISE = (
    (re.compile(r"0x[0-9a-f]{8,}"), "ADDR"),
    (re.compile(r"\b(map_id|id|fd)=\d+"), r"\1=N"),
    (re.compile(r"verification time \d+ usec"), "verification time N usec"),
)


def _unnoised(text: str) -> str:
    for pattern, replacement in _LOADER_RUN_NOISE:
        text = pattern.sub(replacement, text)
    return text


def loader_like_bpftool(obj: str, *flags: str) -> list[str]:
    """``-L prog load`` with both tools: the differences (none expected).

    The same status; the same stdout (with ``-d`` the loader's instructions) and
    stderr (libbpf's lines, the ``gen:`` ones among them, the run's result and the
    verifier's log), masking only addresses, ids, fds and timings; and nothing left
    behind by either: no pin in the pin path, no program of the object loaded."""
    pin = Path("/sys/fs/bpf") / f"bpft_loader_{os.getpid()}"
    diffs = []
    for tool in (bpftool, bpft):
        before = object_ids()
        r = tool(*flags, "-L", "prog", "load", obj, str(pin))
        if tool is bpftool:
            theirs = r
        else:
            ours = r
        if pin.exists():
            diffs.append(f"{tool.__name__} pinned {pin}")
            subprocess.run(["rm", "-rf", str(pin)])
        progs, maps, links = settled(before, timeout=30)
        if progs or maps or links:
            diffs.append(f"{tool.__name__} left programs {sorted(progs)}, maps {sorted(maps)}, links {sorted(links)}")
    if ours.status != theirs.status:
        diffs.append(f"status: bpftool {theirs.status}, bpft {ours.status}")
    gen_a = [line for line in theirs.stderr.splitlines() if line.startswith("libbpf: gen:")]
    gen_b = [line for line in ours.stderr.splitlines() if line.startswith("libbpf: gen:")]
    if gen_a != gen_b:
        diffs.append(f"gen: lines differ: {gen_a} vs {gen_b}")
    if _unnoised(ours.stdout) != _unnoised(theirs.stdout):
        diffs.append("stdout differs")
    if _unnoised(ours.stderr) != _unnoised(theirs.stderr):
        diffs.append("stderr differs")
    return diffs


class _NextIdAttr(ctypes.Structure):
    _fields_ = [("start_id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


def ids(cmd: int) -> set[int]:
    """Every id of one kind of object (``cmd``: PROG_/MAP_/LINK_GET_NEXT_ID). Its own
    attr: bpft's id helpers share one, and a test's thread may walk ids while bpft, in
    the main thread, opens an object by id."""
    from bpft.kernel import syscall as sc

    out, attr = set(), _NextIdAttr()
    while True:
        try:
            sc.bpf(cmd, attr)
        except OSError:
            return out
        out.add(attr.next_id)
        attr.start_id, attr.next_id = attr.next_id, 0


def object_ids() -> tuple[set[int], set[int], set[int]]:
    """The ids of every program, map and link in the kernel."""
    from bpft.kernel import syscall as sc

    return ids(sc.PROG_GET_NEXT_ID), ids(sc.MAP_GET_NEXT_ID), ids(sc.LINK_GET_NEXT_ID)


def settled(before: tuple[set[int], set[int], set[int]], timeout: float = 60.0) -> tuple:
    """The program, map and link ids made since ``before`` that are still there, once
    they are gone or ``timeout`` passed: the kernel frees objects after the last fd
    closes, from a work queue (seconds under emulation). Ids of ``before`` may go
    meanwhile (objects an earlier test closed, freed late); that is no leak."""
    deadline = time.monotonic() + timeout
    while True:
        left = tuple(now - then for now, then in zip(object_ids(), before, strict=True))
        if not any(left) or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _loaded_prog_names() -> set[tuple[int, str]]:
    """(id, name) of every program in the kernel."""
    from bpft.kernel import info, syscall

    out = set()
    for prog_id in ids(syscall.PROG_GET_NEXT_ID):
        try:
            fd = syscall.prog_get_fd_by_id(prog_id)
        except OSError:
            continue
        try:
            out.add((prog_id, info.prog_info(fd).name.decode(errors="replace")))
        except OSError:
            pass
        finally:
            os.close(fd)
    return out
