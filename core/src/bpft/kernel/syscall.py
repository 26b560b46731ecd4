"""The bpf(2) system call, through ctypes.

Every kernel command bpft issues goes through :func:`bpf`. Each command has a
small ``ctypes.Structure`` for its part of ``union bpf_attr`` (the layouts are
the kernel's UAPI, ``include/uapi/linux/bpf.h``) and a thin wrapper that fills
it, calls the kernel and turns a failure into :class:`BpfError`.

Nothing here prints or formats: callers decide what an errno means to a user.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os

# bpf(2) syscall numbers by machine.
_NR_BPF = {
    "x86_64": 321,
    "aarch64": 280,
    "arm64": 280,
    "riscv64": 280,
    "s390x": 351,
    "ppc64le": 361,
    "i686": 357,
    "armv7l": 386,
}

# enum bpf_cmd
MAP_CREATE = 0
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
MAP_DELETE_ELEM = 3
MAP_GET_NEXT_KEY = 4
PROG_LOAD = 5
OBJ_PIN = 6
OBJ_GET = 7
PROG_ATTACH = 8
PROG_DETACH = 9
PROG_TEST_RUN = 10
PROG_GET_NEXT_ID = 11
MAP_GET_NEXT_ID = 12
PROG_GET_FD_BY_ID = 13
MAP_GET_FD_BY_ID = 14
OBJ_GET_INFO_BY_FD = 15
PROG_QUERY = 16
RAW_TRACEPOINT_OPEN = 17
BTF_LOAD = 18
BTF_GET_FD_BY_ID = 19
TASK_FD_QUERY = 20
MAP_LOOKUP_AND_DELETE_ELEM = 21
MAP_FREEZE = 22
BTF_GET_NEXT_ID = 23
LINK_CREATE = 28
LINK_UPDATE = 29
LINK_GET_FD_BY_ID = 30
LINK_GET_NEXT_ID = 31
ENABLE_STATS = 32
ITER_CREATE = 33
LINK_DETACH = 34
PROG_BIND_MAP = 35

# enum bpf_stats_type
STATS_RUN_TIME = 0

# BPF_F_* flags used by bpft
F_RDONLY_PROG = 1 << 7  # map_flags: read-only for programs
F_MMAPABLE = 1 << 10

_u8, _u32, _s32, _u64 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64


class BpfError(OSError):
    """A bpf(2) command failed; ``errno`` and ``strerror`` as for OSError.

    ``log`` carries the kernel's verifier or BTF log when the command had one.
    """

    errno: int  # always set from the failed call (OSError's own is Optional)

    def __init__(self, err: int, cmd: int, log: str = ""):
        super().__init__(err, os.strerror(err))
        self.cmd = cmd
        self.log = log


def _load_libc():
    lib = ctypes.CDLL(None, use_errno=True)
    fn = lib.syscall
    fn.restype = ctypes.c_long
    fn.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_ulong]
    return fn


_syscall = _load_libc()
_nr = _NR_BPF.get(os.uname().machine, 321)


def _load_hot_syscall():
    """syscall(2) without argtypes, for the per-object commands of long listings.

    Converting arguments through ``argtypes`` doubles the cost of a call
    (~1.2 µs against ~0.6 µs here). Callers pass the number, command and
    size as Python ints (libffi widens them to the registers' width) and the
    attr as a prebuilt ``c_void_p``.
    """
    fn = ctypes.CDLL(None, use_errno=True).syscall  # its own function object: _syscall keeps its argtypes
    fn.restype = ctypes.c_long
    return fn


_hot_syscall = _load_hot_syscall()


def _load_quick_syscall():
    """syscall(2) for calls made once per object in long listings, ~0.2 µs cheaper than
    :data:`_hot_syscall`: it keeps the GIL (these commands never block) and does not
    save errno. A caller repeats a failed call through ``_hot_syscall`` for its errno."""
    fn = ctypes.PyDLL(None).syscall
    fn.restype = ctypes.c_long
    return fn


_quick_syscall = _load_quick_syscall()


def bpf(cmd: int, attr: ctypes.Structure | ctypes.Array[ctypes.c_char]) -> int:
    """Issue ``bpf(cmd, &attr, sizeof(attr))``; return the result or raise BpfError.

    ``attr`` is a layout of :mod:`ctypes`, or raw bytes (a ``c_char`` array over a
    bytearray) for a caller that packs the attr itself."""
    ret = _syscall(_nr, cmd, ctypes.addressof(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError(err, cmd)
    return ret


def addr(buf) -> int:
    """Address of a ctypes buffer (or 0 for None), as the kernel's __aligned_u64."""
    return 0 if buf is None else ctypes.addressof(buf)


# --- attribute layouts --------------------------------------------------------


class _IdAttr(ctypes.Structure):
    """*_GET_NEXT_ID and *_GET_FD_BY_ID."""

    _fields_ = [("id", _u32), ("next_id", _u32), ("open_flags", _u32)]


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", _u32), ("info_len", _u32), ("info", _u64)]


class _ObjAttr(ctypes.Structure):
    """OBJ_PIN and OBJ_GET."""

    _fields_ = [("pathname", _u64), ("bpf_fd", _u32), ("file_flags", _u32), ("path_fd", _s32)]


class _ElemAttr(ctypes.Structure):
    _fields_ = [("map_fd", _u32), ("_pad", _u32), ("key", _u64), ("value", _u64), ("flags", _u64)]


class MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", _u32),
        ("key_size", _u32),
        ("value_size", _u32),
        ("max_entries", _u32),
        ("map_flags", _u32),
        ("inner_map_fd", _u32),
        ("numa_node", _u32),
        ("map_name", ctypes.c_char * 16),
        ("map_ifindex", _u32),
        ("btf_fd", _u32),
        ("btf_key_type_id", _u32),
        ("btf_value_type_id", _u32),
        ("btf_vmlinux_value_type_id", _u32),
        ("map_extra", _u64),
    ]


class ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", _u32),
        ("insn_cnt", _u32),
        ("insns", _u64),
        ("license", _u64),
        ("log_level", _u32),
        ("log_size", _u32),
        ("log_buf", _u64),
        ("kern_version", _u32),
        ("prog_flags", _u32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", _u32),
        ("expected_attach_type", _u32),
        ("prog_btf_fd", _u32),
        ("func_info_rec_size", _u32),
        ("func_info", _u64),
        ("func_info_cnt", _u32),
        ("line_info_rec_size", _u32),
        ("line_info", _u64),
        ("line_info_cnt", _u32),
        ("attach_btf_id", _u32),
        ("attach_prog_fd", _u32),  # also attach_btf_obj_fd
        ("core_relo_cnt", _u32),
        ("fd_array", _u64),
        ("core_relos", _u64),
        ("core_relo_rec_size", _u32),
        ("log_true_size", _u32),
    ]


class _BtfLoadAttr(ctypes.Structure):
    _fields_ = [
        ("btf", _u64),
        ("btf_log_buf", _u64),
        ("btf_size", _u32),
        ("btf_log_size", _u32),
        ("btf_log_level", _u32),
        ("btf_log_true_size", _u32),
    ]


class _AttachAttr(ctypes.Structure):
    """PROG_ATTACH and PROG_DETACH."""

    _fields_ = [
        ("target_fd", _u32),
        ("attach_bpf_fd", _u32),
        ("attach_type", _u32),
        ("attach_flags", _u32),
        ("replace_bpf_fd", _u32),
    ]


class TestRunAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", _u32),
        ("retval", _u32),
        ("data_size_in", _u32),
        ("data_size_out", _u32),
        ("data_in", _u64),
        ("data_out", _u64),
        ("repeat", _u32),
        ("duration", _u32),
        ("ctx_size_in", _u32),
        ("ctx_size_out", _u32),
        ("ctx_in", _u64),
        ("ctx_out", _u64),
        ("flags", _u32),
        ("cpu", _u32),
        ("batch_size", _u32),
    ]


class _RawTpAttr(ctypes.Structure):
    _fields_ = [("name", _u64), ("prog_fd", _u32), ("_pad", _u32), ("cookie", _u64)]


class LinkCreateAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", _u32),
        ("target_fd", _u32),  # also target_ifindex
        ("attach_type", _u32),
        ("flags", _u32),
        ("target_btf_id", _u32),  # first word of the per-type union
        ("_u1", _u32),
        ("_u2", _u64),
        ("_u3", _u64),
        ("_u4", _u64),
    ]


class _StatsAttr(ctypes.Structure):
    _fields_ = [("type", _u32)]


class _FdAttr(ctypes.Structure):
    """MAP_FREEZE and other commands that take one fd."""

    _fields_ = [("fd", _u32)]


# --- commands -----------------------------------------------------------------


_id_attr = _IdAttr()
_id_attr_ptr = ctypes.c_void_p(ctypes.addressof(_id_attr))
_id_attr_size = ctypes.sizeof(_id_attr)


def _by_id(cmd: int, obj_id: int) -> int:
    """GET_NEXT_ID / GET_FD_BY_ID on one reused attr (they are called once per object).

    ``next_id`` must be cleared too: GET_NEXT_ID writes it, and the kernel
    refuses GET_FD_BY_ID for programs when any byte after ``prog_id`` is set.
    """
    a = _id_attr
    a.id = obj_id
    a.next_id = 0
    a.open_flags = 0
    ret = _hot_syscall(_nr, cmd, _id_attr_ptr, _id_attr_size)
    if ret < 0:
        raise BpfError(ctypes.get_errno(), cmd)
    return ret


def id_opener(cmd: int):
    """A function ``open_id(id)`` for one ``*_GET_FD_BY_ID`` command: the new fd, or ``-errno``.

    For walks over every object, where it is called once per object: its attr
    is built once and only ``id`` is ever written (the bytes after it stay
    zero, as the kernel requires), and a gap in the ids costs no exception.
    """
    attr = _IdAttr()
    id_slot = memoryview(attr).cast("B").cast("I")  # id_slot[0] is attr.id, without a ctypes descriptor
    ptr = ctypes.c_void_p(ctypes.addressof(attr))
    size = ctypes.sizeof(attr)

    def open_id(obj_id: int, _keep=attr) -> int:
        id_slot[0] = obj_id
        fd = _quick_syscall(_nr, cmd, ptr, size)
        if fd < 0:  # again, for the errno (or the fd of an object that came meanwhile)
            fd = _hot_syscall(_nr, cmd, ptr, size)
            if fd < 0:
                return -ctypes.get_errno()
        return fd

    return open_id


def _next_id(cmd: int, start: int) -> int | None:
    try:
        _by_id(cmd, start)
    except BpfError as e:
        if e.errno == _errno.ENOENT:
            return None
        raise
    return _id_attr.next_id


def prog_get_next_id(start: int) -> int | None:
    """The id of the next program after ``start``, or None at the end."""
    return _next_id(PROG_GET_NEXT_ID, start)


def map_get_next_id(start: int) -> int | None:
    return _next_id(MAP_GET_NEXT_ID, start)


def btf_get_next_id(start: int) -> int | None:
    return _next_id(BTF_GET_NEXT_ID, start)


def link_get_next_id(start: int) -> int | None:
    return _next_id(LINK_GET_NEXT_ID, start)


def prog_get_fd_by_id(obj_id: int) -> int:
    return _by_id(PROG_GET_FD_BY_ID, obj_id)


def map_get_fd_by_id(obj_id: int) -> int:
    return _by_id(MAP_GET_FD_BY_ID, obj_id)


def btf_get_fd_by_id(obj_id: int) -> int:
    return _by_id(BTF_GET_FD_BY_ID, obj_id)


def link_get_fd_by_id(obj_id: int) -> int:
    return _by_id(LINK_GET_FD_BY_ID, obj_id)


_info_attr = _InfoAttr()
_info_attr_ptr = ctypes.c_void_p(ctypes.addressof(_info_attr))


