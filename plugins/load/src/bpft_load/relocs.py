"""The open step "collect relocations": libbpf 1.1's bpf_object__collect_relos.

Each relocation of an executable section is recorded on the program it falls in, as
a :class:`~.model.Relocation` that says what it points at (a map, global data, an
extern, a subprogram); ``.rel.maps`` and ``.rel.struct_ops`` go to :mod:`.mapdefs`.
"""

from __future__ import annotations

from .elfread import SHN_UNDEF, STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FUNC, STT_SECTION, read_rels
from .log import Log
from .mapdefs import collect_map_relos, collect_st_ops_relos
from .model import INSN, MapKind, ObjectModel, ProgramSpec, Relocation, RelocKind, Symbol, find_prog_by_sec_insn

BPF_JMP_CALL, BPF_LD_IMM64 = 0x85, 0x18  # opcodes
BPF_PSEUDO_CALL = 1


def collect_relos(obj: ObjectModel, relo_sections: list, log: Log) -> None:
    for section in relo_sections:
        _collect_section_relos(obj, section, log)


def _collect_section_relos(obj: ObjectModel, section, log: Log) -> None:
    name = section.name
    target = section["sh_info"]
    data = obj.sec_data[section.index]
    target_name = obj.sec_names.get(target, "")
    if name == ".rel.maps":
        collect_map_relos(obj, data, log)
        return
    if target == obj.st_ops_shndx:
        collect_st_ops_relos(obj, data, log)
        return
    log.debug(f"sec '{name}': collecting relocation for section({target}) '{target_name}'")
    sec_size = obj.sec_sizes.get(target, 0)
    for i, (r_offset, sym_idx, _rtype) in enumerate(read_rels(data)):
        if sym_idx >= len(obj.syms):
            raise log.open_error(f"sec '{name}': symbol #{sym_idx} not found for relo #{i}")
        if r_offset % INSN or r_offset >= sec_size:
            raise log.open_error(f"sec '{name}': invalid offset 0x{r_offset:x} for relo #{i}")
        sym = obj.syms[sym_idx]
        insn_idx = r_offset // INSN
        sym_name = obj.sec_names.get(sym.shndx, "") if sym.type == STT_SECTION else sym.name
        log.debug(f"sec '{name}': relo #{i}: insn #{insn_idx} against '{sym_name}'")
        prog = find_prog_by_sec_insn(obj, target, insn_idx)
        if prog is None:
            log.debug(
                f"sec '{name}': relo #{i}: couldn't find program in section '{target_name}' for insn #{insn_idx}, "
                "probably overridden weak function, skipping..."
            )
            continue
        _record_reloc(obj, prog, insn_idx - prog.sec_insn_off, sym_name, sym, log)


def _record_reloc(obj: ObjectModel, prog: ProgramSpec, insn_idx: int, sym_name: str, sym: Symbol, log: Log) -> None:
    off = insn_idx * INSN
    code = prog.insns[off]
    src = prog.insns[off + 1] >> 4
    is_call = code == BPF_JMP_CALL
    is_ldimm64 = code == BPF_LD_IMM64
    shndx = sym.shndx
    if is_ldimm64 and off + 16 > len(prog.insns):
        raise log.open_error(f"prog '{prog.name}': invalid relo against '{sym_name}' for insns[{insn_idx}]")
    if shndx == SHN_UNDEF and sym.bind in (STB_GLOBAL, STB_WEAK):
        ext = next((e for e in obj.externs if e.sym.index == sym.index), None)
        if ext is None:
            raise log.open_error(
                f"prog '{prog.name}': extern relo failed to find extern for '{sym_name}' ({sym.index})"
            )
        kind = RelocKind.EXTERN_FUNC if is_call else RelocKind.EXTERN_VAR
        if not is_call and not is_ldimm64:
            raise log.open_error(f"prog '{prog.name}': invalid relo for insns[{insn_idx}] against extern '{sym_name}'")
        log.debug(
            f"prog '{prog.name}': found extern #{obj.externs.index(ext)} '{ext.name}' (sym {sym.index}) for insn #{insn_idx}"
        )
        prog.relos.append(Relocation(kind, insn_idx, ext=ext, sym_name=sym_name))
        return
    if is_call:
        if src != BPF_PSEUDO_CALL:
            raise log.open_error(f"prog '{prog.name}': incorrect bpf_call opcode")
        if not shndx or shndx != obj.text_shndx:
            raise log.open_error(
                f"prog '{prog.name}': bad call relo against '{sym_name}' in section '{obj.sec_names.get(shndx, '')}'"
            )
        if sym.value % INSN:
            raise log.open_error(f"prog '{prog.name}': bad call relo against '{sym_name}' at offset {sym.value}")
        prog.relos.append(Relocation(RelocKind.CALL, insn_idx, sym_off=sym.value, sym_name=sym_name))
        return
    if not is_ldimm64:
        raise log.open_error(
            f"prog '{prog.name}': invalid relo against '{sym_name}' for insns[{insn_idx}].code 0x{code:x}"
        )
    if shndx == obj.text_shndx and (
        (sym.bind == STB_LOCAL and sym.type == STT_SECTION) or (sym.bind == STB_GLOBAL and sym.type == STT_FUNC)
    ):
        prog.relos.append(Relocation(RelocKind.SUBPROG_ADDR, insn_idx, sym_off=sym.value, sym_name=sym_name))
        return
    if shndx in obj.data_secs:
        data_kind = obj.data_secs[shndx]
        for i, m in enumerate(obj.map_list):
            if m.kind == data_kind and m.sec_idx == shndx:
                log.debug(
                    f"prog '{prog.name}': found data map {i} ({m.name}, sec {shndx}, off {m.sec_offset}) for insn {insn_idx}"
                )
                prog.relos.append(Relocation(RelocKind.DATA, insn_idx, map_idx=i, sym_off=sym.value, sym_name=sym_name))
                return
        raise log.open_error(f"prog '{prog.name}': data relo for insn[{insn_idx}] points to missing map '{sym_name}'")
    if shndx == obj.maps_shndx and obj.maps_shndx > 0:
        for i, m in enumerate(obj.map_list):
            if m.kind == MapKind.USER and m.sec_idx == shndx and m.sec_offset == sym.value:
                log.debug(
                    f"prog '{prog.name}': found map {i} ({m.name}, sec {shndx}, off {sym.value}) for insn #{insn_idx}"
                )
                prog.relos.append(Relocation(RelocKind.LD64, insn_idx, map_idx=i, sym_name=sym_name))
                return
        raise log.open_error(
            f"prog '{prog.name}': map relo failed to find map for section '{obj.sec_names.get(shndx, '')}', off {sym.value}"
        )
    raise log.open_error(f"prog '{prog.name}': bad data relo against section '{obj.sec_names.get(shndx, '')}'")
