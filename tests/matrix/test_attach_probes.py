"""``prog attach`` of kprobes, kretprobes, fentry and fexit, and their autoattach, in a
kernel-matrix guest: the kernels there allow what this host refuses (it has no kprobe
PMU and is locked down). The checks are ``tests/attach/kmatrix_probes.py``'s, run
in-process: attach through bpft, make the program run, read ``--detail``, detach."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

PROBES = Path(__file__).resolve().parents[1] / "attach" / "kmatrix_probes.py"

pytestmark = pytest.mark.kernel


def _refusal() -> str | None:
    """Why this kernel cannot run the checks, or None."""
    if not os.path.isdir("/sys/bus/event_source/devices/kprobe"):
        return "this kernel has no kprobe PMU (/sys/bus/event_source/devices/kprobe)"
    try:
        with open("/sys/kernel/security/lockdown") as f:
            mode = f.read()
    except OSError:
        mode = ""
    if "[none]" not in mode and mode:
        return f"this kernel is locked down ({mode.strip()}): it refuses fentry/fexit"
    return None


def test_probe_and_trampoline_attachments():
    why = _refusal()
    if why:
        pytest.skip(why)
    spec = importlib.util.spec_from_file_location("kmatrix_probes", PROBES)
    assert spec and spec.loader
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)
    assert probes.main_script() == 0
