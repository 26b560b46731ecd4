"""Shared fixtures: kernel access, bpffs scratch dirs, running bpft and bpftool.

Conventions (see DESIGN.md, "Tests"):
* ``@pytest.mark.kernel`` tests load real programs; they skip when bpf() is
  not permitted. Every program, map and pin they create is removed by the
  fixtures that created it, pass or fail.
* ``@pytest.mark.parity`` tests compare with the ``bpftool`` binary and skip
  when it is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPF_DIR = ROOT / "tests" / "bpf"
BPFFS = "/sys/fs/bpf"


def _bpf_usable() -> str | None:
    """None if bpf() works here, else the reason it doesn't."""
    if os.geteuid() != 0:
        return "needs root"
    try:
        from bpft.kernel import syscall as sc

        sc.prog_get_next_id(0)
    except OSError as e:
        return f"bpf() not permitted: {e.strerror}"
    if not os.path.ismount(BPFFS):
        try:
            from bpft.kernel import fs

            os.makedirs(BPFFS, exist_ok=True)
            fs.mount_fs(BPFFS, "bpf")
        except OSError as e:
            return f"no bpffs at {BPFFS}: {e}"
    return None


_KERNEL_SKIP = None


def pytest_collection_modifyitems(config, items):
    global _KERNEL_SKIP
    need_kernel = [i for i in items if "kernel" in i.keywords or "parity" in i.keywords]
    if need_kernel:
        _KERNEL_SKIP = _bpf_usable()
    for item in items:
        if "kernel" in item.keywords or "parity" in item.keywords:
            if _KERNEL_SKIP:
                item.add_marker(pytest.mark.skip(reason=_KERNEL_SKIP))
        if "parity" in item.keywords and not shutil.which("bpftool"):
            item.add_marker(pytest.mark.skip(reason="bpftool not installed"))


@pytest.fixture
def bpffs_dir():
    """A fresh directory under /sys/fs/bpf, removed (with all pins in it) afterwards."""
    path = Path(BPFFS) / f"bpft_test_{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bpft_cmd() -> list[str]:
    exe = shutil.which("bpft")
    return [exe] if exe else [sys.executable, "-m", "bpft"]


def run_bpft(*args: str, input: bytes | None = None, env: dict | None = None, check: bool = False):
    """Run the installed ``bpft`` with ``args``; returns CompletedProcess with text output."""
    proc = subprocess.run(
        [*bpft_cmd(), *args],
        input=input,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    proc.stdout_text = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    proc.stderr_text = proc.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    if check and proc.returncode != 0:
        raise AssertionError(f"bpft {' '.join(args)} failed ({proc.returncode}): {proc.stderr_text}")
    return proc


def run_bpftool(*args: str, input: bytes | None = None, check: bool = False):
    proc = subprocess.run(["bpftool", *args], input=input, capture_output=True, timeout=120)
    proc.stdout_text = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    proc.stderr_text = proc.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    if check and proc.returncode != 0:
        raise AssertionError(f"bpftool {' '.join(args)} failed ({proc.returncode}): {proc.stderr_text}")
    return proc


@pytest.fixture
def loaded(bpffs_dir):
    """Load an object from tests/bpf with ``bpftool prog loadall``; returns its pin dir.

    ``loaded("xdp_basic.o")`` -> Path of a bpffs dir holding one pin per
    program; removed with everything in it at teardown.
    """
    counter = iter(range(1000))

    def load(obj: str, *extra: str) -> Path:
        path = Path(obj) if os.path.isabs(obj) else BPF_DIR / obj
        pin_dir = bpffs_dir / f"o{next(counter)}"
        run_bpftool("prog", "loadall", str(path), str(pin_dir), *extra, check=True)
        return pin_dir

    return load


def prog_id_of(pin: Path | str) -> int:
    """The id of a pinned program."""
    from bpft.kernel import info, syscall

    fd = syscall.obj_get(str(pin))
    try:
        return info.prog_info(fd).id
    finally:
        os.close(fd)
