"""The load step "create maps": libbpf 1.1's bpf_object__create_maps, and the initial
slots of prog arrays once the programs are loaded (bpf_object__init_prog_arrays).

A map pinned by name reuses the map pinned there when its definition matches, or is
pinned there once created. Global data maps get their initial value; read-only ones
are frozen. Map-in-map slots get their inner maps.
"""

from __future__ import annotations

import errno
import functools
import os
import struct

from bpft.kernel import syscall as sc
from bpft.kernel.uapi import MAP_IN_MAP_TYPES, MapType

from .cpus import possible_cpus
from .errors import LoadError
from .loaded import LoadedMap, LoadedObject
from .log import Log
from .model import MapKind, MapSpec

# map types the kernel creates without key/value BTF (libbpf leaves it off for them)
NO_BTF_TYPES = frozenset(
    {
        MapType.PERF_EVENT_ARRAY,
        MapType.CGROUP_ARRAY,
        MapType.STACK_TRACE,
        MapType.ARRAY_OF_MAPS,
        MapType.HASH_OF_MAPS,
        MapType.DEVMAP,
        MapType.DEVMAP_HASH,
        MapType.CPUMAP,
        MapType.XSKMAP,
        MapType.SOCKMAP,
        MapType.SOCKHASH,
        MapType.QUEUE,
        MapType.STACK,
    }
)


def create_maps(obj: LoadedObject, log: Log, ifindex: int = 0) -> None:
    """Create (or reuse) every map. Raises :class:`~.errors.LoadError` with the map's name."""
    for m in obj.map_list:
        try:
            _create_or_reuse(obj, m, log, ifindex)
        except sc.BpfError as e:
            raise _error(e, m.name, log) from None


def _error(e: OSError, map_name: str, log: Log) -> LoadError:
    """The LoadError of a failed map call: libbpf's warning about it, and its errno."""
    return LoadError(log.last_warning or f"map '{map_name}': {e.strerror}", map=map_name, errno=e.errno or 0)


def _create_or_reuse(obj: LoadedObject, m: LoadedMap, log: Log, ifindex: int) -> None:
    spec = m.spec
    if m.pin_path and not m.reused:
        _reuse_pinned(m, m.pin_path, log)
    if m.fd >= 0:
        log.debug(f"map '{m.name}': skipping creation (preset fd={m.fd})")
    else:
        try:
            m.fd = _create_one(obj, spec, log, ifindex if spec.map_type != MapType.PERF_EVENT_ARRAY else 0)
        except sc.BpfError as e:
            log.warn(f"map '{m.name}': failed to create: {e.strerror}({-e.errno})")
            raise
        log.debug(f"map '{m.name}': created successfully, fd={m.fd}")
        if spec.kind != MapKind.USER:
            try:
                sc.map_update_elem(m.fd, b"\0\0\0\0", bytes(spec.data or b"\0" * spec.value_size))
            except sc.BpfError as e:
                log.warn(f"Error setting initial map({m.name}) contents: {e.strerror}")
                raise
            if spec.kind in (MapKind.RODATA, MapKind.KCONFIG):
                try:
                    sc.map_freeze(m.fd)
                except sc.BpfError as e:
                    log.warn(f"Error freezing map({m.name}) as read-only: {e.strerror}")
                    raise
        if spec.map_type in MAP_IN_MAP_TYPES and spec.init_slots:
            fill_slots(obj, m, "map", log)
    if m.pin_path and not m.pinned:
        try:
            sc.obj_pin(m.fd, m.pin_path)
        except sc.BpfError as e:
            log.warn(f"map '{m.name}': failed to auto-pin at '{m.pin_path}': {e.strerror}")
            raise
        m.pinned = True
        log.debug(f"pinned map '{m.pin_path}'")


def _create_one(obj: LoadedObject, spec: MapSpec, log: Log, ifindex: int) -> int:
    inner_fd = -1
    try:
        if spec.map_type in MAP_IN_MAP_TYPES:
            if spec.inner is None:
                log.warn(f"map '{spec.name}': map-in-map without inner map definition")
                raise sc.BpfError(errno.EINVAL, sc.MAP_CREATE)
            inner_fd = _create_one(obj, spec.inner, log, 0)
        return _map_create(obj, spec, log, ifindex, max(inner_fd, 0))
    finally:
        if inner_fd >= 0:  # the outer map holds the inner map's definition now
            os.close(inner_fd)


