"""The open phase: libbpf 1.1's bpf_object__open, without a kernel.

:func:`open_object` reads the ELF file and calls the open steps in libbpf's order,
each a named function: check the ELF header, collect the sections (symbols,
programs, data sections), read .BTF and .BTF.ext, collect externs, finalize the
BTF, make the map definitions, collect relocations. The result is an
:class:`~.objectspec.ObjectSpec`. A malformed object raises :class:`OpenError`
(after libbpf's warning, through the caller's :class:`~.log.Log`), never another
exception: this is the edge where parsing starts.
"""

from __future__ import annotations

import os
import struct

from bpft import btf as B
from bpft.kernel.uapi import ProgType

from . import sections
from .btfedit import EditableBtf
from .btfext import BtfExt, BtfExtError
from .btffinalize import finalize_btf
from .elfread import (
    EM_BPF,
    ET_REL,
    SHF_EXECINSTR,
    SHT_NAMES,
    STB_LOCAL,
    STT_FUNC,
    STV_HIDDEN,
    STV_INTERNAL,
    ElfFile,
    read_symbols,
)
from .errors import OpenError
from .externs import collect_externs
from .log import Log
from .mapdefs import init_maps
from .model import INSN, MapKind, ProgramSpec, Symbol
from .objectspec import ObjectSpec
from .relocs import collect_relos

# what a malformed object can raise while it is being parsed: reported as libbpf's
# "failed to parse", never as a traceback
_MALFORMED = (struct.error, ValueError, LookupError, ArithmeticError, RecursionError, MemoryError)


def open_object(path: str | os.PathLike[str], *, log: Log | None = None, strict_maps: bool = True) -> ObjectSpec:
    """Open ``path`` as libbpf's bpf_object__open_file does; no kernel call.

    ``strict_maps=False`` is bpftool's ``-m``: unknown fields of a map definition are
    ignored instead of refused. Raises :class:`OpenError` with the step that failed.
    """
    path = os.fspath(path)
    log = log or Log()
    log.debug(f"loading {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise log.open_error(
            f"elf: failed to open {path}: {e.strerror}", step="read file", path=path, errno=e.errno or 0
        ) from None
    spec = ObjectSpec(path, name=os.path.basename(path).split(".")[0])
    step = "check ELF header"
    try:
        elf = check_elf_header(spec, data, log)
        step = "collect sections"
        relo_sections = collect_sections(spec, elf, log)
        step = "load BTF"
        init_btf(spec, log)
        step = "collect externs"
        collect_externs(spec, log)
        step = "finalize BTF"
        finalize_btf(spec, log)
        step = "init maps"
        init_maps(spec, log, strict=strict_maps)
        step = "collect relocations"
        collect_relos(spec, relo_sections, log)
    except OpenError as e:
        e.step, e.path = e.step or step, path
        raise
    except _MALFORMED as e:
        raise log.open_error(f"elf: failed to parse {path}: {e or type(e).__name__}", step=step, path=path) from None
    return spec


def check_elf_header(spec: ObjectSpec, data: bytes, log: Log) -> ElfFile:
    """libbpf's bpf_object__elf_init and check_endianness: a 64-bit little-endian BPF ELF."""
    if data[:4] != b"\x7fELF":
        raise log.open_error(f"elf: '{spec.path}' is not a proper ELF object")
    if data[4:5] != b"\x02":
        raise log.open_error(f"elf: '{spec.path}' is not a 64-bit ELF object")
    if data[5:6] != b"\x01":
        raise log.open_error(f"elf: endianness mismatch in {spec.path}.")
    elf = ElfFile(data)
    if elf.e_type != ET_REL or elf.e_machine not in (0, EM_BPF):
        raise log.open_error(f"elf: {spec.path} is not a valid eBPF object file")
    return elf


