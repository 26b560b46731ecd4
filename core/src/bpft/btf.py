"""BTF: parsing raw type information, naming types, dumping values as bpftool does.

A :class:`Btf` is built from the raw blob the kernel hands back for a BTF id
(or an ELF object's .BTF section). Types are decoded once into small tuples;
split BTF (ids continuing a base BTF) is supported through ``base``.

Value dumping follows bpftool's btf_dumper: the same choices of strings for
char arrays, enum names, bitfield extraction, and the few places where its
plain-text mode prints differently from JSON (pointers, 128-bit integers,
unprintable chars).
"""

from __future__ import annotations

import struct
from enum import IntEnum

from .output import RawJson
from .records import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # typing costs start-up (~2 ms): annotations only
    from typing import Any

MAGIC = 0xEB9F


class BtfKind(IntEnum):
    """BTF_KIND_*: the kind of a type (``info`` bits 24-28); the name, lower-cased, is libbpf's
    btf_kind_str() (``UNKN`` is "void")."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# the kinds by their short names, as plain ints: the parsers compare them once per type
# (an IntEnum's comparison costs a third more in those loops)
UNKN, INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = map(int, list(BtfKind)[:12])
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = map(int, list(BtfKind)[12:])


def kind_name(kind: int) -> str:
    """libbpf's btf_kind_str(): "void" for 0, "unknown" past the last kind."""
    if kind == UNKN:
        return "void"
    try:
        return BtfKind(kind).name.lower()
    except ValueError:
        return "unknown"


INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4
VAR_STATIC = 0
MODIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)


class BTFError(ValueError):
    """Malformed BTF."""


class Type(NamedTuple):
    """One BTF type. ``members`` depends on the kind:

    INT: (encoding, offset, bits); ARRAY: (elem type, index type, nelems);
    STRUCT/UNION: [(name_off, type, bit_offset, bitfield_size)];
    ENUM/ENUM64: [(name_off, value)]; FUNC_PROTO: [(name_off, type)];
    VAR: linkage; DATASEC: [(type, offset, size)]; DECL_TAG: component_idx.
    """

    kind: int
    name_off: int
    vlen: int
    kflag: bool
    size_or_type: int
    members: Any


_HDR = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")


class TypeWalks:
    """Walks over a type graph that only needs ``type(id)``: shared by :class:`Btf` and the
    loader's lazily decoded kernel BTF."""

    def type(self, type_id: int) -> Type:
        """The type of ``type_id`` (each subclass reads its own)."""
        raise NotImplementedError

    def resolve(self, type_id: int) -> int:
        """Follow typedefs and modifiers to the underlying type id."""
        for _ in range(64):
            if type_id == 0:
                return 0
            t = self.type(type_id)
            if t.kind not in MODIFIERS:
                return type_id
            type_id = t.size_or_type
        raise BTFError("type chain too long")

    def size(self, type_id: int) -> int:
        """Size in bytes of a type (bpftool's btf__resolve_size)."""
        nelems = 1
        for _ in range(64):
            t = self.type(type_id)
            if t.kind in (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT):
                return nelems * t.size_or_type
            if t.kind == PTR:
                return nelems * 8
            if t.kind in MODIFIERS or t.kind == VAR:
                type_id = t.size_or_type
            elif t.kind == ARRAY:
                nelems *= t.members[2]
                type_id = t.members[0]
            else:
                raise BTFError(f"type {type_id} has no size")
        raise BTFError("type chain too long")