def _map_create(obj: LoadedObject, spec: MapSpec, log: Log, ifindex: int, inner_fd: int) -> int:
    max_entries = spec.max_entries
    if spec.map_type == MapType.PERF_EVENT_ARRAY and not max_entries:
        max_entries = possible_cpus()
    btf_fd = max(obj.btf_fd, 0)
    key_id, value_id = spec.key_type_id, spec.value_type_id
    vmlinux_value_id = spec.vmlinux_value_type_id if spec.map_type == MapType.STRUCT_OPS else 0
    if spec.map_type in NO_BTF_TYPES or not btf_fd:
        btf_fd, key_id, value_id = 0, 0, 0
    if btf_fd and not (key_id or value_id or vmlinux_value_id):
        btf_fd = 0
    create = functools.partial(
        sc.map_create,
        spec.map_type,
        spec.key_size,
        spec.value_size,
        max_entries,
        name=spec.name[:15],
        flags=spec.flags,
        inner_map_fd=inner_fd,
        numa_node=spec.numa_node,
        map_extra=spec.map_extra,
        ifindex=ifindex,
        btf_vmlinux_value_type_id=vmlinux_value_id,
    )
    try:
        return create(btf_fd=btf_fd, btf_key_type_id=key_id, btf_value_type_id=value_id)
    except sc.BpfError as e:
        if not btf_fd:
            raise
        log.warn(f"Error in bpf_create_map_xattr({spec.name}):{e.strerror}({-e.errno}). Retrying without BTF.")
        return create()


def _reuse_pinned(m: LoadedMap, pin_path: str, log: Log) -> None:
    """libbpf's bpf_object__reuse_map: the map pinned at ``pin_path`` (the map's), if its
    definition is the spec's."""
    fd = open_pinned(m.spec, pin_path, log)
    if fd is not None:
        m.fd = fd
        m.reused = True
        m.pinned = True


def open_pinned(spec: MapSpec, pin_path: str, log: Log) -> int | None:
    """The fd of the map pinned at ``pin_path``, checked to have ``spec``'s definition;
    None when nothing is pinned there. Raises OSError (BpfError) after libbpf's warning."""
    try:
        fd = sc.obj_get(pin_path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            log.debug(f"found no pinned map to reuse at '{pin_path}'")
            return None
        log.warn(f"couldn't retrieve pinned map '{pin_path}': {e.strerror}")
        raise
    from bpft.kernel import info as kernel_info  # only a map pinned by name needs it

    try:
        info = kernel_info.map_info(fd)
    except OSError:
        os.close(fd)
        raise
    if (
        info.type != spec.map_type
        or info.key_size != spec.key_size
        or info.value_size != spec.value_size
        or info.max_entries != spec.max_entries
        or info.map_flags != spec.flags
    ):
        os.close(fd)
        log.warn(f"couldn't reuse pinned map at '{pin_path}': parameter mismatch")
        raise sc.BpfError(errno.EINVAL, sc.OBJ_GET)
    log.debug(f"reused pinned map at '{pin_path}'")
    return fd


def init_prog_arrays(obj: LoadedObject, log: Log) -> None:
    """The initial programs of prog arrays (``.rel.maps`` slots), once they are loaded."""
    for m in obj.map_list:
        if m.spec.map_type == MapType.PROG_ARRAY and m.spec.init_slots:
            try:
                fill_slots(obj, m, "prog", log)
            except sc.BpfError as e:
                raise _error(e, m.name, log) from None


def fill_slots(obj: LoadedObject, m: LoadedMap, what: str, log: Log) -> None:
    """Write the initial values of a map-in-map (``what`` "map") or prog array ("prog"):
    slot i = its target's fd."""
    for i, target_spec in enumerate(m.spec.init_slots):
        if target_spec is None:
            continue
        target = obj.loaded(target_spec)
        try:
            sc.map_update_elem(m.fd, struct.pack("<I", i), struct.pack("<I", target.fd))
        except sc.BpfError as e:
            log.warn(
                f"map '{m.name}': failed to initialize slot [{i}] to {what} '{target.name}' fd={target.fd}: {e.strerror}"
            )
            raise
        log.debug(f"map '{m.name}': slot [{i}] set to {what} '{target.name}' fd={target.fd}")
