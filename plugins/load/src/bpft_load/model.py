"""The loader's model: what a BPF ELF object says, before any kernel call.

Plain data (dataclasses with slots) and no imports of the loader's other modules:
the open phase (:mod:`.elfopen`) fills these, the load phase (:mod:`.loader`) reads
them. The fields the load phase fills in are marked so; everything else is the ELF's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

INSN = 8  # bytes per BPF instruction
BPF_F_RDONLY_PROG, BPF_F_MMAPABLE = 1 << 7, 1 << 10  # map flags the open phase sets


class MapKind(StrEnum):
    """libbpf_map_type: where a map comes from."""

    USER = "user"  # a BTF-defined map in .maps (or a .struct_ops variable)
    DATA = "data"  # .data*
    BSS = "bss"  # .bss*
    RODATA = "rodata"  # .rodata*
    KCONFIG = "kconfig"  # the .kconfig externs


class RelocKind(IntEnum):
    """What an instruction's ELF relocation points at (libbpf's reloc_type)."""

    LD64 = 0  # a map: ld_imm64 of its fd
    CALL = 1  # a bpf-to-bpf call into .text
    DATA = 2  # a global variable: ld_imm64 of a data map's value
    EXTERN_VAR = 3  # a .kconfig or .ksyms variable
    EXTERN_FUNC = 4  # a kfunc
    SUBPROG_ADDR = 5  # a callback's address


class Pinning(IntEnum):
    """The ``pinning`` attribute of a BTF-defined map (LIBBPF_PIN_*)."""

    NONE = 0
    BY_NAME = 1


class ExternKind(StrEnum):
    KCONFIG = "kconfig"
    KSYM = "ksym"


@dataclass(slots=True)
class Symbol:
    """One ELF symbol (``type``, ``bind`` and ``visibility`` from st_info / st_other)."""

    index: int
    name: str
    value: int
    size: int
    shndx: int
    type: int
    bind: int
    visibility: int


@dataclass(slots=True)
class Relocation:
    """One instruction's relocation, ``insn_idx`` relative to its program."""

    kind: RelocKind
    insn_idx: int
    map_idx: int = -1  # LD64 / DATA: index into ObjectModel.map_list
    sym_off: int = 0  # CALL / SUBPROG_ADDR / DATA: the symbol's offset in its section
    ext: Extern | None = None  # EXTERN_*
    sym_name: str = ""


@dataclass(slots=True)
class ProgramSpec:
    """A function of an executable section: a program, or a subprogram of ``.text``.

    ``prog_type`` and ``attach_type`` come from the section name and may be changed
    before loading (``bpftool prog load ... type``).
    """

    name: str
    sec_name: str
    sec_idx: int
    sec_insn_off: int
    sec_insn_cnt: int
    insns: bytearray
    sec_def: Any = None  # sections.SecDef, or None for a section libbpf does not know
    prog_type: int = 0
    attach_type: int = 0
    relos: list[Relocation] = field(default_factory=list)
    attach_btf_id: int = 0  # struct_ops: the struct's BTF id (the kernel's, once loading)
    is_sub: bool = False
    hidden: bool = False

    @property
    def section(self) -> str:
        """The ELF section the program is in (its libbpf "section name")."""
        return self.sec_name


@dataclass(slots=True)
class MapSpec:
    """A map to create: its definition, where it was defined, and its initial contents.

    The definition (``map_type``, sizes, ``max_entries``, ``flags``) may be changed
    before loading.
    """

    name: str
    kind: MapKind = MapKind.USER
    real_name: str = ""  # a global data map's section name (".rodata")
    map_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    pinning: Pinning = Pinning.NONE
    pin_path: str | None = None  # pinning by name: where libbpf pins it
    key_type_id: int = 0
    value_type_id: int = 0
    inner: MapSpec | None = None  # map-in-map: the inner map's definition
    has_inner_def: bool = False
    init_slots: list[Any] = field(default_factory=list)  # per slot: a ProgramSpec / MapSpec or None
    sec_idx: int = -1
    sec_offset: int = 0
    var_size: int = 0  # .maps: the size of the map's variable
    def_id: int = 0  # .maps: the BTF id of the definition struct
    data: bytes | bytearray | None = None  # global data: the initial value
    # .struct_ops: the struct's name and BTF id, and the program of each member index
    struct_name: str = ""
    struct_type_id: int = 0
    struct_progs: dict[int, ProgramSpec] = field(default_factory=dict)
    vmlinux_value_type_id: int = 0  # .struct_ops: filled by the load phase


@dataclass(slots=True)
class Extern:
    """An ``extern`` variable or function: a .kconfig value or a .ksyms kernel symbol."""

    name: str
    sym: Symbol
    kind: ExternKind
    btf_id: int  # the VAR or FUNC in the object's BTF
    is_func: bool = False
    type_id: int = 0  # the resolved local type (0 for a typeless ksym)
    weak: bool = False
    size: int = 0
    align: int = 0
    kcfg_type: str | None = None  # kconfig: "bool", "tristate", "char", "char_arr" or "int"
    data_off: int = 0  # kconfig: offset in the .kconfig map's value
    # filled by the load phase
    is_set: bool = False
    addr: int = 0
    kernel_btf_id: int = 0
    kernel_btf_obj_fd: int = 0


@dataclass(slots=True)
class ObjectModel:
    """What the ELF says about the object as a whole: its programs and maps in libbpf's
    order, its externs, BTF and .BTF.ext, and the sections they were read from."""

    path: str
    name: str = ""  # the file's base name up to the first dot: the prefix of data map names
    license: str = ""
    kern_version: int = 0
    functions: list[ProgramSpec] = field(default_factory=list)  # by section and offset
    map_list: list[MapSpec] = field(default_factory=list)  # libbpf's order: the index is the map's idx
    externs: list[Extern] = field(default_factory=list)
    btf: Any = None  # btfedit.EditableBtf, or None
    btf_ext: Any = None  # btfext.BtfExt, or None
    syms: list[Symbol] = field(default_factory=list)
    symtab_raw: bytes = b""
    symtab_shndx: int = 0
    text_shndx: int = -1
    maps_shndx: int = -1
    st_ops_shndx: int = -1
    sec_names: dict[int, str] = field(default_factory=dict)
    sec_sizes: dict[int, int] = field(default_factory=dict)
    sec_data: dict[int, bytes] = field(default_factory=dict)
    data_secs: dict[int, MapKind] = field(default_factory=dict)  # shndx -> DATA / RODATA / BSS
    kconfig_size: int = 0
    kconfig_map_idx: int = -1

    def main_programs(self) -> list[ProgramSpec]:
        """The programs to load (subprograms are linked into them), in libbpf's order."""
        return [p for p in self.functions if not p.is_sub]

    @property
    def programs(self) -> dict[str, ProgramSpec]:
        """The programs to load, by name."""
        return {p.name: p for p in self.functions if not p.is_sub}

    @property
    def maps(self) -> dict[str, MapSpec]:
        """The maps to create, by name (global data maps by their map name: ``hello.rodata``)."""
        return {m.name: m for m in self.map_list}


def find_prog_by_sec_insn(obj: ObjectModel, sec_idx: int, insn_idx: int) -> ProgramSpec | None:
    """The function of section ``sec_idx`` that holds instruction ``insn_idx``."""
    for p in obj.functions:
        if p.sec_idx == sec_idx and p.sec_insn_off <= insn_idx < p.sec_insn_off + p.sec_insn_cnt:
            return p
    return None
