"""What the kernel holds after a load: :class:`LoadedObject`, its programs and maps.

A :class:`LoadedObject` owns one fd per program and map; :meth:`LoadedObject.close`
(or leaving its ``with`` block) closes them all. Pins outlive it: programs and maps
stay in the kernel while they are pinned. Pins are made with libbpf's checks and
messages (bpf_program__pin, bpf_map__pin): the parent directory is created, and must
be on a BPF file system.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from bpft.records import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs start-up: annotations only
    from typing import Any

from bpft.kernel import fs
from bpft.kernel import syscall as sc
from bpft.kernel.uapi import MapType

from .cpus import possible_cpus
from .errors import LoadError
from .log import Log
from .model import MapSpec, ObjectModel, ProgramSpec

_PERCPU_TYPES = (MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE)


def pin_fd(log: Log, fd: int, path: str, what: str | None) -> None:
    """bpf_program__pin (``what`` = "prog 'NAME'") / bpf_map__pin (``what`` None): make
    the parent directory, check it is on bpffs, pin; with libbpf's lines. Raises OSError."""
    parent = fs.c_dirname(path)
    try:
        os.mkdir(parent, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        log.warn(f"failed to mkdir {path}: {e.strerror}")
        raise
    magic = fs.fs_magic(parent)
    if magic is None:
        log.warn(f"failed to statfs {parent}: {os.strerror(errno.ENOENT)}")
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), parent)
    if magic != fs.BPF_FS_MAGIC:
        log.warn(f"specified path {path} is not on BPF FS")
        raise OSError(errno.EINVAL, "not on a BPF file system", path)
    try:
        sc.obj_pin(fd, path)
    except OSError as e:
        log.warn(f"{what}: failed to pin at '{path}': {e.strerror}" if what else f"failed to pin map: {e.strerror}")
        raise
    log.debug(f"{what}: pinned at '{path}'" if what else f"pinned map '{path}'")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class LoadedProgram:
    """A program in the kernel: its ``spec`` (a :class:`~.model.ProgramSpec`) and its ``fd``."""

    __slots__ = ("name", "spec", "fd", "_owner")

    def __init__(self, spec: ProgramSpec, owner: LoadedObject):
        self.name: str = spec.name
        self.spec = spec
        self.fd = -1
        self._owner = owner

    def pin(self, path: str) -> None:
        """Pin at ``path`` (libbpf's bpf_program__pin). Raises :class:`LoadError`."""
        try:
            pin_fd(self._owner.log, self.fd, path, f"prog '{self.name}'")
        except OSError as e:
            raise LoadError(
                f"prog '{self.name}': failed to pin at '{path}'", step="pin", program=self.name, errno=e.errno or 0
            ) from None
        self._owner.pins.append(path)

    def __repr__(self) -> str:
        return f"<LoadedProgram {self.name!r} fd={self.fd}>"


class LoadedMap:
    """A map in the kernel: its ``spec`` (a :class:`~.model.MapSpec`) and its ``fd``.

    Elements are read and written as bytes (:meth:`lookup`, :meth:`update`,
    :meth:`delete`, iteration over keys, :meth:`items`); with ``decode=True``, and BTF
    for the map, as Python values (:mod:`.values`). A key may be given as an ``int``.
    ``reused``: the map was an existing one (``replace_maps`` or a pin by name);
    ``pinned``: the load pinned it (``pinning`` by name) or found it pinned there.
    """

    __slots__ = ("name", "spec", "fd", "pin_path", "pinned", "reused", "_owner")

    def __init__(self, spec: MapSpec, owner: LoadedObject):
        self.name: str = spec.name
        self.spec = spec
        self.fd = -1
        self.pin_path: str | None = spec.pin_path
        self.pinned = False
        self.reused = False
        self._owner = owner

    # -- elements
    def _key(self, key: bytes | int) -> bytes:
        if isinstance(key, int):
            return key.to_bytes(self.spec.key_size, "little")
        return bytes(key)

    @property
    def value_buffer_size(self) -> int:
        """The bytes of a value as lookup() returns and update() takes it: a per-CPU map's
        holds every possible CPU's value, each padded to 8 bytes."""
        if self.spec.map_type in _PERCPU_TYPES:
            return (self.spec.value_size + 7) // 8 * 8 * possible_cpus()
        return self.spec.value_size

    def lookup(self, key: bytes | int, *, decode: bool = False) -> Any:
        """The value at ``key`` (bytes; for a per-CPU map, every CPU's value one after
        another, each padded to 8 bytes), or None when there is none."""
        try:
            raw = sc.map_lookup_elem(self.fd, self._key(key), self.value_buffer_size)
        except sc.BpfError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return self.decode_value(raw) if decode else raw

    def update(self, key: bytes | int, value: bytes, flags: int = 0) -> None:
        """Set ``key`` to ``value`` (BPF_ANY by default). Raises OSError."""
        sc.map_update_elem(self.fd, self._key(key), bytes(value), flags)

    def delete(self, key: bytes | int) -> None:
        """Remove ``key``. Raises OSError (ENOENT when there is no such key)."""
        sc.map_delete_elem(self.fd, self._key(key))

    def keys(self) -> Iterator[bytes]:
        key = None
        while (key := sc.map_get_next_key(self.fd, key, self.spec.key_size)) is not None:
            yield key

    __iter__ = keys

    def items(self, *, decode: bool = False) -> Iterator[tuple[Any, Any]]:
        """(key, value) of each element, as bytes or, with ``decode``, as Python values."""
        for key in self.keys():
            value = self.lookup(key)
            if value is None:  # deleted meanwhile
                continue
            yield (self.decode_key(key), self.decode_value(value)) if decode else (key, value)

    def decode_key(self, raw: bytes) -> Any:
        from . import values

        return values.decode(self._owner.btf, self.spec.key_type_id, raw)

    def decode_value(self, raw: bytes) -> Any:
        """A value as Python data; a per-CPU map's as a list, one per CPU."""
        from . import values

        btf, type_id = self._owner.btf, self.spec.value_type_id
        if self.spec.map_type in _PERCPU_TYPES:
            step = (self.spec.value_size + 7) // 8 * 8
            return [values.decode(btf, type_id, raw[i : i + self.spec.value_size]) for i in range(0, len(raw), step)]
        return values.decode(btf, type_id, raw)

    def pin(self, path: str) -> None:
        """Pin at ``path`` (libbpf's bpf_map__pin). Raises :class:`LoadError`."""
        try:
            pin_fd(self._owner.log, self.fd, path, None)
        except OSError as e:
            raise LoadError(f"failed to pin map at '{path}'", step="pin", map=self.name, errno=e.errno or 0) from None
        self._owner.pins.append(path)

    def __repr__(self) -> str:
        return f"<LoadedMap {self.name!r} fd={self.fd}>"


