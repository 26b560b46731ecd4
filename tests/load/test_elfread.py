"""Our ELF reader (bpft_load.elfread) against pyelftools, on every object of the suite.

The loader reads ELF with its own small reader because importing pyelftools
costs more than bpftool's whole load (docs/design-notes.md). pyelftools stays
the reference here: sections (names, types, flags, offsets, sizes, links,
data), symbols (names, values, sizes, sections, binding, type, visibility) and
the relocations of every SHT_REL section must agree, and so must what the
loader's open_object keeps of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

elffile = pytest.importorskip("elftools.elf.elffile")
enums = pytest.importorskip("elftools.elf.enums")
elfread = pytest.importorskip("bpft_load.elfread")

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = sorted({*ROOT.joinpath("tests/bpf").rglob("*.o"), *ROOT.joinpath("examples").rglob("*.o")})


def _num(value, table: dict) -> int:
    """pyelftools gives known enum values as names: back to numbers."""
    return value if isinstance(value, int) else table[value]


def _ours_type(value) -> int:
    if isinstance(value, int):
        return value
    return {v: k for k, v in elfread.SHT_NAMES.items()}[value]


def test_there_are_objects():
    assert len(OBJECTS) >= 10, OBJECTS


@pytest.mark.parametrize("path", OBJECTS, ids=[str(p.relative_to(ROOT)) for p in OBJECTS])
def test_elfread_matches_pyelftools(path: Path):
    data = path.read_bytes()
    ours = elfread.ElfFile(data)
    with open(path, "rb") as f:
        ref = elffile.ELFFile(f)
        assert (ours.e_type, ours.e_machine) == (
            _num(ref["e_type"], enums.ENUM_E_TYPE),
            _num(ref["e_machine"], enums.ENUM_E_MACHINE),
        )
        assert ours.num_sections() == ref.num_sections()
        strtabs: dict[int, bytes] = {}
        for i, rs in enumerate(ref.iter_sections()):
            s = ours.get_section(i)
            assert s.index == i
            assert s.name == rs.name, i
            assert _ours_type(s["sh_type"]) == _num(rs["sh_type"], enums.ENUM_SH_TYPE_BASE), s.name
            for field in ("sh_flags", "sh_offset", "sh_size", "sh_link", "sh_info", "sh_entsize"):
                assert s[field] == rs[field], (s.name, field)
            if rs["sh_type"] != "SHT_NOBITS":
                assert s.data() == rs.data(), s.name
                strtabs[i] = s.data()

        symtabs = [(i, rs) for i, rs in enumerate(ref.iter_sections()) if rs["sh_type"] == "SHT_SYMTAB"]
        assert symtabs, "no symbol table"
        for i, rs in symtabs:
            syms = elfread.read_symbols(ours.get_section(i).data(), strtabs[rs["sh_link"]])
            ref_syms = list(rs.iter_symbols())
            assert len(syms) == len(ref_syms)
            for (name, value, size, info, other, shndx), r in zip(syms, ref_syms, strict=True):
                assert name == r.name
                assert (value, size) == (r["st_value"], r["st_size"]), name
                assert shndx == _num(r["st_shndx"], enums.ENUM_ST_SHNDX), name
                assert info >> 4 == _num(r["st_info"]["bind"], enums.ENUM_ST_INFO_BIND), name
                assert info & 0xF == _num(r["st_info"]["type"], enums.ENUM_ST_INFO_TYPE), name
                assert other & 3 == _num(r["st_other"]["visibility"], enums.ENUM_ST_VISIBILITY), name

        for i, rs in enumerate(ref.iter_sections()):
            if rs["sh_type"] != "SHT_REL":
                continue
            rels = elfread.read_rels(ours.get_section(i).data())
            want = [(r["r_offset"], r["r_info_sym"], r["r_info_type"]) for r in rs.iter_relocations()]
            assert rels == want, rs.name


@pytest.mark.parametrize("path", OBJECTS, ids=[str(p.relative_to(ROOT)) for p in OBJECTS])
def test_open_object_keeps_what_pyelftools_reads(path: Path):
    """The loader's symbol list and section names are pyelftools' (where the object opens at all)."""
    from bpft_load import OpenError, open_object

    try:
        obj = open_object(str(path))
    except OpenError:
        pytest.skip("libbpf refuses this object too (the loader tests cover why)")
    with open(path, "rb") as f:
        ref = elffile.ELFFile(f)
        symtab = next(s for s in ref.iter_sections() if s["sh_type"] == "SHT_SYMTAB")
        want = [
            (r.name, r["st_value"], r["st_size"], _num(r["st_shndx"], enums.ENUM_ST_SHNDX))
            for r in symtab.iter_symbols()
        ]
        assert [(s.name, s.value, s.size, s.shndx) for s in obj.syms] == want
        for idx, name in obj.sec_names.items():
            assert ref.get_section(idx).name == name


def test_truncated_symbol_and_relocation_data():
    """A partial trailing record is ignored, as by the loader before; nothing raises."""
    sym = b"\x01\x00\x00\x00" + bytes([0x12, 0]) + (3).to_bytes(2, "little") + (8).to_bytes(8, "little") * 2
    assert elfread.read_symbols(sym + sym[:5], b"\0f\0") == [("f", 8, 8, 0x12, 0, 3)]
    assert elfread.read_symbols(b"", b"") == []
    assert elfread.read_symbols(sym, b"") == [("", 8, 8, 0x12, 0, 3)]
    rel = (16).to_bytes(8, "little") + ((7 << 32) | 1).to_bytes(8, "little")
    assert elfread.read_rels(rel + rel[:9]) == [(16, 7, 1)]


def test_loader_needs_no_pyelftools():
    """bpft-load does not depend on pyelftools, and opening an object never imports it."""
    import subprocess
    import sys
    import tomllib

    deps = tomllib.loads((ROOT / "plugins/load/pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if "elftools" in d.lower()], deps
    code = (
        "import sys\n"
        "from bpft_load import open_object\n"
        f"open_object({str(ROOT / 'tests/bpf/core_fields.o')!r})\n"
        "import bpft_load.corerelo, bpft_load.loader, bpft_load.load\n"
        "print(sorted(m for m in sys.modules if m.startswith('elftools')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
