"""bpf_prog_info / bpf_map_info / bpf_btf_info and the calls that fill them.

The structs follow the kernel UAPI. The kernel fills as many bytes as both it
and we know (:func:`bpft.kernel.syscall.obj_get_info_by_fd` passes our size):
an older kernel leaves later fields zero, a newer one ignores what we don't ask.

Arrays (map ids, instructions, func_info, ...) need a second call with
buffers of the sizes the first call reported: :func:`prog_arrays`.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections import namedtuple

from . import syscall as sc

_u8, _u32, _u64 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_uint64

BPF_TAG_SIZE = 8
BPF_OBJ_NAME_LEN = 16


class ProgInfo(ctypes.Structure):
    _fields_ = [
        ("type", _u32),
        ("id", _u32),
        ("tag", _u8 * BPF_TAG_SIZE),
        ("jited_prog_len", _u32),
        ("xlated_prog_len", _u32),
        ("jited_prog_insns", _u64),
        ("xlated_prog_insns", _u64),
        ("load_time", _u64),
        ("created_by_uid", _u32),
        ("nr_map_ids", _u32),
        ("map_ids", _u64),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", _u32),
        ("gpl_compatible", _u32, 1),
        ("_pad1", _u32, 31),
        ("netns_dev", _u64),
        ("netns_ino", _u64),
        ("nr_jited_ksyms", _u32),
        ("nr_jited_func_lens", _u32),
        ("jited_ksyms", _u64),
        ("jited_func_lens", _u64),
        ("btf_id", _u32),
        ("func_info_rec_size", _u32),
        ("func_info", _u64),
        ("nr_func_info", _u32),
        ("nr_line_info", _u32),
        ("line_info", _u64),
        ("jited_line_info", _u64),
        ("nr_jited_line_info", _u32),
        ("line_info_rec_size", _u32),
        ("jited_line_info_rec_size", _u32),
        ("nr_prog_tags", _u32),
        ("prog_tags", _u64),
        ("run_time_ns", _u64),
        ("run_cnt", _u64),
        ("recursion_misses", _u64),
        ("verified_insns", _u32),
        ("attach_btf_obj_id", _u32),
        ("attach_btf_id", _u32),
        ("_pad2", _u32),
    ]


class MapInfo(ctypes.Structure):
    _fields_ = [
        ("type", _u32),
        ("id", _u32),
        ("key_size", _u32),
        ("value_size", _u32),
        ("max_entries", _u32),
        ("map_flags", _u32),
        ("name", ctypes.c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", _u32),
        ("btf_vmlinux_value_type_id", _u32),
        ("netns_dev", _u64),
        ("netns_ino", _u64),
        ("btf_id", _u32),
        ("btf_key_type_id", _u32),
        ("btf_value_type_id", _u32),
        ("_pad", _u32),
        ("map_extra", _u64),
    ]


class BtfInfo(ctypes.Structure):
    _fields_ = [
        ("btf", _u64),
        ("btf_size", _u32),
        ("id", _u32),
        ("name", _u64),
        ("name_len", _u32),
        ("kernel_btf", _u32),
    ]


ProgInfoRec = namedtuple(  # the fields as one literal, so type checkers read them
    "ProgInfoRec",
    "type id tag jited_prog_len xlated_prog_len jited_prog_insns xlated_prog_insns load_time "
    "created_by_uid nr_map_ids map_ids name ifindex gpl_compatible netns_dev netns_ino "
    "nr_jited_ksyms nr_jited_func_lens jited_ksyms jited_func_lens btf_id func_info_rec_size "
    "func_info nr_func_info nr_line_info line_info jited_line_info nr_jited_line_info "
    "line_info_rec_size jited_line_info_rec_size nr_prog_tags prog_tags run_time_ns run_cnt "
    "recursion_misses verified_insns attach_btf_obj_id attach_btf_id",
)
ProgInfoRec.__doc__ = """bpf_prog_info scalars, read-only: ``name`` is NUL-stripped bytes, ``tag`` 8 bytes."""
_PROG_INFO = struct.Struct("<II8sIIQQQIIQ16sIIQQIIQQIIQIIQQIIIIQQQQIII4x")
assert _PROG_INFO.size == ctypes.sizeof(ProgInfo)
_prog_info_buf = ProgInfo()  # the one buffer program infos are read into
_new_tuple = tuple.__new__
_read_prog_info = sc.info_reader(_prog_info_buf, _PROG_INFO.unpack_from)


def prog_info(fd: int) -> ProgInfoRec:
    """The program's info, scalars only (no arrays requested).

    For a program shown by handle, the table and pretty JSON (a plain or compact listing
    reads the shorter :func:`prog_list_info`): one reused buffer, one unpack.
    """
    fields = list(_read_prog_info(fd))
    fields[11] = fields[11].split(b"\0", 1)[0]  # name
    fields[13] &= 1  # gpl_compatible:1
    return _new_tuple(ProgInfoRec, fields)  # ProgInfoRec._make without its checks


#: The bpf_prog_info fields a listing prints, in the kernel's order: the tuple
#: :func:`prog_list_info` returns. ``name`` is the 16 NUL-padded bytes;
#: ``gpl_compatible`` is the 32-bit word that holds the flag in its bit 0.
LIST_FIELDS = (
    "type id tag jited_prog_len xlated_prog_len load_time created_by_uid nr_map_ids name ifindex "
    "gpl_compatible netns_dev netns_ino btf_id run_time_ns run_cnt recursion_misses"
).split()


def _fields_struct(names: list[str]) -> struct.Struct:
    """The struct format of the bpf_prog_info fields ``names`` (in the kernel's order), with pad
    bytes over the fields in between (from ProgInfo's layout)."""
    codes = {_u32: "I", _u64: "Q"}
    ctypes_of = {f[0]: f[1] for f in ProgInfo._fields_}
    fmt, pos = "<", 0
    for name in names:
        field = getattr(ProgInfo, name)
        ctype = ctypes_of[name]
        code = codes.get(ctype, f"{ctypes.sizeof(ctype)}s")  # type: ignore[arg-type]  # tag and name: byte arrays
        if field.offset < pos:
            raise ValueError(f"bpf_prog_info field {name} out of the kernel's order")
        if field.offset > pos:
            fmt += f"{field.offset - pos}x"
        fmt += code
        pos = field.offset + struct.calcsize("<" + code)
    return struct.Struct(fmt)


prog_list_info = sc.info_reader(_prog_info_buf, _fields_struct(LIST_FIELDS).unpack_from)
prog_list_info.__doc__ = """``prog_list_info(fd)``: the program's :data:`LIST_FIELDS`, as a plain tuple; raises
OSError as :func:`prog_info`. The hot path of a listing: fewer fields than :func:`prog_info`
and no post-processing (a listing of thousands of programs reads this for each)."""


def prog_info_offset(name: str) -> int:
    """Where bpf_prog_info field ``name`` is in the struct: the kernel's order of the fields."""
    return getattr(ProgInfo, name).offset


def prog_fields_reader(names: list[str]):
    """A reader like :func:`prog_list_info` of other bpf_prog_info fields: ``read(fd)`` is the
    tuple of ``names`` (in the kernel's order; see :func:`prog_info_offset`), raw as there."""
    return sc.info_reader(_prog_info_buf, _fields_struct(names).unpack_from)


def map_info(fd: int) -> MapInfo:
    info = MapInfo()
    sc.obj_get_info_by_fd(fd, info)
    return info


def tag_hex(info: ProgInfo | ProgInfoRec) -> str:
    return bytes(info.tag).hex()


class ProgArrays:
    """The variable-length parts of a program's info, as raw bytes / lists."""

    def __init__(self, info: ProgInfo):
        self.info = info
        self.map_ids: list[int] = []
        self.xlated = b""
        self.jited = b""
        self.jited_ksyms: list[int] = []
        self.jited_func_lens: list[int] = []
        self.func_info = b""
        self.line_info = b""
        self.jited_line_info = b""


def prog_map_ids(fd: int, count: int) -> list[int]:
    """The ids of the maps a program uses (``count`` from its info)."""
    if not count:
        return []
    ids = (_u32 * count)()
    info = ProgInfo(nr_map_ids=count, map_ids=ctypes.addressof(ids))
    sc.obj_get_info_by_fd(fd, info)
    return list(ids[: min(count, info.nr_map_ids)])


def prog_arrays(
    fd: int, base: ProgInfo | ProgInfoRec, *, xlated: bool = False, jited: bool = False, maps: bool = False
) -> ProgArrays:
    """Fetch instruction images and their side tables in one second call.

    ``base`` is the info from a first call (it gives the sizes). Func and line
    info, jited ksyms and function lengths always come along: every dump needs
    them. The kernel may report zero lengths (e.g. no permission to see the
    image); callers check.
    """
    q = ProgInfo()
    keep = []

    def buf(size: int):
        b = ctypes.create_string_buffer(max(size, 0))
        keep.append(b)
        return ctypes.addressof(b) if size else 0

    if xlated:
        q.xlated_prog_len = base.xlated_prog_len
        q.xlated_prog_insns = buf(base.xlated_prog_len)
    if jited:
        q.jited_prog_len = base.jited_prog_len
        q.jited_prog_insns = buf(base.jited_prog_len)
    if maps:
        q.nr_map_ids = base.nr_map_ids
        q.map_ids = buf(base.nr_map_ids * 4)
    q.nr_jited_ksyms = base.nr_jited_ksyms
    q.jited_ksyms = buf(base.nr_jited_ksyms * 8)
    q.nr_jited_func_lens = base.nr_jited_func_lens
    q.jited_func_lens = buf(base.nr_jited_func_lens * 4)
    q.nr_func_info = base.nr_func_info
    q.func_info_rec_size = base.func_info_rec_size
    q.func_info = buf(base.nr_func_info * base.func_info_rec_size)
    q.nr_line_info = base.nr_line_info
    q.line_info_rec_size = base.line_info_rec_size
    q.line_info = buf(base.nr_line_info * base.line_info_rec_size)
    q.nr_jited_line_info = base.nr_jited_line_info
    q.jited_line_info_rec_size = base.jited_line_info_rec_size
    q.jited_line_info = buf(base.nr_jited_line_info * base.jited_line_info_rec_size)
    sc.obj_get_info_by_fd(fd, q)

    def read(ptr: int, size: int) -> bytes:
        return ctypes.string_at(ptr, size) if ptr and size else b""

    def u32s(ptr: int, n: int) -> list[int]:
        return list((_u32 * n).from_address(ptr)) if ptr and n else []

    def u64s(ptr: int, n: int) -> list[int]:
        return list((_u64 * n).from_address(ptr)) if ptr and n else []

    out = ProgArrays(info=q)
    out.xlated = read(q.xlated_prog_insns, min(q.xlated_prog_len, base.xlated_prog_len)) if xlated else b""
    out.jited = read(q.jited_prog_insns, min(q.jited_prog_len, base.jited_prog_len)) if jited else b""
    if maps:
        out.map_ids = u32s(q.map_ids, min(q.nr_map_ids, base.nr_map_ids))
    out.jited_ksyms = u64s(q.jited_ksyms, min(q.nr_jited_ksyms, base.nr_jited_ksyms))
    out.jited_func_lens = u32s(q.jited_func_lens, min(q.nr_jited_func_lens, base.nr_jited_func_lens))
    out.func_info = read(q.func_info, min(q.nr_func_info, base.nr_func_info) * q.func_info_rec_size)
    out.line_info = read(q.line_info, min(q.nr_line_info, base.nr_line_info) * q.line_info_rec_size)
    out.jited_line_info = read(
        q.jited_line_info, min(q.nr_jited_line_info, base.nr_jited_line_info) * q.jited_line_info_rec_size
    )
    return out


def btf_data(btf_id: int) -> bytes:
    """The raw BTF blob of a kernel BTF object by id."""
    fd = sc.btf_get_fd_by_id(btf_id)
    try:
        info = BtfInfo()
        sc.obj_get_info_by_fd(fd, info)
        size = info.btf_size
        blob = ctypes.create_string_buffer(size)
        info = BtfInfo(btf=ctypes.addressof(blob), btf_size=size)
        sc.obj_get_info_by_fd(fd, info)
        return blob.raw[: info.btf_size]
    finally:
        os.close(fd)


def btf_info(fd: int) -> tuple[BtfInfo, str]:
    """A BTF object's info and its name (e.g. 'vmlinux' for kernel BTF)."""
    name = ctypes.create_string_buffer(64)
    info = BtfInfo(name=ctypes.addressof(name), name_len=64)
    sc.obj_get_info_by_fd(fd, info)
    return info, name.value.decode(errors="replace")