class Btf(TypeWalks):
    """Types and strings of one BTF blob (plus its base, for split BTF)."""

    def __init__(self, data: bytes, base: Btf | None = None):
        self.base = base
        self.types: list[Type] = []
        self.first_id = base.next_id if base else 1
        self._parse(data)

    @property
    def next_id(self) -> int:
        return self.first_id + len(self.types)

    def _parse(self, data: bytes) -> None:
        if len(data) < _HDR.size:
            raise BTFError("BTF header truncated")
        magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(data)
        if magic != MAGIC:
            raise BTFError(f"bad BTF magic 0x{magic:x}")
        body = hdr_len
        if body + type_off + type_len > len(data) or body + str_off + str_len > len(data):
            raise BTFError("BTF sections out of range")
        self.strings = bytes(data[body + str_off : body + str_off + str_len])
        self._str_base = len(self.base.strings) if self.base else 0
        pos, end = body + type_off, body + type_off + type_len
        try:
            while pos < end:
                t, pos = _read_type(data, pos)
                self.types.append(t)
        except struct.error:
            raise BTFError("BTF type section truncated") from None
        if pos != end:
            raise BTFError("BTF type section has trailing bytes")

    # -- lookups
    def type(self, type_id: int) -> Type:
        if self.base and type_id < self.first_id:
            return self.base.type(type_id)
        idx = type_id - self.first_id
        if type_id <= 0 or idx >= len(self.types):
            raise BTFError(f"type id {type_id} out of range")
        return self.types[idx]

    def name(self, off: int) -> str:
        if self.base and off < self._str_base:
            return self.base.name(off)
        off -= self._str_base
        if off < 0 or off >= len(self.strings) and off:
            raise BTFError(f"string offset {off} out of range")
        end = self.strings.find(b"\0", off)
        return self.strings[off : end if end >= 0 else None].decode(errors="replace")


def _read_type(data: bytes, pos: int) -> tuple[Type, int]:
    name_off, info, sot = _TYPE.unpack_from(data, pos)
    pos += 12
    kind = (info >> 24) & 0x1F
    vlen = info & 0xFFFF
    kflag = bool(info >> 31)
    members: Any = None
    if kind == INT:
        (v,) = struct.unpack_from("<I", data, pos)
        members = ((v >> 24) & 0xF, (v >> 16) & 0xFF, v & 0xFF)
        pos += 4
    elif kind == ARRAY:
        members = struct.unpack_from("<III", data, pos)
        pos += 12
    elif kind in (STRUCT, UNION):
        ms: list[tuple[int, ...]] = []
        for i in range(vlen):
            n, ty, off = struct.unpack_from("<III", data, pos + 12 * i)
            ms.append((n, ty, off & 0xFFFFFF, off >> 24) if kflag else (n, ty, off, 0))
        members = ms
        pos += 12 * vlen
    elif kind == ENUM:
        signed = kflag
        ms = []
        for i in range(vlen):
            n, v = struct.unpack_from("<Ii" if signed else "<II", data, pos + 8 * i)
            ms.append((n, v))
        members = ms
        pos += 8 * vlen
    elif kind == ENUM64:
        ms = []
        for i in range(vlen):
            n, lo, hi = struct.unpack_from("<III", data, pos + 12 * i)
            ms.append((n, lo | hi << 32))
        members = ms
        pos += 12 * vlen
    elif kind == FUNC_PROTO:
        members = [struct.unpack_from("<II", data, pos + 8 * i) for i in range(vlen)]
        pos += 8 * vlen
    elif kind == VAR:
        (members,) = struct.unpack_from("<I", data, pos)
        pos += 4
    elif kind == DATASEC:
        members = [struct.unpack_from("<III", data, pos + 12 * i) for i in range(vlen)]
        pos += 12 * vlen
    elif kind == DECL_TAG:
        (members,) = struct.unpack_from("<i", data, pos)
        pos += 4
    elif kind > ENUM64:
        raise BTFError(f"unknown BTF kind {kind}")
    return Type(kind, name_off, vlen, kflag, sot, members), pos


# --- kernel objects -----------------------------------------------------------------


def load_kernel_btf(btf_id: int) -> Btf:
    """The BTF object ``btf_id`` from the kernel (split BTF gets vmlinux as base)."""
    from .kernel import info as kinfo

    data = kinfo.btf_data(btf_id)
    try:
        return Btf(data)
    except BTFError:
        # module BTF is split: its ids continue vmlinux's
        return Btf(data, base=vmlinux())


_vmlinux: Btf | None = None


def vmlinux() -> Btf:
    global _vmlinux
    if _vmlinux is None:
        with open("/sys/kernel/btf/vmlinux", "rb") as f:
            _vmlinux = Btf(f.read())
    return _vmlinux


def func_name_from_kernel(btf_id: int, type_id: int) -> str | None:
    """The name of FUNC ``type_id`` in kernel BTF object ``btf_id`` (None if not a FUNC)."""
    btf = load_kernel_btf(btf_id)
    t = btf.type(type_id)
    return btf.name(t.name_off) if t.kind == FUNC else None