class LoadedObject:
    """An object in the kernel: ``programs`` and ``maps`` by name (the same order as the
    spec's), each with its fd. A context manager: leaving the block closes every fd;
    what was pinned stays pinned."""

    def __init__(self, spec: ObjectModel, log: Log):
        self.spec = spec
        self.log = log
        self.btf_fd = -1
        self.map_list = [LoadedMap(m, self) for m in spec.map_list]  # the spec's map idx
        self.program_list = [LoadedProgram(p, self) for p in spec.main_programs()]
        self.maps = {m.name: m for m in self.map_list}
        self.programs = {p.name: p for p in self.program_list}
        self.pins: list[str] = []  # made by pin(), pin_maps() and the programs' and maps' pin()
        self._by_spec: dict[int, LoadedMap | LoadedProgram] = {id(m.spec): m for m in self.map_list}
        self._by_spec.update((id(p.spec), p) for p in self.program_list)

    @property
    def btf(self) -> Any:
        """The object's BTF (a :class:`bpft.btf.Btf`), or None."""
        return self.spec.btf.btf if self.spec.btf is not None else None

    def loaded(self, spec: MapSpec | ProgramSpec) -> LoadedMap | LoadedProgram:
        """The loaded map or program of a map or program spec."""
        return self._by_spec[id(spec)]

    def pin(self, directory: str) -> list[str]:
        """Pin every program at ``directory/NAME``, bpftool loadall's layout. On a failure,
        the pins made so far are removed and :class:`LoadError` raised."""
        made: list[str] = []
        for prog in self.program_list:
            path = f"{directory}/{prog.name}"
            try:
                prog.pin(path)
            except LoadError:
                self._remove_pins(made)
                raise
            made.append(path)
        return made

    def pin_maps(self, directory: str) -> list[str]:
        """Pin every map at ``directory/NAME`` (dots become underscores, as bpftool's
        bpf_object__pin_maps does), but a map already pinned by name stays where it is
        (and a different path for it is an error). On a failure, the maps pinned so far
        are unpinned and :class:`LoadError` raised."""
        made: list[str] = []
        try:
            for m in self.map_list:
                path = f"{directory}/{m.name}".replace(".", "_")
                if m.pin_path and m.pinned:
                    if path != m.pin_path:
                        raise self.log.load_error(
                            f"map '{m.name}' already has pin path '{m.pin_path}' different from '{path}'",
                            step="pin",
                            map=m.name,
                            errno=errno.EINVAL,
                        )
                    self.log.debug(f"map '{m.name}' already pinned at '{m.pin_path}'; not re-pinning")
                    continue
                m.pin(path)
                made.append(path)
        except LoadError:
            self._remove_pins(made)
            raise
        return made

    def _remove_pins(self, paths: list[str]) -> None:
        for path in reversed(paths):
            _unlink(path)
            self.pins.remove(path)

    def unpin(self) -> None:
        """Remove every pin this object made: with pin(), pin_maps() and at load (maps
        pinned by name that the load created)."""
        for path in reversed(self.pins):
            _unlink(path)
        self.pins.clear()
        for m in self.map_list:
            if m.pinned and not m.reused and m.pin_path:
                _unlink(m.pin_path)
                m.pinned = False

    def close(self) -> None:
        """Close every fd (programs, maps, the BTF); pins stay."""
        held: list[LoadedMap | LoadedProgram] = [*self.program_list, *self.map_list]
        for loaded in held:
            if loaded.fd >= 0:
                os.close(loaded.fd)
                loaded.fd = -1
        if self.btf_fd >= 0:
            os.close(self.btf_fd)
            self.btf_fd = -1

    def __enter__(self) -> LoadedObject:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LoadedObject {self.spec.path!r}: {len(self.programs)} programs, {len(self.maps)} maps>"
