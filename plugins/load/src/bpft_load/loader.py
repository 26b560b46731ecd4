"""The load phase: libbpf 1.1's bpf_object__load, one named step after another.

:func:`load_object` takes an opened object (an :class:`~.objectspec.ObjectSpec`) and
returns a :class:`~.loaded.LoadedObject`: replacement maps taken over, kernel features
probed, the BTF sanitized and loaded, externs resolved, struct_ops made to match the
kernel, maps created (or reused, and pinned by name), programs linked with their
subprograms, CO-RE relocated, their data references pointed at the maps, loaded,
read-only data bound to them, and prog arrays filled. A failure raises
:class:`~.errors.LoadError` naming the step, after closing everything made so far
(and unpinning the maps it pinned).
"""

from __future__ import annotations

import ctypes
import os
import struct

from bpft.kernel import syscall as sc
from bpft.kernel.uapi import MapType, ProgType

from .errors import LoadError, OpenError
from .link import Linked, link_program, relocate_data
from .loaded import LoadedObject
from .log import Log
from .mapcreate import create_maps, init_prog_arrays
from .model import ExternKind, MapKind, ObjectModel
from .progload import LOG_BUF_SIZE, load_program

# program types whose load needs the kernel's BTF (no freplace target can be given here)
_VMLINUX_BTF_PROG_TYPES = (ProgType.TRACING, ProgType.STRUCT_OPS, ProgType.LSM)
# what malformed input that got past the open phase can raise while it is parsed here
# (.BTF.ext records, CO-RE access strings): a LoadError, never a traceback
_MALFORMED = (struct.error, ValueError, LookupError)


