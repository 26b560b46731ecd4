"""BTF parsing, type signatures and bpftool's value dumper, on real BTF."""

import os
import struct
from pathlib import Path

import pytest
from bpft import btf as B
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VMLINUX = Path("/sys/kernel/btf/vmlinux")
OBJ = Path(__file__).resolve().parent.parent / "bpf" / "show_meta_types.o"


def elf_section(path: Path, name: str) -> bytes:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        return ELFFile(f).get_section_by_name(name).data()


@pytest.fixture(scope="module")
def obj_btf():
    pytest.importorskip("elftools")
    return B.Btf(elf_section(OBJ, ".BTF"))


def find(btf, kind, name):
    for i, t in enumerate(btf.types, btf.first_id):
        if t.kind == kind and btf.name(t.name_off) == name:
            return i
    raise KeyError(name)


@pytest.mark.skipif(not VMLINUX.exists(), reason="no kernel BTF")
def test_vmlinux_parses_and_names_resolve():
    btf = B.Btf(VMLINUX.read_bytes())
    assert len(btf.types) > 10_000
    tid = find(btf, B.STRUCT, "task_struct")
    assert btf.size(tid) > 1000
    xdp_md = find(btf, B.STRUCT, "xdp_md")
    assert [btf.name(m[0]) for m in btf.type(xdp_md).members][:2] == ["data", "data_end"]


def test_signature_rendering(obj_btf):
    func = find(obj_btf, B.FUNC, "show_types")
    assert B.type_signature(obj_btf, func) == "int show_types(struct __sk_buff * skb)"


def test_values_as_bpftool_dumps_them(obj_btf):
    flags = find(obj_btf, B.STRUCT, "flags")
    a, b, c, d = 5, 17, (-3) & 0x7F, 200
    word = a | b << 3 | c << 8
    members = {obj_btf.name(m[0]): m for m in obj_btf.type(flags).members}
    raw = bytearray(obj_btf.size(flags))
    raw[0:4] = struct.pack("<I", word)
    raw[members["d"][2] // 8] = d
    off = members["port"][2] // 8
    raw[off : off + 2] = struct.pack("<H", 8080)
    off = members["col"][2] // 8
    raw[off : off + 4] = struct.pack("<i", -3)
    off = members["big"][2] // 8
    raw[off : off + 8] = struct.pack("<Q", 123456789012)
    text = B.dump_plain(obj_btf, flags, bytes(raw))
    assert text == '{"a":0x5,"b":0x11,"c":0x7d,"d":200,"port":8080,"col":"BLUE","big":123456789012}'
    value = B.dump_json(obj_btf, flags, bytes(raw))
    assert value["a"] == '"0x5"' and value["col"] == "BLUE" and value["big"] == 123456789012


def test_char_arrays(obj_btf):
    arr = next(
        i
        for i, t in enumerate(obj_btf.types, 1)
        if t.kind == B.ARRAY
        and t.members[2] == 4
        and obj_btf.name(obj_btf.type(obj_btf.resolve(t.members[0])).name_off) == "char"
    )
    assert B.dump_json(obj_btf, arr, b"ab\0\0") == "ab"
    assert B.dump_json(obj_btf, arr, b"\x01a\x02\0") == [1, 97, 2, 0]
    assert B.dump_json(obj_btf, arr, b"abcd") == [97, 98, 99, 100]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_btf_raises_only_btferror(data):
    blob = bytearray(elf_section(OBJ, ".BTF"))
    for _ in range(data.draw(st.integers(0, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        btf = B.Btf(bytes(blob[:cut]))
        for tid in range(1, btf.next_id):
            B.type_signature(btf, tid)
            try:
                B.dump_plain(btf, tid, os.urandom(64))
            except B.BTFError:
                pass
    except B.BTFError:
        pass