def obj_get_info_by_fd(fd: int, info: ctypes.Structure) -> int:
    """Fill ``info`` (a zeroed info struct, pointers set by the caller).

    Returns the number of bytes the kernel filled: a kernel with a shorter
    struct fills less (the rest stays zero); a newer kernel with a longer one
    fills only what we asked for.
    """
    a = _info_attr
    a.bpf_fd = fd
    a.info_len = ctypes.sizeof(info)
    a.info = ctypes.addressof(info)
    ret = _hot_syscall(_nr, OBJ_GET_INFO_BY_FD, _info_attr_ptr, 16)
    if ret < 0:
        raise BpfError(ctypes.get_errno(), OBJ_GET_INFO_BY_FD)
    return a.info_len


def info_reader(info: ctypes.Structure, unpack):
    """A function ``read(fd)``: ``unpack(info)`` once the kernel has filled ``info`` (zeroed
    first) for program or map ``fd``; raises BpfError.

    For long listings, one call per object: the attr naming ``info`` is built
    once, so a call sets only the fd. (A kernel with a shorter struct writes its
    length back into the attr; later calls then ask for that length, which is
    all it has.)
    """
    info_addr, info_size = ctypes.addressof(info), ctypes.sizeof(info)
    info_bytes, zero = memoryview(info).cast("B"), bytes(info_size)  # zeroed by slice assignment
    attr = _InfoAttr(0, info_size, info_addr)
    fd_slot = memoryview(attr).cast("B").cast("I")  # fd_slot[0] is attr.bpf_fd, without a ctypes descriptor
    ptr = ctypes.c_void_p(ctypes.addressof(attr))
    size = ctypes.sizeof(attr)
    keep = (info, attr)  # the closure holds what the addresses point at

    def read(fd: int, _keep=keep):
        info_bytes[:] = zero
        fd_slot[0] = fd
        if _quick_syscall(_nr, OBJ_GET_INFO_BY_FD, ptr, size) < 0:
            # again, for the errno, from the same zeroed info
            info_bytes[:] = zero
            if _hot_syscall(_nr, OBJ_GET_INFO_BY_FD, ptr, size) < 0:
                raise BpfError(ctypes.get_errno(), OBJ_GET_INFO_BY_FD)
        return unpack(info)

    return read


def obj_pin(fd: int, path: str) -> None:
    p = ctypes.create_string_buffer(os.fsencode(path))
    bpf(OBJ_PIN, _ObjAttr(pathname=ctypes.addressof(p), bpf_fd=fd))


def obj_get(path: str, flags: int = 0) -> int:
    p = ctypes.create_string_buffer(os.fsencode(path))
    return bpf(OBJ_GET, _ObjAttr(pathname=ctypes.addressof(p), file_flags=flags))


def map_lookup_elem(map_fd: int, key: bytes, value_size: int) -> bytes:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value_size)
    bpf(MAP_LOOKUP_ELEM, _ElemAttr(map_fd=map_fd, key=addr(k), value=addr(v)))
    return v.raw


def map_update_elem(map_fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    v = ctypes.create_string_buffer(value, len(value))
    bpf(MAP_UPDATE_ELEM, _ElemAttr(map_fd=map_fd, key=addr(k), value=addr(v), flags=flags))


def map_get_next_key(map_fd: int, key: bytes | None, key_size: int) -> bytes | None:
    """The key after ``key`` (the first key when ``key`` is None); None past the last."""
    k = ctypes.create_string_buffer(key, len(key)) if key is not None else None
    nxt = ctypes.create_string_buffer(key_size)
    try:
        bpf(MAP_GET_NEXT_KEY, _ElemAttr(map_fd=map_fd, key=addr(k) if k is not None else 0, value=addr(nxt)))
    except BpfError as e:
        if e.errno == _errno.ENOENT:
            return None
        raise
    return nxt.raw


def map_delete_elem(map_fd: int, key: bytes) -> None:
    k = ctypes.create_string_buffer(key, len(key))
    bpf(MAP_DELETE_ELEM, _ElemAttr(map_fd=map_fd, key=addr(k)))


def map_freeze(map_fd: int) -> None:
    bpf(MAP_FREEZE, _FdAttr(fd=map_fd))


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    name: str = "",
    flags: int = 0,
    inner_map_fd: int = 0,
    numa_node: int = 0,
    ifindex: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
) -> int:
    """BPF_MAP_CREATE; returns the new map's fd."""
    attr = MapCreateAttr(
        map_type=map_type,
        key_size=key_size,
        value_size=value_size,
        max_entries=max_entries,
        map_flags=flags,
        inner_map_fd=inner_map_fd,
        numa_node=numa_node,
        map_name=name.encode()[:15],
        map_ifindex=ifindex,
        btf_fd=btf_fd,
        btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
        btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
        map_extra=map_extra,
    )
    return bpf(MAP_CREATE, attr)