class _BindAttr(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("map_fd", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


def load_object(
    spec: ObjectModel, log: Log, *, replace_maps: dict[str, int], kernel_log_level: int = 0, ifindex: int = 0
) -> LoadedObject:
    """Put ``spec`` into the kernel. See :meth:`~.objectspec.ObjectSpec.load`."""
    obj = LoadedObject(spec, log)
    step = "reuse maps"
    try:
        reuse_maps(obj, replace_maps)
        step = "probe features"
        probe_features(obj, log)
        if log.debug_on and _needs_vmlinux_btf(spec):
            log.debug("loading kernel BTF '/sys/kernel/btf/vmlinux': 0")
        step = "resolve externs"
        resolve_externs(spec, log)
        step = "sanitize BTF"
        raw_btf = sanitize_btf(obj, log)
        step = "load BTF"
        load_btf(obj, raw_btf, log)
        step = "init struct_ops"
        init_kern_struct_ops(spec, log)
        step = "create maps"
        create_maps(obj, log, ifindex)
        step = "relocate"
        linked = [link_program(spec, p.spec, log) for p in obj.program_list]
        step = "CO-RE"
        apply_core_relos(spec, linked, log)
        step = "relocate data"
        map_fds = [m.fd for m in obj.map_list]
        for program in linked:
            relocate_data(map_fds, spec.kconfig_map_idx, program, log)
        step = "load programs"
        load_programs(obj, linked, log, kernel_log_level, ifindex)
        step = "init prog arrays"
        init_prog_arrays(obj, log)
    except BaseException as e:
        obj.unpin()
        obj.close()
        failure = load_failure(e, step, spec.path, log)
        if failure is None:
            raise
        raise failure from None
    return obj


def load_failure(e: BaseException, step: str, path: str, log: Log) -> LoadError | None:
    """The :class:`LoadError` that an exception raised in load step ``step`` becomes, after
    libbpf's closing ``failed to load object`` warning (none for a failed map reuse,
    which bpftool reports itself); None for an exception that is not a load failure (a
    bug, or KeyboardInterrupt), to be raised as it is."""
    if isinstance(e, LoadError | OpenError):
        failure = e if isinstance(e, LoadError) else LoadError(str(e), program=e.program, map=e.map, errno=e.errno)
        failure.message = failure.message or log.last_warning
    elif isinstance(e, sc.BpfError):
        failure = LoadError(log.last_warning or str(e), errno=e.errno or 0)
    elif isinstance(e, OSError):
        message = f"failed to load object '{path}': {e.strerror or e}"
        log.warn(message)
        return LoadError(message, step=step, path=path, errno=e.errno or 0)
    elif isinstance(e, _MALFORMED):
        message = f"failed to load object '{path}': malformed object ({e or type(e).__name__})"
        log.warn(message)
        return LoadError(message, step=step, path=path)
    else:
        return None
    failure.step, failure.path = failure.step or step, path
    if step != "reuse maps":  # bpftool reports a failed reuse itself, before loading
        log.warn(f"failed to load object '{path}'")
    return failure


def reuse_maps(obj: LoadedObject, replace_maps: dict[str, int]) -> None:
    """libbpf's bpf_map__reuse_fd for each replacement: the existing map's definition and
    a duplicate of its fd (the caller keeps its own)."""
    if not replace_maps:
        return
    from bpft.kernel import info as kernel_info  # (its ctypes layouts cost an import only reuse needs)

    for name, fd in replace_maps.items():
        m = obj.maps.get(name)
        if m is None:
            raise LoadError(f"no map '{name}' to replace", map=name)
        try:
            info = kernel_info.map_info(fd)
            m.fd = os.dup(fd)
        except OSError as e:
            raise LoadError(f"map '{name}': cannot reuse fd {fd}: {e.strerror}", map=name, errno=e.errno or 0) from None
        m.reused = True
        m.pin_path = None
        spec = m.spec
        spec.name = info.name.decode(errors="replace") if isinstance(info.name, bytes) else str(info.name)
        m.name = spec.name
        spec.map_type = info.type
        spec.key_size = info.key_size
        spec.value_size = info.value_size
        spec.max_entries = info.max_entries
        spec.flags = info.map_flags
        spec.key_type_id = info.btf_key_type_id
        spec.value_type_id = info.btf_value_type_id
        spec.init_slots = []
    obj.maps = {m.name: m for m in obj.map_list}  # a replaced map has the existing map's name


def resolve_externs(spec: ObjectModel, log: Log) -> None:
    """Each extern's value from the running kernel (:mod:`.externresolve`, imported only
    for an object that has externs)."""
    if spec.externs:
        from . import externresolve

        externresolve.resolve_externs(spec, log)


def init_kern_struct_ops(spec: ObjectModel, log: Log) -> None:
    """The struct_ops maps made to match the kernel's structs (:mod:`.structops`, imported
    only for an object that has them)."""
    if any(m.map_type == MapType.STRUCT_OPS for m in spec.map_list):
        from . import structops

        structops.init_kern_struct_ops(spec, log)


def probe_features(obj: LoadedObject, log: Log) -> None:
    """libbpf's bpf_object__probe_loading: before 5.11 BPF memory is charged to
    RLIMIT_MEMLOCK, which is raised first (:mod:`bpft.kernel.memlock`). What the kernel
    supports is probed on first use, once per process (:mod:`.features`)."""
    from bpft.kernel.memlock import bump_memlock_rlimit

    bump_memlock_rlimit()


def sanitize_btf(obj: LoadedObject, log: Log) -> bytes | None:
    """libbpf's bpf_object__sanitize_and_load_btf, first half: the object's BTF as the
    kernel will accept it (the raw blob, or None without BTF), with the kinds this kernel
    lacks replaced in a copy as libbpf does (:mod:`.btfsanitize`)."""
    if obj.spec.btf is None:
        return None
    from .btfsanitize import sanitize

    return sanitize(obj.spec.btf.encode())


def load_btf(obj: LoadedObject, raw_btf: bytes | None, log: Log) -> None:
    """BPF_BTF_LOAD of the object's BTF; a refusal is a warning (BTF is optional) and the
    object loads without it."""
    if raw_btf is None:
        return
    try:
        obj.btf_fd = sc.btf_load(raw_btf, log_size=LOG_BUF_SIZE if log.debug_on else 0)
    except sc.BpfError:
        try:
            sc.btf_load(raw_btf, log_size=1 << 20)
        except sc.BpfError as again:
            error = again
        log.warn(f"Error loading .BTF into kernel: {-error.errno}. BTF is optional, ignoring.")
        if error.log:
            log.warn(f"-- BEGIN BTF LOAD LOG ---\n{error.log}\n-- END BTF LOAD LOG --")
        obj.btf_fd = -1


def apply_core_relos(spec: ObjectModel, linked: list[Linked], log: Log) -> None:
    """libbpf's bpf_object__relocate_core: each program's CO-RE relocations against the
    running kernel's BTF."""
    if not any(program.core for program in linked):
        return
    from . import corerelo

    btf = spec.btf.btf
    target = corerelo.kernel_target()
    for program in linked:
        if not program.core:
            continue
        relos = []
        for off, raw in program.core:
            _off, type_id, access_off, kind = struct.unpack_from("<IIII", raw)
            relos.append(corerelo.CoreRelo(off, type_id, spec.btf.str_at(access_off), kind))
        debug = log.debug if log.debug_on else None
        if debug:
            debug(f"sec '{program.prog.sec_name}': found {len(relos)} CO-RE relocations")
        try:
            corerelo.apply_core_relos(
                program.insns, relos, btf, target, prog_name=program.prog.name, log=debug, warn=log.warn
            )
        except corerelo.CoreReloError as e:
            raise log.load_error(f"prog '{program.prog.name}': relo failed: {e}", program=program.prog.name) from None


def load_programs(obj: LoadedObject, linked: list[Linked], log: Log, kernel_log_level: int, ifindex: int) -> None:
    """Load each program, then bind the read-only data maps to it (BPF_PROG_BIND_MAP), as
    libbpf does so that the kernel keeps them with the program."""
    rodata = [m for m in obj.map_list if m.spec.kind == MapKind.RODATA]
    for program, loaded in zip(linked, obj.program_list, strict=True):
        loaded.fd = load_program(obj.spec, program, obj.btf_fd, log, kernel_log_level, ifindex)
        for m in rodata:
            try:
                sc.bpf(sc.PROG_BIND_MAP, _BindAttr(prog_fd=loaded.fd, map_fd=m.fd))
            except sc.BpfError as e:
                log.warn(f"prog '{loaded.name}': failed to bind map '{m.name}': {e.strerror}")


def _needs_vmlinux_btf(spec: ObjectModel) -> bool:
    """libbpf's obj_needs_vmlinux_btf(): when bpf_object__load reads the kernel's BTF."""
    if spec.btf_ext is not None and spec.btf_ext.core_relo.by_sec:
        return True
    if any(e.kind == ExternKind.KSYM and e.type_id for e in spec.externs):
        return True
    return any(p.prog_type in _VMLINUX_BTF_PROG_TYPES for p in spec.main_programs())