def collect_sections(spec: ObjectSpec, elf: ElfFile, log: Log) -> list:
    """libbpf's bpf_object__elf_collect: the symbol table, then each section in turn
    (license, version, .maps, .BTF, .BTF.ext, programs, data, relocations). Returns the
    relocation sections to collect later, when the maps are known."""
    shdrs = [elf.get_section(i) for i in range(elf.num_sections())]
    _read_symtab(spec, shdrs, log)
    relo_sections = []
    for idx in range(1, len(shdrs)):
        section = shdrs[idx]
        name = section.name
        spec.sec_names[idx] = name
        stype = section["sh_type"]
        if _ignored(section, name):
            continue
        size = section["sh_size"]
        spec.sec_sizes[idx] = size
        data = b"" if stype == "SHT_NOBITS" else _raw(section)
        log.debug(
            f"elf: section({idx}) {name}, size {len(data) if stype != 'SHT_NOBITS' else size}, "
            f"link {section['sh_link']}, flags {section['sh_flags']:x}, type={_sht_number(stype)}"
        )
        if name == "license":
            spec.license = data.split(b"\0", 1)[0].decode(errors="replace")
            log.debug(f"license of {spec.path} is {spec.license}")
        elif name == "version":
            if len(data) != 4:
                raise log.open_error(f"invalid kver section in {spec.path}")
            spec.kern_version = struct.unpack("<I", data)[0]
        elif name == "maps":
            raise log.open_error("elf: legacy map definitions in 'maps' section are not supported by libbpf v1.0+")
        elif name == ".maps":
            spec.maps_shndx = idx
            spec.sec_data[idx] = data
        elif name in (".BTF", ".BTF.ext"):
            if stype != "SHT_PROGBITS":
                raise OpenError(f"elf: {name} is not PROGBITS")
            spec.sec_data[idx] = data
        elif stype == "SHT_SYMTAB":
            pass
        elif stype == "SHT_PROGBITS" and len(data) > 0:
            if section["sh_flags"] & SHF_EXECINSTR:
                if name == ".text":
                    spec.text_shndx = idx
                spec.functions.extend(_collect_programs(spec, data, name, idx, log))
                spec.sec_data[idx] = data
            elif name == ".data" or name.startswith(".data."):
                spec.data_secs[idx] = MapKind.DATA
                spec.sec_data[idx] = data
            elif name == ".rodata" or name.startswith(".rodata."):
                spec.data_secs[idx] = MapKind.RODATA
                spec.sec_data[idx] = data
            elif name == ".struct_ops":
                spec.st_ops_shndx = idx
                spec.sec_data[idx] = data
            else:
                log.info(f"elf: skipping unrecognized data section({idx}) {name}")
        elif stype == "SHT_REL":
            target = section["sh_info"]
            if section["sh_entsize"] != 16 or target >= len(shdrs):
                raise log.open_error(f"elf: bad relocation section {name}")
            if not (shdrs[target]["sh_flags"] & SHF_EXECINSTR) and name not in (".rel.struct_ops", ".rel.maps"):
                log.info(f"elf: skipping relo section({idx}) {name} for section({target}) {shdrs[target].name}")
                continue
            relo_sections.append(section)
            spec.sec_data[idx] = data
        elif stype == "SHT_NOBITS" and (name == ".bss" or name.startswith(".bss.")):
            spec.data_secs[idx] = MapKind.BSS
        else:
            log.info(f"elf: skipping section({idx}) {name} (size {size})")
    # libbpf sorts the programs by section and offset; .text functions are subprograms
    # unless .text holds the object's only program
    spec.functions.sort(key=lambda p: (p.sec_idx, p.sec_insn_off))
    for p in spec.functions:
        p.is_sub = p.sec_idx == spec.text_shndx and len(spec.functions) > 1
    return relo_sections


def _read_symtab(spec: ObjectSpec, shdrs: list, log: Log) -> None:
    symtabs = [i for i, s in enumerate(shdrs) if s["sh_type"] == "SHT_SYMTAB"]
    if len(symtabs) > 1:
        raise log.open_error("elf: multiple symbol tables in " + spec.path)
    if not symtabs:
        raise log.open_error(f"elf: couldn't find symbol table in {spec.path}, stripped object file?")
    spec.symtab_shndx = symtabs[0]
    symtab = shdrs[symtabs[0]]
    link = symtab["sh_link"]
    strtab = _raw(shdrs[link]) if 0 < link < len(shdrs) else b""
    spec.symtab_raw = _raw(symtab)  # struct_ops relocations print st_name offsets
    spec.syms = [
        Symbol(i, name, value, size, shndx, info & 0xF, info >> 4, other & 3)
        for i, (name, value, size, info, other, shndx) in enumerate(read_symbols(spec.symtab_raw, strtab))
    ]