def _log_text(buf) -> str:
    return buf.value.decode("utf-8", "replace") if buf is not None else ""


def prog_load(attr: ProgLoadAttr, log_size: int = 0, log_level: int = 0) -> int:
    """BPF_PROG_LOAD with ``attr`` as the caller filled it.

    With ``log_size``, a verifier log buffer is attached at ``log_level``
    (1 when only ``log_size`` is given); on failure its text is in
    ``BpfError.log``.
    """
    buf = None
    if log_size:
        buf = ctypes.create_string_buffer(log_size)
        attr.log_buf = ctypes.addressof(buf)
        attr.log_size = log_size
        attr.log_level = log_level or 1
    try:
        return bpf(PROG_LOAD, attr)
    except BpfError as e:
        e.log = _log_text(buf)
        raise
    finally:
        attr.log_buf = attr.log_size = attr.log_level = 0


def prog_load_simple(
    prog_type: int,
    insns: bytes,
    *,
    license: str = "GPL",
    name: str = "",
    expected_attach_type: int = 0,
    log_size: int = 0,
) -> int:
    """Load raw instructions with no BTF; the quickest way to make a program."""
    ins = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    attr = ProgLoadAttr(
        prog_type=prog_type,
        insn_cnt=len(insns) // 8,
        insns=addr(ins),
        license=addr(lic),
        prog_name=name.encode()[:15],
        expected_attach_type=expected_attach_type,
    )
    return prog_load(attr, log_size=log_size)


def btf_load(data: bytes, log_size: int = 0, log_level: int = 1) -> int:
    """BPF_BTF_LOAD; returns the BTF object's fd. The log is in BpfError.log."""
    blob = ctypes.create_string_buffer(data, len(data))
    attr = _BtfLoadAttr(btf=addr(blob), btf_size=len(data))
    buf = None
    if log_size:
        buf = ctypes.create_string_buffer(log_size)
        attr.btf_log_buf = addr(buf)
        attr.btf_log_size = log_size
        attr.btf_log_level = log_level
    try:
        return bpf(BTF_LOAD, attr)
    except BpfError as e:
        e.log = _log_text(buf)
        raise


def prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0) -> None:
    bpf(
        PROG_ATTACH,
        _AttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type, attach_flags=flags),
    )


def prog_detach(prog_fd: int, target_fd: int, attach_type: int) -> None:
    bpf(PROG_DETACH, _AttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type))


def prog_test_run(attr: TestRunAttr) -> TestRunAttr:
    """BPF_PROG_TEST_RUN with a caller-filled attr; returns it with the results."""
    bpf(PROG_TEST_RUN, attr)
    return attr


def raw_tracepoint_open(name: str | None, prog_fd: int) -> int:
    nm = ctypes.create_string_buffer(name.encode()) if name else None
    return bpf(RAW_TRACEPOINT_OPEN, _RawTpAttr(name=addr(nm), prog_fd=prog_fd))


def link_create(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0, target_btf_id: int = 0) -> int:
    attr = LinkCreateAttr(
        prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type, flags=flags, target_btf_id=target_btf_id
    )
    return bpf(LINK_CREATE, attr)


def enable_stats(stats_type: int = STATS_RUN_TIME) -> int:
    """BPF_ENABLE_STATS: stats stay on while the returned fd is open."""
    return bpf(ENABLE_STATS, _StatsAttr(type=stats_type))
