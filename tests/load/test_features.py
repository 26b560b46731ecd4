"""Kernel feature probes and the names they give what an old kernel lacks."""

from __future__ import annotations

import os

import pytest

from bpft.kernel.uapi import PROG_TYPE
from bpft_load import features as F


def test_requirement_names_release_and_kind():
    assert F.requirement(F.Feature.BTF_FLOAT) == "requires 5.13: BTF_KIND_FLOAT"
    assert F.requirement(F.Feature.BTF_ENUM64) == "requires 6.0: BTF_KIND_ENUM64"


def test_missing_prog_type_on_an_older_kernel(monkeypatch):
    monkeypatch.setattr(F, "_release", lambda: (5, 10))
    why = F.missing_prog_type(PROG_TYPE["syscall"])
    assert why == f"program type syscall needs Linux 5.14; this kernel is {os.uname().release}"
    assert F.missing_prog_type(PROG_TYPE["sk_lookup"]) is None  # 5.9: 5.10 has it
    assert F.missing_prog_type(PROG_TYPE["xdp"]) is None
    assert F.missing_prog_type(999) is None


def test_missing_prog_type_on_this_kernel():
    """This kernel (6.18 here) has every type libbpf 1.1 names."""
    if F._release() < (5, 14):
        pytest.skip("requires 5.14: BPF_PROG_TYPE_SYSCALL")
    assert all(F.missing_prog_type(t) is None for t in range(len(PROG_TYPE)))


@pytest.mark.kernel
def test_probes_are_cached_per_process(monkeypatch):
    first = F.supports(F.Feature.BTF_DECL_TAG)
    monkeypatch.setattr(F, "_loads", lambda blob: pytest.fail("probed twice"))
    assert F.supports(F.Feature.BTF_DECL_TAG) is first
