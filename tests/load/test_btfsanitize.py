"""The BTF sanitizer: an object's BTF with the kinds an old kernel lacks replaced as libbpf
1.1 replaces them, checked by loading the result into this kernel and reading it back."""

from __future__ import annotations

import os
import struct

import pytest
from conftest import BPF_DIR

from bpft import btf as B
from bpft_load.btfsanitize import BTF_KIND_FEATURES as BTF_KINDS
from bpft_load.btfsanitize import sanitize
from bpft_load.elfopen import open_object
from bpft_load.features import Feature, requirement, supports
from bpft_load.log import Log


def object_btf(name: str) -> bytes:
    obj = open_object(str(BPF_DIR / name), log=Log())
    return obj.btf.encode()


def kinds(raw: bytes) -> list[int]:
    return [t.kind for t in B.Btf(raw).types]


def _enum64_blob() -> bytes:
    strs = b"\0e\0A\0B\0"
    types = struct.pack("<III", 1, (B.ENUM64 << 24) | 2, 8) + struct.pack("<IIIIII", 3, 1, 0, 5, 0, 1)
    types += struct.pack("<III", 1, (1 << 31) | (B.ENUM << 24) | 1, 4) + struct.pack("<Ii", 3, -1)
    hdr = struct.pack("<HBBIIIII", B.MAGIC, 1, 0, 24, 0, len(types), len(types), len(strs))
    return hdr + types + strs


def test_nothing_missing_is_the_same_blob():
    raw = object_btf("btf_new_kinds.o")
    assert sanitize(raw, set()) is raw


@pytest.mark.parametrize("missing", sorted(BTF_KINDS, key=lambda f: f.name) + [None], ids=str)
def test_sanitized_kinds_are_gone(missing):
    raw = object_btf("btf_new_kinds.o") if missing is not Feature.BTF_ENUM64 else _enum64_blob()
    gone = BTF_KINDS if missing is None else {missing}
    out = sanitize(raw, gone)
    before, after = kinds(raw), kinds(out)
    removed = {
        Feature.BTF_FLOAT: {B.FLOAT},
        Feature.BTF_DECL_TAG: {B.DECL_TAG},
        Feature.BTF_TYPE_TAG: {B.TYPE_TAG},
        Feature.BTF_ENUM64: {B.ENUM64},
        Feature.BTF_DATASEC: {B.VAR, B.DATASEC},
        Feature.BTF_FUNC: {B.FUNC, B.FUNC_PROTO},
    }
    for feature in gone:
        for kind in removed.get(feature, ()):
            assert kind in before or feature is Feature.BTF_ENUM64 and missing is None, (feature, kind)
            assert kind not in after, (feature, kind)
    # type ids keep their meaning: one record per type, plus the ENUM64 placeholder
    assert len(after) == len(before) + (B.ENUM64 in before and Feature.BTF_ENUM64 in gone)
    btf = B.Btf(out)
    if Feature.BTF_FUNC_GLOBAL in gone and Feature.BTF_FUNC not in gone:
        assert all(t.vlen == 0 for t in btf.types if t.kind == B.FUNC)
    if Feature.BTF_DATASEC in gone:
        names = [btf.name(t.name_off) for t in btf.types if t.kind == B.STRUCT]
        assert "_bss" in names and ".bss" not in names
    if Feature.BTF_ENUM64 in gone and B.ENUM64 in before:
        last = btf.types[-1]
        assert (last.kind, btf.name(last.name_off), last.size_or_type) == (B.INT, "enum64_placeholder", 1)
        assert all(not t.kflag for t in btf.types if t.kind == B.ENUM)


@pytest.mark.kernel
@pytest.mark.parametrize("name", ["btf_new_kinds.o", "show_meta.o", "load_maps.o"])
def test_sanitized_btf_loads(name):
    """Each replacement is BTF the kernel accepts (this kernel knows the old kinds too).
    FUNC aside: its ENUM stand-in for a FUNC_PROTO keeps the parameters' names, often
    empty, which kernels without FUNC (before 5.0) accepted and newer ones do not."""
    out = sanitize(object_btf(name), BTF_KINDS - {Feature.BTF_FUNC})
    from bpft.kernel import syscall as sc

    fd = sc.btf_load(out, log_size=1 << 16)
    os.close(fd)


@pytest.mark.kernel
def test_enum64_replacement_loads():
    from bpft.kernel import syscall as sc

    os.close(sc.btf_load(sanitize(_enum64_blob(), {Feature.BTF_ENUM64}), log_size=1 << 16))


@pytest.mark.kernel
def test_probes_agree_with_this_kernel():
    """Every probe answers, and the kernel this runs on knows everything it is newer than."""
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    for feature in Feature:
        if release >= tuple(int(x) for x in feature.release.split(".")):
            assert supports(feature), requirement(feature)
