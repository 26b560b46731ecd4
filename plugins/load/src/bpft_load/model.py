"""The loader's model: what a BPF ELF object says, before any kernel call.

Plain data (classes with slots) and no imports of the loader's other modules:
the open phase (:mod:`.elfopen`) fills these, the load phase (:mod:`.loader`) reads
them. The fields the load phase fills in are marked so; everything else is the ELF's.

The classes are written out rather than made with ``dataclasses``, whose import and
class building were a measurable part of a whole ``loadall`` (docs/design-notes.md).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from bpft.records import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs start-up: annotations only
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


class _Record:
    """Plain data: printed with its fields."""

    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{field}={getattr(self, field)!r}" for field in self.__slots__ if field != "insns")
        return f"{type(self).__name__}({fields})"


class ExternKind(StrEnum):
    KCONFIG = "kconfig"
    KSYM = "ksym"


class Symbol(_Record):
    """One ELF symbol (``type``, ``bind`` and ``visibility`` from st_info / st_other)."""

    __slots__ = ("index", "name", "value", "size", "shndx", "type", "bind", "visibility")

    def __init__(
        self,
        index: int,
        name: str,
        value: int,
        size: int,
        shndx: int,
        type: int,
        bind: int,
        visibility: int,
    ):
        self.index: int = index
        self.name: str = name
        self.value: int = value
        self.size: int = size
        self.shndx: int = shndx
        self.type: int = type
        self.bind: int = bind
        self.visibility: int = visibility


class Relocation(_Record):
    """One instruction's relocation, ``insn_idx`` relative to its program."""

    __slots__ = ("kind", "insn_idx", "map_idx", "sym_off", "ext", "sym_name")

    def __init__(
        self,
        kind: RelocKind,
        insn_idx: int,
        map_idx: int = -1,
        sym_off: int = 0,
        ext: Extern | None = None,
        sym_name: str = "",
    ):
        self.kind: RelocKind = kind
        self.insn_idx: int = insn_idx
        self.map_idx: int = map_idx  # LD64 / DATA: index into ObjectModel.map_list
        self.sym_off: int = sym_off  # CALL / SUBPROG_ADDR / DATA: the symbol's offset in its section
        self.ext: Extern | None = ext  # EXTERN_*
        self.sym_name: str = sym_name


class ProgramSpec(_Record):
    """A function of an executable section: a program, or a subprogram of ``.text``.

    ``prog_type`` and ``attach_type`` come from the section name and may be changed
    before loading (``bpftool prog load ... type``).
    """

    __slots__ = (
        "name",
        "sec_name",
        "sec_idx",
        "sec_insn_off",
        "sec_insn_cnt",
        "insns",
        "sec_def",
        "prog_type",
        "attach_type",
        "relos",
        "attach_btf_id",
        "is_sub",
        "hidden",
    )

    def __init__(
        self,
        name: str,
        sec_name: str,
        sec_idx: int,
        sec_insn_off: int,
        sec_insn_cnt: int,
        insns: bytearray,
        sec_def: Any = None,
        prog_type: int = 0,
        attach_type: int = 0,
        relos: list[Relocation] | None = None,
        attach_btf_id: int = 0,
        is_sub: bool = False,
        hidden: bool = False,
    ):
        self.name: str = name
        self.sec_name: str = sec_name
        self.sec_idx: int = sec_idx
        self.sec_insn_off: int = sec_insn_off
        self.sec_insn_cnt: int = sec_insn_cnt
        self.insns: bytearray = insns
        self.sec_def: Any = sec_def  # sections.SecDef, or None for a section libbpf does not know
        self.prog_type: int = prog_type
        self.attach_type: int = attach_type
        self.relos: list[Relocation] = relos if relos is not None else []
        self.attach_btf_id: int = attach_btf_id  # struct_ops: the struct's BTF id (the kernel's, once loading)
        self.is_sub: bool = is_sub
        self.hidden: bool = hidden

    @property
    def section(self) -> str:
        """The ELF section the program is in (its libbpf "section name")."""
        return self.sec_name


