"""The load phase's second back end: the opened object emitted as a loader program
instead of loaded by syscalls, as libbpf 1.1's bpf_object__load does after
bpf_object__gen_loader().

The steps are the loader's (:mod:`..loader`), in the same order, with what libbpf
changes when it generates:

* every kernel feature counts as supported (nothing is probed, the BTF is not
  sanitized, no program is rewritten for an old kernel);
* the kernel's BTF is not read: typed ``__ksym`` externs and kfuncs are looked up by
  the loader at run time, and so is each BTF-attached program's target;
* CO-RE relocations are not applied but passed on, for the kernel to apply when the
  loader loads the program;
* maps are referred to by index (``BPF_PSEUDO_MAP_IDX``, ``_IDX_VALUE``) into the
  loader's fd_array;
* what the loader cannot do fails as libbpf fails: a prog array's initial programs
  (-EOPNOTSUPP), and a map pinned by name, whose pin libbpf attempts with the
  placeholder fd 0.

Kconfig and kallsyms externs are still read from the running kernel, as libbpf does.
"""

from __future__ import annotations

import errno
import struct

from bpft.kernel.uapi import MAP_IN_MAP_TYPES, MapType, ProgType

from ..errors import LoadError
from ..link import Linked, link_program, relocate_data
from ..loader import load_failure
from ..log import Log
from ..mapcreate import NO_BTF_TYPES
from ..model import INSN, ExternKind, MapKind, MapSpec, ObjectModel, RelocKind
from .emitter import LoaderEmitter
from .layout import BtfKind


class GeneratedLoader:
    """A loader program (``insns``) and its data blob (``data``), for one object: what
    libbpf's gen_loader_opts holds after bpf_object__load. ``nr_maps`` and
    ``nr_progs`` size the context that runs it (:func:`.run.load_and_run`)."""

    __slots__ = ("insns", "data", "nr_maps", "nr_progs")

    def __init__(self, insns: bytes, data: bytes, nr_maps: int, nr_progs: int):
        self.insns, self.data = insns, data
        self.nr_maps, self.nr_progs = nr_maps, nr_progs

    def __repr__(self) -> str:
        return f"<GeneratedLoader: {len(self.insns) // INSN} insns, {len(self.data)} bytes of data>"


def generate_loader(spec: ObjectModel, log: Log) -> GeneratedLoader:
    """Emit the loader of an opened object. Raises :class:`~..errors.LoadError` (after
    libbpf's ``failed to load object`` warning) where libbpf's bpf_object__load fails."""
    gen = LoaderEmitter(log)
    gen.init(len(spec.functions), len(spec.map_list))
    step = "resolve externs"
    try:
        _resolve_externs(spec, log)
        step = "load BTF"
        if spec.btf is not None:
            gen.load_btf(spec.btf.encode())
        step = "init struct_ops"
        _refuse_struct_ops(spec, log)
        step = "create maps"
        _create_maps(spec, gen, log)
        step = "relocate"
        linked = _relocate(spec, log)
        step = "load programs"
        _load_programs(spec, gen, linked, log)
        step = "init prog arrays"
        for m in spec.map_list:
            if m.map_type == MapType.PROG_ARRAY and m.init_slots:
                raise LoadError("a generated loader cannot fill a prog array", map=m.name, errno=errno.EOPNOTSUPP)
        step = "finish"
        err = gen.finish(len(spec.functions), len(spec.map_list))
        if err:
            raise LoadError(log.last_warning or f"loader generation failed: {err}", errno=-err)
    except Exception as e:
        failure = load_failure(e, step, spec.path, log)
        if failure is None:
            raise
        raise failure from None
    return GeneratedLoader(bytes(gen.insns), bytes(gen.data), gen.nr_maps, gen.nr_progs)


def _resolve_externs(spec: ObjectModel, log: Log) -> None:
    """Kconfig values and typeless ksyms as the loader resolves them; typed ksyms and
    kfuncs are left to the loader (set, with BTF id 0)."""
    if not spec.externs:
        return
    from .. import externresolve

    externresolve.resolve_externs(spec, log, kernel_btf=False)


