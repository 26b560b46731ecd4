"""Mutated objects through the loader: a clean error or a clean load, never a traceback,
and nothing left pinned after a failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import BPF_DIR, ROOT, byname_pins_removed, run_bpft
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEEDS = [ROOT / "examples/hello.bpf.o", BPF_DIR / "load_subprogs.o", BPF_DIR / "load_maps.o"]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)).read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "byte", "word", "truncate"]))
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif op == "word" and pos + 4 <= len(data):
            data[pos : pos + 4] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
        elif op == "truncate":
            del data[max(pos, 1) :]
    return bytes(data)


@pytest.mark.kernel
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(blob=mutated())
def test_mutated_objects_fail_cleanly(blob, tmp_path_factory):
    obj, pin_dir = _object_file(blob, tmp_path_factory)
    # a mutation can turn a map's pinning on: remove any pin it makes at the top of bpffs
    with byname_pins_removed(None):
        _load_mutated(obj, pin_dir)


def _object_file(blob: bytes, tmp_path_factory) -> tuple[Path, Path]:
    """The mutated object written to a fresh directory, and a pin path of its own."""
    d = tmp_path_factory.mktemp("fuzz")
    obj = d / "m.o"
    obj.write_bytes(blob)
    return obj, Path("/sys/fs/bpf") / f"bpft_fuzz_{os.getpid()}_{d.name}"


def _load_mutated(obj: Path, pin_dir: Path) -> None:
    try:
        r = run_bpft("prog", "loadall", str(obj), str(pin_dir))
        assert "Traceback" not in r.stderr_text, r.stderr_text[-2000:]
        assert r.returncode in (0, 255), r.stderr_text[-2000:]
        if r.returncode:
            assert r.stderr_text.rstrip().splitlines()[-1].startswith("Error: ")
            assert not pin_dir.exists() or not os.listdir(pin_dir)
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)


@pytest.mark.kernel
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(blob=mutated())
def test_mutated_objects_through_a_generated_loader(blob, tmp_path_factory):
    """``-L prog load``: libbpf's exit statuses, never a traceback, nothing pinned."""
    obj, pin = _object_file(blob, tmp_path_factory)
    with byname_pins_removed(None):
        r = run_bpft("-L", "prog", "load", str(obj), str(pin))
    assert "Traceback" not in r.stderr_text, r.stderr_text[-2000:]
    assert not pin.exists()
    if r.returncode and "Error: " in r.stderr_text:
        assert r.stderr_text.rstrip().splitlines()[-1].startswith("Error: ")
