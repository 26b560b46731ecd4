"""Opening a BPF ELF object as libbpf 1.1's bpf_object__open does, without a kernel.

The result is an :class:`Object`: programs split by FUNC symbols (sorted by
section and offset; ``.text`` functions are subprograms when there is more
than one program), their relocations, the maps (BTF-defined ``.maps``, then
global data sections, then ``.kconfig``), externs, BTF and .BTF.ext.
Problems raise :class:`OpenError` after a libbpf-style warning.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from bpft import btf as B

from . import sections
from .btfedit import EditableBtf
from .btfext import BtfExt, BtfExtError
from .log import Log

SHT_PROGBITS, SHT_SYMTAB, SHT_NOBITS, SHT_REL = 1, 2, 8, 9
SHF_EXECINSTR = 0x4
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STV_HIDDEN, STV_INTERNAL = 2, 1
SHN_UNDEF, SHN_ABS, SHN_COMMON = 0, 0xFFF1, 0xFFF2
EM_BPF = 247
INSN = 8

# map kinds (libbpf_map_type)
MAP_USER, MAP_DATA, MAP_BSS, MAP_RODATA, MAP_KCONFIG = "user", "data", "bss", "rodata", "kconfig"

# relocation kinds
R_LD64, R_CALL, R_DATA, R_EXTERN_VAR, R_EXTERN_FUNC, R_SUBPROG_ADDR = range(6)

BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS = 3, 12, 13
BPF_F_RDONLY_PROG, BPF_F_MMAPABLE = 1 << 7, 1 << 10


class OpenError(Exception):
    """bpf_object__open failed (the warning has been printed)."""


class Sym:
    __slots__ = ("idx", "name", "value", "size", "shndx", "type", "bind", "vis")

    def __init__(self, idx, name, value, size, shndx, info, other):
        self.idx, self.name, self.value, self.size, self.shndx = idx, name, value, size, shndx
        self.type, self.bind, self.vis = info & 0xF, info >> 4, other & 3


class Relo:
    __slots__ = ("kind", "insn_idx", "map_idx", "sym_off", "ext", "sym_name")

    def __init__(self, kind, insn_idx, map_idx=-1, sym_off=0, ext=None, sym_name=""):
        self.kind, self.insn_idx, self.map_idx, self.sym_off, self.ext = kind, insn_idx, map_idx, sym_off, ext
        self.sym_name = sym_name


class Program:
    def __init__(self, name: str, sec_name: str, sec_idx: int, sec_off: int, insns: bytes):
        self.name = name
        self.sec_name = sec_name
        self.sec_idx = sec_idx
        self.sec_insn_off = sec_off // INSN
        self.sec_insn_cnt = len(insns) // INSN
        self.insns = bytearray(insns)
        self.relos: list[Relo] = []
        self.sec_def = sections.find_sec_def(sec_name)
        self.prog_type = self.sec_def.prog_type if self.sec_def else 0
        self.attach_type = self.sec_def.attach_type if self.sec_def else 0
        self.attach_btf_id = 0  # struct_ops: set from the object's .struct_ops maps
        self.is_sub = False
        self.hidden = False
        # filled while linking
        self.sub_insn_off = 0
        self.func_info: list[bytes] = []
        self.line_info: list[bytes] = []
        self.core_relos: list[Any] = []
        self.fd = -1


class MapDef:
    def __init__(self, name: str, kind: str = MAP_USER):
        self.name = name
        self.real_name = name
        self.kind = kind
        self.type = 0
        self.key_size = 0
        self.value_size = 0
        self.max_entries = 0
        self.flags = 0
        self.numa_node = 0
        self.map_extra = 0
        self.pinning = 0
        self.key_type_id = 0
        self.value_type_id = 0
        self.inner: MapDef | None = None
        self.init_slots: list[Any] = []  # per index: map name / prog name or None
        self.sec_idx = -1
        self.sec_offset = 0
        self.data: bytes | None = None
        self.fd = -1
        self.reused = False
        self.pin_path: str | None = None
        self.pinned = False
        self.has_inner_def = False


class Extern:
    def __init__(self, name: str, sym: Sym, kind: str, btf_id: int):
        self.name = name
        self.sym = sym
        self.kind = kind  # "kconfig" | "ksym"
        self.btf_id = btf_id  # VAR or FUNC in the object's BTF
        self.is_func = False
        self.type_id = 0  # kconfig/ksym: resolved local type (0 for typeless ksym)
        self.weak = sym.bind == STB_WEAK
        self.data_off = 0
        self.size = 0
        self.is_set = False
        self.addr = 0
        self.kernel_btf_id = 0
        self.kernel_btf_obj_fd = 0


class Object:
    def __init__(self, path: str):
        self.path = path
        base = os.path.basename(path)
        self.name = base.split(".")[0]
        self.license = ""
        self.kern_version = 0
        self.programs: list[Program] = []
        self.maps: list[MapDef] = []
        self.externs: list[Extern] = []
        self.btf: EditableBtf | None = None
        self.btf_ext: BtfExt | None = None
        self.btf_fd = -1
        self.text_shndx = -1
        self.maps_shndx = -1
        self.st_ops_shndx = -1
        self.sec_names: dict[int, str] = {}
        self.sec_sizes: dict[int, int] = {}
        self.sec_data: dict[int, bytes] = {}
        self.data_secs: dict[int, str] = {}  # shndx -> MAP_DATA / MAP_RODATA / MAP_BSS
        self.syms: list[Sym] = []
        self.kconfig_map_idx = -1
        self.symtab_shndx = 0

    def main_programs(self) -> list[Program]:
        return [p for p in self.programs if not p.is_sub]


def open_object(path: str, log: Log, relaxed_maps: bool = False) -> Object:
    """Read and check ``path``; libbpf's bpf_object__open_file."""
    from .elfread import ElfFormatError

    log.debug(f"loading {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        log.warn(f"elf: failed to open {path}: {e.strerror}")
        raise OpenError() from None
    obj = Object(path)
    try:
        _collect(obj, data, log, relaxed_maps)
    except OpenError:
        raise
    except (
        ElfFormatError,
        struct.error,
        B.BTFError,
        BtfExtError,
        ValueError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        AttributeError,
        TypeError,
        OverflowError,
        RecursionError,
        MemoryError,
        ArithmeticError,
    ) as e:
        # any malformed input ends here: a clean error, never a traceback
        log.warn(f"elf: failed to parse {path}: {e or type(e).__name__}")
        raise OpenError() from None
    return obj


def _collect(obj: Object, data: bytes, log: Log, relaxed: bool) -> None:
    from .elfread import ET_REL, ElfFile, read_symbols

    if data[:4] != b"\x7fELF":
        log.warn(f"elf: '{obj.path}' is not a proper ELF object")
        raise OpenError()
    if data[4:5] != b"\x02":
        log.warn(f"elf: '{obj.path}' is not a 64-bit ELF object")
        raise OpenError()
    if data[5:6] != b"\x01":
        log.warn(f"elf: endianness mismatch in {obj.path}.")
        raise OpenError()
    elf = ElfFile(data)
    if elf.e_type != ET_REL or elf.e_machine not in (0, EM_BPF):
        log.warn(f"elf: {obj.path} is not a valid eBPF object file")
        raise OpenError()

    nsec = elf.num_sections()
    shdrs = []
    for i in range(nsec):
        s = elf.get_section(i)
        shdrs.append(s)
    # symbol table first
    symtab = None
    for i, s in enumerate(shdrs):
        if s["sh_type"] == "SHT_SYMTAB":
            if symtab is not None:
                log.warn("elf: multiple symbol tables in " + obj.path)
                raise OpenError()
            symtab = i
    if symtab is None:
        log.warn(f"elf: couldn't find symbol table in {obj.path}, stripped object file?")
        raise OpenError()
    obj.symtab_shndx = symtab
    st = shdrs[symtab]
    strtab = _raw(shdrs[st["sh_link"]]) if 0 < st["sh_link"] < nsec else b""
    obj.symtab_raw = _raw(st)  # struct_ops relocations print st_name offsets
    for i, (name, value, size, info, other, shndx) in enumerate(read_symbols(obj.symtab_raw, strtab)):
        obj.syms.append(Sym(i, name, value, size, shndx, info, other))

    btf_data = ext_data = None
    relo_secs: list[int] = []
    progs: list[Program] = []
    for idx in range(1, nsec):
        s = shdrs[idx]
        name = s.name
        obj.sec_names[idx] = name
        stype = s["sh_type"]
        if _ignore(s, name):
            continue
        size = s["sh_size"]
        obj.sec_sizes[idx] = size
        d = b"" if stype == "SHT_NOBITS" else _raw(s)
        log.debug(
            f"elf: section({idx}) {name}, size {len(d) if stype != 'SHT_NOBITS' else size}, link {s['sh_link']}, "
            f"flags {s['sh_flags']:x}, type={_type_num(stype)}"
        )
        if name == "license":
            obj.license = d.split(b"\0", 1)[0].decode(errors="replace")
            log.debug(f"license of {obj.path} is {obj.license}")
        elif name == "version":
            if len(d) != 4:
                log.warn(f"invalid kver section in {obj.path}")
                raise OpenError()
            obj.kern_version = struct.unpack("<I", d)[0]
        elif name == "maps":
            log.warn("elf: legacy map definitions in 'maps' section are not supported by libbpf v1.0+")
            raise OpenError()
        elif name == ".maps":
            obj.maps_shndx = idx
            obj.sec_data[idx] = d
        elif name == ".BTF":
            if stype != "SHT_PROGBITS":
                raise OpenError()
            btf_data = d
        elif name == ".BTF.ext":
            if stype != "SHT_PROGBITS":
                raise OpenError()
            ext_data = d
        elif stype == "SHT_SYMTAB":
            pass
        elif stype == "SHT_PROGBITS" and len(d) > 0:
            if s["sh_flags"] & SHF_EXECINSTR:
                if name == ".text":
                    obj.text_shndx = idx
                progs.extend(_add_programs(obj, d, name, idx, log))
                obj.sec_data[idx] = d
            elif name == ".data" or name.startswith(".data."):
                obj.data_secs[idx] = MAP_DATA
                obj.sec_data[idx] = d
            elif name == ".rodata" or name.startswith(".rodata."):
                obj.data_secs[idx] = MAP_RODATA
                obj.sec_data[idx] = d
            elif name == ".struct_ops":
                obj.st_ops_shndx = idx
                obj.sec_data[idx] = d
            else:
                log.info(f"elf: skipping unrecognized data section({idx}) {name}")
        elif stype == "SHT_REL":
            targ = s["sh_info"]
            if s["sh_entsize"] != 16 or targ >= nsec:
                log.warn(f"elf: bad relocation section {name}")
                raise OpenError()
            if not (shdrs[targ]["sh_flags"] & SHF_EXECINSTR) and name not in (".rel.struct_ops", ".rel.maps"):
                log.info(f"elf: skipping relo section({idx}) {name} for section({targ}) {shdrs[targ].name}")
                continue
            relo_secs.append(idx)
            obj.sec_data[idx] = d
        elif stype == "SHT_NOBITS" and (name == ".bss" or name.startswith(".bss.")):
            obj.data_secs[idx] = MAP_BSS
        else:
            log.info(f"elf: skipping section({idx}) {name} (size {size})")

    if not obj.license:
        pass
    # libbpf: sort programs by section index and offset
    progs.sort(key=lambda p: (p.sec_idx, p.sec_insn_off))
    obj.programs = progs
    for p in progs:
        p.is_sub = p.sec_idx == obj.text_shndx and len(progs) > 1

    if btf_data is not None:
        try:
            obj.btf = EditableBtf(btf_data)
        except (B.BTFError, struct.error, IndexError) as e:
            log.warn(f"Error loading ELF section .BTF: {e}. Ignored and continue.")
            obj.btf = None
    if ext_data is not None and obj.btf is not None:
        try:
            obj.btf_ext = BtfExt(ext_data, obj.btf.str_at)
        except (BtfExtError, B.BTFError, struct.error) as e:
            log.warn(f"Error loading ELF section .BTF.ext: {e}. Ignored and continue.")
            obj.btf_ext = None

    from .externs import collect_externs
    from .maps import init_maps

    collect_externs(obj, log)
    init_maps(obj, log, strict=not relaxed)
    for idx in relo_secs:
        _collect_relos(obj, shdrs[idx], idx, log)


def _raw(section) -> bytes:
    if section["sh_type"] == "SHT_NOBITS":
        return b""
    d = section.data()
    if len(d) != section["sh_size"]:
        raise ValueError(f"section {section.name} truncated")
    return d


def _cstr(tab: bytes, off: int) -> str:
    if off >= len(tab):
        return ""
    end = tab.find(b"\0", off)
    return tab[off : end if end >= 0 else None].decode(errors="replace")


_TYPE_NUMS = {
    "SHT_NULL": 0,
    "SHT_PROGBITS": 1,
    "SHT_SYMTAB": 2,
    "SHT_STRTAB": 3,
    "SHT_RELA": 4,
    "SHT_NOBITS": 8,
    "SHT_REL": 9,
}


def _type_num(t) -> int:
    if isinstance(t, int):
        return t
    return _TYPE_NUMS.get(t, 0)


def _ignore(s, name: str) -> bool:
    """libbpf's ignore_elf_section()."""
    t = s["sh_type"]
    if t == "SHT_STRTAB":
        return True
    if t == "SHT_LLVM_ADDRSIG" or (isinstance(t, int) and t == 0x6FFF4C03):
        return True
    if name.startswith(".debug_") or name.startswith(".rel.debug_"):
        return True
    if name.startswith(".rel") and (name[4:].startswith(".BTF") or name[4:].startswith(".debug_")):
        return True
    if t == "SHT_PROGBITS" and s["sh_size"] == 0 and name == ".text":
        return True
    return False


def _add_programs(obj: Object, data: bytes, sec_name: str, sec_idx: int, log: Log) -> list[Program]:
    out = []
    for sym in obj.syms:
        if sym.shndx != sec_idx or sym.type != STT_FUNC:
            continue
        if sym.value + sym.size > len(data):
            log.warn(f"sec '{sec_name}': program at offset {sym.value} crosses section boundary")
            raise OpenError()
        if sym.value % INSN or sym.size % INSN:
            log.warn(f"sec '{sec_name}': program '{sym.name}' is not aligned to instructions")
            raise OpenError()
        if sec_idx != obj.text_shndx and sym.bind == STB_LOCAL:
            log.warn(f"sec '{sec_name}': program '{sym.name}' is static and not supported")
            raise OpenError()
        log.debug(
            f"sec '{sec_name}': found program '{sym.name}' at insn offset {sym.value // INSN} ({sym.value} bytes), "
            f"code size {sym.size // INSN} insns ({sym.size} bytes)"
        )
        if not sym.size:
            log.warn(f"sec '{sec_name}': program '{sym.name}' is empty")
            raise OpenError()
        p = Program(sym.name, sec_name, sec_idx, sym.value, data[sym.value : sym.value + sym.size])
        if sym.bind != STB_LOCAL and sym.vis in (STV_HIDDEN, STV_INTERNAL):
            p.hidden = True
        out.append(p)
    return out


def find_prog_by_sec_insn(obj: Object, sec_idx: int, insn_idx: int) -> Program | None:
    for p in obj.programs:
        if p.sec_idx == sec_idx and p.sec_insn_off <= insn_idx < p.sec_insn_off + p.sec_insn_cnt:
            return p
    return None


def _collect_relos(obj: Object, s, idx: int, log: Log) -> None:
    name = obj.sec_names[idx]
    targ = s["sh_info"]
    data = obj.sec_data[idx]
    targ_name = obj.sec_names.get(targ, "")
    if name == ".rel.maps":
        from .maps import collect_map_relos

        collect_map_relos(obj, data, log)
        return
    if targ == obj.st_ops_shndx:
        from .maps import collect_st_ops_relos

        collect_st_ops_relos(obj, data, log)
        return
    log.debug(f"sec '{name}': collecting relocation for section({targ}) '{targ_name}'")
    sec_size = obj.sec_sizes.get(targ, 0)
    from .elfread import read_rels

    for i, (r_offset, sym_idx, _rtype) in enumerate(read_rels(data)):
        if sym_idx >= len(obj.syms):
            log.warn(f"sec '{name}': symbol #{sym_idx} not found for relo #{i}")
            raise OpenError()
        if r_offset % INSN or r_offset >= sec_size:
            log.warn(f"sec '{name}': invalid offset 0x{r_offset:x} for relo #{i}")
            raise OpenError()
        sym = obj.syms[sym_idx]
        insn_idx = r_offset // INSN
        sym_name = obj.sec_names.get(sym.shndx, "") if sym.type == STT_SECTION else sym.name
        log.debug(f"sec '{name}': relo #{i}: insn #{insn_idx} against '{sym_name}'")
        prog = find_prog_by_sec_insn(obj, targ, insn_idx)
        if prog is None:
            log.debug(
                f"sec '{name}': relo #{i}: couldn't find program in section '{targ_name}' for insn #{insn_idx}, "
                "probably overridden weak function, skipping..."
            )
            continue
        _record_reloc(obj, prog, insn_idx - prog.sec_insn_off, sym_name, sym, log)


def _record_reloc(obj: Object, prog: Program, insn_idx: int, sym_name: str, sym: Sym, log: Log) -> None:
    off = insn_idx * INSN
    code = prog.insns[off]
    src = prog.insns[off + 1] >> 4
    is_call = code == 0x85
    is_ldimm64 = code == 0x18
    shndx = sym.shndx
    if is_ldimm64 and off + 16 > len(prog.insns):
        log.warn(f"prog '{prog.name}': invalid relo against '{sym_name}' for insns[{insn_idx}]")
        raise OpenError()
    if shndx == SHN_UNDEF and sym.bind in (STB_GLOBAL, STB_WEAK):
        ext = next((e for e in obj.externs if e.sym.idx == sym.idx), None)
        if ext is None:
            log.warn(f"prog '{prog.name}': extern relo failed to find extern for '{sym_name}' ({sym.idx})")
            raise OpenError()
        kind = R_EXTERN_FUNC if is_call else R_EXTERN_VAR
        if not is_call and not is_ldimm64:
            log.warn(f"prog '{prog.name}': invalid relo for insns[{insn_idx}] against extern '{sym_name}'")
            raise OpenError()
        log.debug(
            f"prog '{prog.name}': found extern #{obj.externs.index(ext)} '{ext.name}' (sym {sym.idx}) for insn #{insn_idx}"
        )
        prog.relos.append(Relo(kind, insn_idx, ext=ext, sym_name=sym_name))
        return
    if is_call:
        if src != 1:
            log.warn(f"prog '{prog.name}': incorrect bpf_call opcode")
            raise OpenError()
        if not shndx or shndx != obj.text_shndx:
            log.warn(
                f"prog '{prog.name}': bad call relo against '{sym_name}' in section '{obj.sec_names.get(shndx, '')}'"
            )
            raise OpenError()
        if sym.value % INSN:
            log.warn(f"prog '{prog.name}': bad call relo against '{sym_name}' at offset {sym.value}")
            raise OpenError()
        prog.relos.append(Relo(R_CALL, insn_idx, sym_off=sym.value, sym_name=sym_name))
        return
    if not is_ldimm64:
        log.warn(f"prog '{prog.name}': invalid relo against '{sym_name}' for insns[{insn_idx}].code 0x{code:x}")
        raise OpenError()
    if shndx == obj.text_shndx and (
        (sym.bind == STB_LOCAL and sym.type == STT_SECTION) or (sym.bind == STB_GLOBAL and sym.type == STT_FUNC)
    ):
        prog.relos.append(Relo(R_SUBPROG_ADDR, insn_idx, sym_off=sym.value, sym_name=sym_name))
        return
    if shndx in obj.data_secs:
        kind = obj.data_secs[shndx]
        for i, m in enumerate(obj.maps):
            if m.kind == kind and m.sec_idx == shndx:
                log.debug(
                    f"prog '{prog.name}': found data map {i} ({m.name}, sec {shndx}, off {m.sec_offset}) for insn {insn_idx}"
                )
                prog.relos.append(Relo(R_DATA, insn_idx, map_idx=i, sym_off=sym.value, sym_name=sym_name))
                return
        log.warn(f"prog '{prog.name}': data relo for insn[{insn_idx}] points to missing map '{sym_name}'")
        raise OpenError()
    if shndx == obj.maps_shndx and obj.maps_shndx > 0:
        for i, m in enumerate(obj.maps):
            if m.kind == MAP_USER and m.sec_idx == shndx and m.sec_offset == sym.value:
                log.debug(
                    f"prog '{prog.name}': found map {i} ({m.name}, sec {shndx}, off {sym.value}) for insn #{insn_idx}"
                )
                prog.relos.append(Relo(R_LD64, insn_idx, map_idx=i, sym_name=sym_name))
                return
        log.warn(
            f"prog '{prog.name}': map relo failed to find map for section '{obj.sec_names.get(shndx, '')}', off {sym.value}"
        )
        raise OpenError()
    log.warn(f"prog '{prog.name}': bad data relo against section '{obj.sec_names.get(shndx, '')}'")
    raise OpenError()