def _refuse_struct_ops(spec: ObjectModel, log: Log) -> None:
    """libbpf 1.1 matches a struct_ops map against the kernel's BTF, which it does not
    read when it generates (bpftool 7.1 crashes there); bpft refuses instead."""
    for m in spec.map_list:
        if m.map_type == MapType.STRUCT_OPS:
            raise log.load_error(
                f"map '{m.name}': struct_ops maps need the kernel's BTF, which a generated loader does not read",
                map=m.name,
                errno=errno.EOPNOTSUPP,
            )


def _create_maps(spec: ObjectModel, gen: LoaderEmitter, log: Log) -> None:
    """bpf_object__create_maps with a generator: each map emitted in index order (a
    map-in-map's inner map just before it), global data maps' initial values and
    freezes, map-in-map slots; a map pinned by name is looked for (a real call) and
    pinned with libbpf's placeholder fd, which fails."""
    from ..cpus import possible_cpus

    index = {id(m): i for i, m in enumerate(spec.map_list)}
    for idx, m in enumerate(spec.map_list):
        max_entries = m.max_entries
        if m.map_type == MapType.PERF_EVENT_ARRAY and not max_entries:
            max_entries = possible_cpus()
            log.debug(f"map '{m.name}': setting size to {max_entries}")
        if m.pin_path and _pinned_map_exists(m, log):
            continue  # libbpf took the pinned map's real fd: the loader will not create it
        if m.map_type in MAP_IN_MAP_TYPES and m.inner is not None:
            _map_create(spec, gen, m.inner, m.inner.max_entries, -1)
        _map_create(spec, gen, m, max_entries, idx)
        log.debug(f"map '{m.name}': created successfully, fd=0")
        if m.kind != MapKind.USER:
            gen.map_update_elem(idx, bytes(m.data or b"").ljust(m.value_size, b"\0")[: m.value_size])
            if m.kind in (MapKind.RODATA, MapKind.KCONFIG):
                gen.map_freeze(idx)
        if m.init_slots and m.map_type != MapType.PROG_ARRAY:
            for slot, target in enumerate(m.init_slots):
                if target is None:
                    continue
                gen.populate_outer_map(idx, slot, index[id(target)])
                log.debug(f"map '{m.name}': slot [{slot}] set to map '{target.name}' fd=0")
        if m.pin_path:
            _pin_placeholder(m, log)


def _map_create(spec: ObjectModel, gen: LoaderEmitter, m: MapSpec, max_entries: int, idx: int) -> None:
    with_btf = spec.btf is not None and m.map_type not in NO_BTF_TYPES
    gen.map_create(
        m.map_type,
        m.name,
        m.key_size,
        m.value_size,
        max_entries,
        map_flags=m.flags,
        map_extra=m.map_extra,
        numa_node=m.numa_node,
        btf_key_type_id=m.key_type_id if with_btf else 0,
        btf_value_type_id=m.value_type_id if with_btf else 0,
        map_idx=idx,
    )


def _pinned_map_exists(m: MapSpec, log: Log) -> bool:
    """bpf_object__reuse_map, which libbpf calls for real while it generates: a map
    already pinned at the map's path (with its definition) is taken, and then missing
    from the loader."""
    import os

    from ..mapcreate import open_pinned

    assert m.pin_path is not None
    try:
        fd = open_pinned(m, m.pin_path, log)
    except OSError as e:
        code = e.errno or errno.EINVAL
        log.warn(f"map '{m.name}': error reusing pinned map")
        log.warn(f"map '{m.name}': failed to create: {os.strerror(code)}({-code})")
        raise LoadError(f"map '{m.name}': error reusing pinned map", map=m.name, errno=code) from None
    if fd is None:
        return False
    os.close(fd)
    log.debug(f"map '{m.name}': skipping creation (preset fd={fd})")
    return True


