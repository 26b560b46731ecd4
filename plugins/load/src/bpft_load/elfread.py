"""A minimal reader of ELF64 little-endian relocatable objects: sections, symbols, relocations.

bpft reads BPF objects with this instead of pyelftools on the load path:
importing ``elftools.elf.elffile`` costs more than bpftool's whole load of a
typical object (docs/design-notes.md has the figures). Every bound is checked;
problems raise :class:`ElfFormatError`. tests/load/test_elfread.py checks it
against pyelftools on every object of the suite.
"""

from __future__ import annotations

import struct

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym
_REL = struct.Struct("<QQ")  # Elf64_Rel

SHT_NAMES = {
    0: "SHT_NULL",
    1: "SHT_PROGBITS",
    2: "SHT_SYMTAB",
    3: "SHT_STRTAB",
    4: "SHT_RELA",
    8: "SHT_NOBITS",
    9: "SHT_REL",
    0x6FFF4C03: "SHT_LLVM_ADDRSIG",
}
ET_REL = 1
EM_BPF = 247
SHF_EXECINSTR = 0x4
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STV_INTERNAL, STV_HIDDEN = 1, 2
SHN_UNDEF = 0


class ElfFormatError(ValueError):
    pass


class Section:
    __slots__ = ("index", "name", "header", "_data")

    def __init__(self, index: int, name: str, header: dict, data: bytes | None):
        self.index, self.name, self.header, self._data = index, name, header, data

    def __getitem__(self, key):
        return self.header[key]

    def data(self) -> bytes:
        if self._data is None:
            raise ElfFormatError(f"section {self.name} is out of the file")
        return self._data


class ElfFile:
    def __init__(self, data: bytes):
        if len(data) < _EHDR.size:
            raise ElfFormatError("ELF header truncated")
        (
            ident,
            e_type,
            e_machine,
            _ver,
            _entry,
            _phoff,
            shoff,
            _flags,
            ehsize,
            _phentsize,
            _phnum,
            shentsize,
            shnum,
            shstrndx,
        ) = _EHDR.unpack_from(data)
        self.e_type, self.e_machine = e_type, e_machine
        if shnum == 0 and shoff:
            if shoff + _SHDR.size > len(data):
                raise ElfFormatError("section headers out of the file")
            shnum = _SHDR.unpack_from(data, shoff)[5]
        if shentsize != _SHDR.size and shnum:
            raise ElfFormatError(f"bad section header size {shentsize}")
        if shoff + shnum * _SHDR.size > len(data) or shnum > 65535 * 16:
            raise ElfFormatError("section headers out of the file")
        hdrs = []
        for i in range(shnum):
            (name, stype, flags, addr, offset, size, link, info, align, entsize) = _SHDR.unpack_from(
                data, shoff + i * _SHDR.size
            )
            hdrs.append(
                {
                    "sh_name": name,
                    "sh_type": SHT_NAMES.get(stype, stype),
                    "sh_flags": flags,
                    "sh_offset": offset,
                    "sh_size": size,
                    "sh_link": link,
                    "sh_info": info,
                    "sh_entsize": entsize,
                }
            )
        if shstrndx == 0xFFFF and hdrs:
            shstrndx = hdrs[0]["sh_link"]
        if hdrs and not (0 < shstrndx < shnum):
            raise ElfFormatError("bad section name string table index")
        self.sections: list[Section] = []
        strtab = b""
        if hdrs:
            h = hdrs[shstrndx]
            if h["sh_offset"] + h["sh_size"] > len(data):
                raise ElfFormatError("section name table out of the file")
            strtab = data[h["sh_offset"] : h["sh_offset"] + h["sh_size"]]
        for i, h in enumerate(hdrs):
            off = h["sh_name"]
            if off >= len(strtab) and i:
                raise ElfFormatError(f"section {i}: name offset out of range")
            end = strtab.find(b"\0", off)
            name = strtab[off : end if end >= 0 else None].decode(errors="replace") if i else ""
            d = None
            if h["sh_type"] == "SHT_NOBITS":
                d = b""
            elif h["sh_offset"] + h["sh_size"] <= len(data):
                d = data[h["sh_offset"] : h["sh_offset"] + h["sh_size"]]
            self.sections.append(Section(i, name, h, d))

    def num_sections(self) -> int:
        return len(self.sections)

    def get_section(self, i: int) -> Section:
        return self.sections[i]


def cstr(tab: bytes, off: int) -> str:
    """The NUL-terminated string at ``off`` in a string table ("" when out of range)."""
    if off >= len(tab):
        return ""
    end = tab.find(b"\0", off)
    return tab[off : end if end >= 0 else None].decode(errors="replace")


def read_symbols(data: bytes, strtab: bytes) -> list[tuple[str, int, int, int, int, int]]:
    """(name, st_value, st_size, st_info, st_other, st_shndx) of each Elf64_Sym in a SHT_SYMTAB's data."""
    return [
        (cstr(strtab, name_off), value, size, info, other, shndx)
        for name_off, info, other, shndx, value, size in _SYM.iter_unpack(data[: len(data) - len(data) % _SYM.size])
    ]


def read_rels(data: bytes) -> list[tuple[int, int, int]]:
    """(r_offset, symbol index, relocation type) of each Elf64_Rel in a SHT_REL's data."""
    return [(off, info >> 32, info & 0xFFFFFFFF) for off, info in _REL.iter_unpack(data[: len(data) - len(data) % 16])]