class MapSpec(_Record):
    """A map to create: its definition, where it was defined, and its initial contents.

    The definition (``map_type``, sizes, ``max_entries``, ``flags``) may be changed
    before loading.
    """

    __slots__ = (
        "name",
        "kind",
        "real_name",
        "map_type",
        "key_size",
        "value_size",
        "max_entries",
        "flags",
        "numa_node",
        "map_extra",
        "pinning",
        "pin_path",
        "key_type_id",
        "value_type_id",
        "inner",
        "has_inner_def",
        "init_slots",
        "sec_idx",
        "sec_offset",
        "var_size",
        "def_id",
        "data",
        "struct_name",
        "struct_type_id",
        "struct_progs",
        "vmlinux_value_type_id",
    )

    def __init__(
        self,
        name: str,
        kind: MapKind = MapKind.USER,
        real_name: str = "",
        map_type: int = 0,
        key_size: int = 0,
        value_size: int = 0,
        max_entries: int = 0,
        flags: int = 0,
        numa_node: int = 0,
        map_extra: int = 0,
        pinning: Pinning = Pinning.NONE,
        pin_path: str | None = None,
        key_type_id: int = 0,
        value_type_id: int = 0,
        inner: MapSpec | None = None,
        has_inner_def: bool = False,
        init_slots: list[Any] | None = None,
        sec_idx: int = -1,
        sec_offset: int = 0,
        var_size: int = 0,
        def_id: int = 0,
        data: bytes | bytearray | None = None,
        struct_name: str = "",
        struct_type_id: int = 0,
        struct_progs: dict[int, ProgramSpec] | None = None,
        vmlinux_value_type_id: int = 0,
    ):
        self.name: str = name
        self.kind: MapKind = kind
        self.real_name: str = real_name  # a global data map's section name (".rodata")
        self.map_type: int = map_type
        self.key_size: int = key_size
        self.value_size: int = value_size
        self.max_entries: int = max_entries
        self.flags: int = flags
        self.numa_node: int = numa_node
        self.map_extra: int = map_extra
        self.pinning: Pinning = pinning
        self.pin_path: str | None = pin_path  # pinning by name: where libbpf pins it
        self.key_type_id: int = key_type_id
        self.value_type_id: int = value_type_id
        self.inner: MapSpec | None = inner  # map-in-map: the inner map's definition
        self.has_inner_def: bool = has_inner_def
        self.init_slots: list[Any] = (
            init_slots if init_slots is not None else []
        )  # per slot: a ProgramSpec / MapSpec or None
        self.sec_idx: int = sec_idx
        self.sec_offset: int = sec_offset
        self.var_size: int = var_size  # .maps: the size of the map's variable
        self.def_id: int = def_id  # .maps: the BTF id of the definition struct
        self.data: bytes | bytearray | None = data  # global data: the initial value
        # .struct_ops: the struct's name and BTF id, and the program of each member index
        self.struct_name: str = struct_name
        self.struct_type_id: int = struct_type_id
        self.struct_progs: dict[int, ProgramSpec] = struct_progs if struct_progs is not None else {}
        self.vmlinux_value_type_id: int = vmlinux_value_type_id  # .struct_ops: filled by the load phase