def datasec_vars(btf: Btf, datasec_id: int) -> list[tuple[str, int, int]]:
    """(var name, var's type id, offset) for each variable of a DATASEC."""
    t = btf.type(datasec_id)
    if t.kind != DATASEC:
        raise BTFError(f"type {datasec_id} is not a DATASEC")
    out = []
    for var_id, offset, _size in t.members:
        v = btf.type(var_id)
        out.append((btf.name(v.name_off), v.size_or_type, offset))
    return out


# --- type names (bpftool's btf_dumper_type_only) --------------------------------------


def type_signature(btf: Btf, type_id: int) -> str:
    """A C-like rendering as bpftool prints function headers: ``int f(struct xdp_md * ctx)``."""
    try:
        return "".join(_sig(btf, type_id, 0))
    except (BTFError, RecursionError):
        return ""


def _sig(btf: Btf, type_id: int, depth: int) -> list[str]:
    if depth > 64:
        raise BTFError("type chain too long")
    if not type_id:
        return ["void "]
    t = btf.type(type_id)
    k = t.kind
    name = btf.name(t.name_off)
    if k in (INT, TYPEDEF, FLOAT):
        return [f"{name} "]
    if k == STRUCT:
        return [f"struct {name} "]
    if k == UNION:
        return [f"union {name} "]
    if k in (ENUM, ENUM64):
        return [f"enum {name} "]
    if k == ARRAY:
        return [*_sig(btf, t.members[0], depth + 1), f"[{t.members[2]}]"]
    if k == PTR:
        return [*_sig(btf, t.size_or_type, depth + 1), "* "]
    if k == FWD:
        return [f"{'union' if t.kflag else 'struct'} {name} "]
    if k in (VOLATILE, CONST, RESTRICT):
        word = {VOLATILE: "volatile ", CONST: "const ", RESTRICT: "restrict "}[k]
        return [word, *_sig(btf, t.size_or_type, depth + 1)]
    if k == FUNC_PROTO:
        return _func(btf, t, None, depth)
    if k == FUNC:
        return _func(btf, btf.type(t.size_or_type), t, depth)
    if k == VAR:
        out = ["static "] if t.members == VAR_STATIC else []
        return [*out, *_sig(btf, t.size_or_type, depth + 1), f" {name}"]
    if k == DATASEC:
        return [f'section ("{name}") ']
    raise BTFError(f"kind {k} has no signature")


def _func(btf: Btf, proto: Type, func: Type | None, depth: int) -> list[str]:
    out = _sig(btf, proto.size_or_type, depth + 1)
    out.append(f"{btf.name(func.name_off)}(" if func else "(")
    for i, (name_off, arg_type) in enumerate(proto.members):
        if i:
            out.append(", ")
        if arg_type:
            out.extend(_sig(btf, arg_type, depth + 1))
            if name_off:
                out.append(btf.name(name_off))
            elif out and out[-1].endswith(" "):
                out[-1] = out[-1][:-1]
        else:
            out.append("...")
    out.append(")")
    return out


# --- value dumping (bpftool's btf_dumper) ----------------------------------------------


def dump_json(btf: Btf, type_id: int, data: bytes) -> Any:
    """The value as bpftool -j prints it: a Python value for bpft's JSON writer."""
    return _Dumper(btf, plain=False).do(type_id, 0, data, 0)


def dump_plain(btf: Btf, type_id: int, data: bytes) -> str:
    """The value as bpftool's plain output prints it (compact JSON-like text)."""
    from .output import _render

    return _render(_Dumper(btf, plain=True).do(type_id, 0, data, 0), 0, False)