def _raw(section) -> bytes:
    if section["sh_type"] == "SHT_NOBITS":
        return b""
    data = section.data()
    if len(data) != section["sh_size"]:
        raise ValueError(f"section {section.name} truncated")
    return data


_SHT_NUMBERS = {name: number for number, name in SHT_NAMES.items()}


def _sht_number(stype: str | int) -> int:
    """A section type as libbpf prints it: the number (our reader names the known ones)."""
    return stype if isinstance(stype, int) else _SHT_NUMBERS.get(stype, 0)


def _ignored(section, name: str) -> bool:
    """libbpf's ignore_elf_section()."""
    stype = section["sh_type"]
    if stype in ("SHT_STRTAB", "SHT_LLVM_ADDRSIG"):
        return True
    if name.startswith(".debug_") or name.startswith(".rel.debug_"):
        return True
    if name.startswith(".rel") and (name[4:].startswith(".BTF") or name[4:].startswith(".debug_")):
        return True
    return stype == "SHT_PROGBITS" and section["sh_size"] == 0 and name == ".text"


def _collect_programs(spec: ObjectSpec, data: bytes, sec_name: str, sec_idx: int, log: Log) -> list[ProgramSpec]:
    """libbpf's bpf_object__add_programs: one program per FUNC symbol of the section."""
    found = []
    sec_def = sections.find_sec_def(sec_name)
    for sym in spec.syms:
        if sym.shndx != sec_idx or sym.type != STT_FUNC:
            continue
        if sym.value + sym.size > len(data):
            raise log.open_error(f"sec '{sec_name}': program at offset {sym.value} crosses section boundary")
        if sym.value % INSN or sym.size % INSN:
            raise log.open_error(f"sec '{sec_name}': program '{sym.name}' is not aligned to instructions")
        if sec_idx != spec.text_shndx and sym.bind == STB_LOCAL:
            raise log.open_error(f"sec '{sec_name}': program '{sym.name}' is static and not supported")
        log.debug(
            f"sec '{sec_name}': found program '{sym.name}' at insn offset {sym.value // INSN} ({sym.value} bytes), "
            f"code size {sym.size // INSN} insns ({sym.size} bytes)"
        )
        if not sym.size:
            raise log.open_error(f"sec '{sec_name}': program '{sym.name}' is empty", program=sym.name)
        found.append(
            ProgramSpec(
                sym.name,
                sec_name,
                sec_idx,
                sym.value // INSN,
                sym.size // INSN,
                bytearray(data[sym.value : sym.value + sym.size]),
                sec_def,
                sec_def.prog_type if sec_def else ProgType.UNSPEC,
                sec_def.attach_type if sec_def else 0,
                hidden=sym.bind != STB_LOCAL and sym.visibility in (STV_HIDDEN, STV_INTERNAL),
            )
        )
    return found


def init_btf(spec: ObjectSpec, log: Log) -> None:
    """libbpf's bpf_object__init_btf: .BTF and .BTF.ext; a broken one is ignored, with a warning."""
    by_name = {spec.sec_names[i]: d for i, d in spec.sec_data.items() if spec.sec_names.get(i) in (".BTF", ".BTF.ext")}
    if ".BTF" in by_name:
        try:
            spec.btf = EditableBtf(by_name[".BTF"])
        except (B.BTFError, struct.error, IndexError) as e:
            log.warn(f"Error loading ELF section .BTF: {e}. Ignored and continue.")
            spec.btf = None
    if ".BTF.ext" in by_name and spec.btf is not None:
        try:
            spec.btf_ext = BtfExt(by_name[".BTF.ext"], spec.btf.str_at)
        except (BtfExtError, B.BTFError, struct.error) as e:
            log.warn(f"Error loading ELF section .BTF.ext: {e}. Ignored and continue.")
            spec.btf_ext = None