class Extern(_Record):
    """An ``extern`` variable or function: a .kconfig value or a .ksyms kernel symbol."""

    __slots__ = (
        "name",
        "sym",
        "kind",
        "btf_id",
        "is_func",
        "type_id",
        "weak",
        "size",
        "align",
        "kcfg_type",
        "data_off",
        "is_set",
        "addr",
        "kernel_btf_id",
        "kernel_btf_obj_fd",
    )

    def __init__(
        self,
        name: str,
        sym: Symbol,
        kind: ExternKind,
        btf_id: int,
        is_func: bool = False,
        type_id: int = 0,
        weak: bool = False,
        size: int = 0,
        align: int = 0,
        kcfg_type: str | None = None,
        data_off: int = 0,
        is_set: bool = False,
        addr: int = 0,
        kernel_btf_id: int = 0,
        kernel_btf_obj_fd: int = 0,
    ):
        self.name: str = name
        self.sym: Symbol = sym
        self.kind: ExternKind = kind
        self.btf_id: int = btf_id  # the VAR or FUNC in the object's BTF
        self.is_func: bool = is_func
        self.type_id: int = type_id  # the resolved local type (0 for a typeless ksym)
        self.weak: bool = weak
        self.size: int = size
        self.align: int = align
        self.kcfg_type: str | None = kcfg_type  # kconfig: "bool", "tristate", "char", "char_arr" or "int"
        self.data_off: int = data_off  # kconfig: offset in the .kconfig map's value
        # filled by the load phase
        self.is_set: bool = is_set
        self.addr: int = addr
        self.kernel_btf_id: int = kernel_btf_id
        self.kernel_btf_obj_fd: int = kernel_btf_obj_fd


class ObjectModel(_Record):
    """What the ELF says about the object as a whole: its programs and maps in libbpf's
    order, its externs, BTF and .BTF.ext, and the sections they were read from."""

    __slots__ = (
        "path",
        "name",
        "license",
        "kern_version",
        "functions",
        "map_list",
        "externs",
        "btf",
        "btf_ext",
        "syms",
        "symtab_raw",
        "symtab_shndx",
        "text_shndx",
        "maps_shndx",
        "st_ops_shndx",
        "sec_names",
        "sec_sizes",
        "sec_data",
        "data_secs",
        "kconfig_size",
        "kconfig_map_idx",
    )

    def __init__(
        self,
        path: str,
        name: str = "",
        license: str = "",
        kern_version: int = 0,
        functions: list[ProgramSpec] | None = None,
        map_list: list[MapSpec] | None = None,
        externs: list[Extern] | None = None,
        btf: Any = None,
        btf_ext: Any = None,
        syms: list[Symbol] | None = None,
        symtab_raw: bytes = b"",
        symtab_shndx: int = 0,
        text_shndx: int = -1,
        maps_shndx: int = -1,
        st_ops_shndx: int = -1,
        sec_names: dict[int, str] | None = None,
        sec_sizes: dict[int, int] | None = None,
        sec_data: dict[int, bytes] | None = None,
        data_secs: dict[int, MapKind] | None = None,
        kconfig_size: int = 0,
        kconfig_map_idx: int = -1,
    ):
        self.path: str = path
        self.name: str = name  # the file's base name up to the first dot: the prefix of data map names
        self.license: str = license
        self.kern_version: int = kern_version
        self.functions: list[ProgramSpec] = functions if functions is not None else []  # by section and offset
        self.map_list: list[MapSpec] = (
            map_list if map_list is not None else []
        )  # libbpf's order: the index is the map's idx
        self.externs: list[Extern] = externs if externs is not None else []
        self.btf: Any = btf  # btfedit.EditableBtf, or None
        self.btf_ext: Any = btf_ext  # btfext.BtfExt, or None
        self.syms: list[Symbol] = syms if syms is not None else []
        self.symtab_raw: bytes = symtab_raw
        self.symtab_shndx: int = symtab_shndx
        self.text_shndx: int = text_shndx
        self.maps_shndx: int = maps_shndx
        self.st_ops_shndx: int = st_ops_shndx
        self.sec_names: dict[int, str] = sec_names if sec_names is not None else {}
        self.sec_sizes: dict[int, int] = sec_sizes if sec_sizes is not None else {}
        self.sec_data: dict[int, bytes] = sec_data if sec_data is not None else {}
        self.data_secs: dict[int, MapKind] = data_secs if data_secs is not None else {}  # shndx -> DATA / RODATA / BSS
        self.kconfig_size: int = kconfig_size
        self.kconfig_map_idx: int = kconfig_map_idx

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r}: {len(self.programs)} programs, {len(self.map_list)} maps>"

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