def _pin_placeholder(m: MapSpec, log: Log) -> None:
    """bpf_map__pin of the placeholder fd 0, as libbpf attempts it: the kernel refuses
    a pin of what is not a BPF object."""
    from ..loaded import pin_fd

    assert m.pin_path is not None
    try:
        pin_fd(log, 0, m.pin_path, None)
    except OSError as e:
        code = e.errno or errno.EINVAL
        log.warn(f"map '{m.name}': failed to auto-pin at '{m.pin_path}': {-code}")
        log.warn(f"map '{m.name}': failed to create: {e.strerror}({-code})")
        raise LoadError(f"map '{m.name}': failed to auto-pin at '{m.pin_path}'", map=m.name, errno=code) from None
    raise LoadError(f"map '{m.name}': pinned a placeholder", map=m.name, errno=errno.EINVAL)


def _relocate(spec: ObjectModel, log: Log) -> list[Linked]:
    """bpf_object__relocate with a generator: CO-RE relocations counted (and recorded
    per program, below), subprograms linked, data references by map index."""
    if spec.btf_ext is not None:
        for sec_name, records in spec.btf_ext.core_relo.by_sec.items():
            log.debug(f"sec '{sec_name}': found {len(records)} CO-RE relocations")
    linked = [link_program(spec, p, log) for p in spec.main_programs()]
    map_indexes = range(len(spec.map_list))
    for program in linked:
        relocate_data(map_indexes, spec.kconfig_map_idx, program, log, by_index=True)
    return linked


def _load_programs(spec: ObjectModel, gen: LoaderEmitter, linked: list[Linked], log: Log) -> None:
    """bpf_object__load_progs with a generator: each program's kernel symbols and CO-RE
    relocations recorded, then its load emitted with its attach target."""
    from ..progload import attach_target_name, kernel_target, load_flags

    prog_index = {id(p): i for i, p in enumerate(spec.functions)}
    func_rec = spec.btf_ext.func_info.rec_size if spec.btf_ext is not None else 0
    line_rec = spec.btf_ext.line_info.rec_size if spec.btf_ext is not None else 0
    with_btf = spec.btf is not None  # func/line info go with the object's BTF only
    for program in linked:
        prog = program.prog
        _record_relos(gen, program)
        if prog.prog_type == ProgType.UNSPEC:
            log.warn(f"prog '{prog.name}': missing BPF prog type, check ELF section name '{prog.sec_name}'")
            raise log.load_error(f"prog '{prog.name}': failed to load: -22", program=prog.name, errno=errno.EINVAL)
        flags, attach_btf = load_flags(prog)
        attach_btf_id = prog.attach_btf_id
        if attach_btf and not attach_btf_id:  # the loader looks it up; 1 stands in for its id
            gen.record_attach_target(*kernel_target(prog.attach_type, attach_target_name(prog, log)))
            attach_btf_id = 1
        func_info = b"".join(program.func_info) if with_btf else b""
        line_info = b"".join(program.line_info) if with_btf else b""
        gen.prog_load(
            prog.prog_type,
            prog.name,
            spec.license,
            bytes(program.insns),
            expected_attach_type=prog.attach_type,
            attach_btf_id=attach_btf_id,
            prog_flags=flags,
            func_info=func_info,
            func_info_rec_size=func_rec if func_info else 0,
            line_info=line_info,
            line_info_rec_size=line_rec if line_info else 0,
            prog_idx=prog_index[id(prog)],
        )


def _record_relos(gen: LoaderEmitter, program: Linked) -> None:
    """bpf_program_record_relos: ksym and kfunc references and CO-RE relocations, in
    instruction order (libbpf's sorted relocation table)."""
    for r in sorted(program.relos, key=lambda r: r.insn_idx):
        e = r.ext
        if r.kind == RelocKind.EXTERN_VAR and e is not None and e.kind == ExternKind.KSYM:
            gen.record_extern(e.name, e.weak, not e.type_id, BtfKind.VAR, r.insn_idx)
        elif r.kind == RelocKind.EXTERN_FUNC and e is not None:
            gen.record_extern(e.name, e.weak, False, BtfKind.FUNC, r.insn_idx)
    for off, raw in sorted(program.core, key=lambda c: c[0]):
        gen.record_relo_core(struct.pack("<I", off) + bytes(raw[4:16]))