class _Dumper:
    def __init__(self, btf: Btf, plain: bool):
        self.btf = btf
        self.plain = plain

    def do(self, type_id: int, bit_offset: int, data: bytes, depth: int) -> Any:
        if depth > 64:
            raise BTFError("type nesting too deep")
        btf = self.btf
        t = btf.type(type_id) if type_id else Type(UNKN, 0, 0, False, 0, None)
        k = t.kind
        if k == INT:
            return self.int_(t, bit_offset, data)
        if k in (STRUCT, UNION):
            out = {}
            for name_off, mtype, moff, bitsize in t.members:
                chunk = data[moff >> 3 :]
                if bitsize:
                    out[btf.name(name_off)] = self.bitfield(bitsize, moff & 7, chunk)
                else:
                    out[btf.name(name_off)] = self.do(mtype, moff & 7, chunk, depth + 1)
            return out
        if k == ARRAY:
            elem, _idx, nelems = t.members
            s = _str_array(btf, elem, nelems, data)
            if s is not None:
                return s
            size = btf.size(elem)
            if nelems * max(size, 1) > len(data):
                # a corrupt count would otherwise build a list of billions of zero-padded values
                raise BTFError(f"array of {nelems} elements is larger than its {len(data)} bytes of data")
            return [self.do(elem, 0, data[i * size :], depth + 1) for i in range(nelems)]
        if k == ENUM:
            size = t.size_or_type
            if size not in (1, 2, 4, 8):
                raise BTFError("bad enum size")
            value = int.from_bytes(data[:size].ljust(size, b"\0"), "little", signed=True)
            for name_off, v in t.members:
                if (v if t.kflag else _signed32(v)) == value:
                    return btf.name(name_off)
            return value
        if k == ENUM64:
            value = int.from_bytes(data[:8].ljust(8, b"\0"), "little")
            for name_off, v in t.members:
                if v == value:
                    return btf.name(name_off)
            return value - (1 << 64) if value >> 63 else value
        if k == PTR:
            value = int.from_bytes(data[:8].ljust(8, b"\0"), "little")
            if self.plain:
                return RawJson(f"0x{value:x}" if value else "(nil)")
            return RawJson(str(value))
        if k == UNKN:
            return RawJson("(unknown)")
        if k == FWD:
            raise BTFError("(fwd-kind-invalid)")
        if k in (TYPEDEF, VOLATILE, CONST, RESTRICT):
            return self.do(btf.resolve(type_id), bit_offset, data, depth + 1)
        if k == VAR:
            return {btf.name(t.name_off): self.do(t.size_or_type, bit_offset, data, depth + 1)}
        if k == DATASEC:
            return {btf.name(t.name_off): [self.do(v, 0, data[off:], depth + 1) for v, off, _ in t.members]}
        raise BTFError(f"unsupported kind {k}")

    def int_(self, t: Type, bit_offset: int, data: bytes) -> Any:
        encoding, int_off, bits = t.members
        if bit_offset or int_off or bits & 7:
            total = bit_offset + int_off
            return self.bitfield(bits, total & 7, data[total >> 3 :])
        if bits == 128:
            return self.int128(int.from_bytes(data[:16].ljust(16, b"\0"), "little"))
        nbytes = bits // 8
        raw = data[:nbytes].ljust(nbytes, b"\0")
        if encoding == 0:
            if bits in (8, 16, 32, 64):
                return int.from_bytes(raw, "little")
            return self.bitfield(bits, 0, data)
        if encoding == INT_SIGNED:
            if bits in (8, 16, 32, 64):
                return int.from_bytes(raw, "little", signed=True)
            return self.bitfield(bits, 0, data)
        if encoding == INT_CHAR:
            ch = raw[0]
            if 0x20 <= ch < 0x7F:
                return chr(ch)
            return RawJson(f"0x{ch:x}") if self.plain else RawJson(f'"\\u00{ch:02x}"')
        if encoding == INT_BOOL:
            return raw[0] != 0
        raise BTFError("bad int encoding")

    def bitfield(self, nr_bits: int, bit_offset: int, data: bytes) -> Any:
        nbytes = (bit_offset + nr_bits + 7) >> 3
        value = int.from_bytes(data[:nbytes].ljust(nbytes, b"\0"), "little")
        value = (value >> bit_offset) & ((1 << nr_bits) - 1)
        return self.int128(value)

    def int128(self, value: int) -> RawJson:
        text = f"0x{value:x}"
        return RawJson(text if self.plain else f'"{text}"')


def _signed32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def _str_array(btf: Btf, elem: int, nelems: int, data: bytes) -> str | None:
    """bpftool's is_str_array(): a char array holding a printable NUL-terminated string."""
    if not nelems:
        return None
    t = btf.type(elem) if elem else None
    depth = 0
    while t is not None and t.kind in (VOLATILE, CONST, RESTRICT, TYPE_TAG) and depth < 64:
        t = btf.type(t.size_or_type) if t.size_or_type else None
        depth += 1
    if t is None or t.kind != INT or t.size_or_type != 1:
        return None
    if t.members[0] != INT_CHAR and btf.name(t.name_off) != "char":
        return None
    chunk = data[:nelems]
    for i, ch in enumerate(chunk):
        if ch == 0:
            return chunk[:i].decode("latin-1")
        if ch <= 0x1F or ch >= 0x7F:
            return None
    return None
