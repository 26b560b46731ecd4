"""CO-RE relocations: compute what libbpf 1.1 computes, patch the instructions.

The algorithm is libbpf's (``relo_core.c``: spec parsing, candidate matching,
``bpf_core_calc_relo_insn``, ``bpf_core_patch_insn``); cilium/ebpf's
``btf/core.go`` is the same thing in Go. In short, for each relocation:

1. parse the local *spec*: the access string ``0:1:2`` walked through the
   local type gives named-field and array accessors and a bit offset;
2. candidates are the target types whose *essential name* (the name without a
   ``___flavor`` suffix) equals the local root type's, of a compatible kind;
3. each candidate is matched (fields by name, arrays by bounds, types by
   ``fields_are_compat`` / ``types_are_compat`` / ``types_match``); every
   matching candidate must give the same result, else the load fails as
   ambiguous; the matching candidates replace the cached candidate list of
   that local type, as libbpf prunes it;
4. the instruction is patched (ALU imm, LDX/ST/STX off and memory size,
   ld_imm64 imm), or poisoned (``call 0xbad2310``) when the relocation cannot
   be satisfied and libbpf would leave it to the verifier to complain.

The target is normally the kernel's own BTF (:func:`kernel_target`), the
lazily decoded :class:`.vmlinux.KernelBtf` whose name index is cached once
per boot (its module docstring says where and how).
"""

from __future__ import annotations

import errno as _errno
import struct
import weakref
from collections.abc import Callable

from bpft.records import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # typing costs start-up: annotations only
    from typing import Any

from bpft import btf as _btf
from bpft.btf import (
    ARRAY,
    CONST,
    DATASEC,
    DECL_TAG,
    ENUM,
    ENUM64,
    FLOAT,
    FUNC_PROTO,
    FWD,
    INT,
    INT_SIGNED,
    PTR,
    RESTRICT,
    STRUCT,
    TYPE_TAG,
    TYPEDEF,
    UNION,
    UNKN,
    VAR,
    VOLATILE,
    Btf,
    Type,
)

from .vmlinux import KernelBtf, essential_name, essential_name_len, kernel_btf

# enum bpf_core_relo_kind
(
    FIELD_BYTE_OFFSET,
    FIELD_BYTE_SIZE,
    FIELD_EXISTS,
    FIELD_SIGNED,
    FIELD_LSHIFT_U64,
    FIELD_RSHIFT_U64,
    TYPE_ID_LOCAL,
    TYPE_ID_TARGET,
    TYPE_EXISTS,
    TYPE_SIZE,
    ENUMVAL_EXISTS,
    ENUMVAL_VALUE,
    TYPE_MATCHES,
) = range(13)

KIND_STR = {
    FIELD_BYTE_OFFSET: "byte_off",
    FIELD_BYTE_SIZE: "byte_sz",
    FIELD_EXISTS: "field_exists",
    FIELD_SIGNED: "signed",
    FIELD_LSHIFT_U64: "lshift_u64",
    FIELD_RSHIFT_U64: "rshift_u64",
    TYPE_ID_LOCAL: "local_type_id",
    TYPE_ID_TARGET: "target_type_id",
    TYPE_EXISTS: "type_exists",
    TYPE_MATCHES: "type_matches",
    TYPE_SIZE: "type_size",
    ENUMVAL_EXISTS: "enumval_exists",
    ENUMVAL_VALUE: "enumval_value",
}
_FIELD_KINDS = frozenset(range(FIELD_BYTE_OFFSET, FIELD_RSHIFT_U64 + 1))
_TYPE_KINDS = frozenset((TYPE_ID_LOCAL, TYPE_ID_TARGET, TYPE_EXISTS, TYPE_SIZE, TYPE_MATCHES))
_ENUMVAL_KINDS = frozenset((ENUMVAL_EXISTS, ENUMVAL_VALUE))

SPEC_MAX_LEN = 64  # BPF_CORE_SPEC_MAX_LEN
POISON_IMM = 195896080  # 0xbad2310, "bad relo"
_SKIP = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)  # skip_mods_and_typedefs
_KIND_NAMES = {
    UNKN: "UNKNOWN",
    INT: "int",
    PTR: "ptr",
    ARRAY: "array",
    STRUCT: "struct",
    UNION: "union",
    ENUM: "enum",
    FWD: "fwd",
    TYPEDEF: "typedef",
    VOLATILE: "volatile",
    CONST: "const",
    RESTRICT: "restrict",
    12: "func",
    FUNC_PROTO: "func_proto",
    VAR: "var",
    DATASEC: "datasec",
    FLOAT: "float",
    DECL_TAG: "decl_tag",
    TYPE_TAG: "type_tag",
    ENUM64: "enum64",
}

_INSN = struct.Struct("<BBhi")
_U64 = (1 << 64) - 1


class CoreRelo(NamedTuple):
    """One CO-RE relocation record.

    ``insn_off``: bytes from the start of the program's instructions;
    ``type_id`` and ``access_str``: in the object's (local) BTF;
    ``kind``: enum bpf_core_relo_kind (``FIELD_BYTE_OFFSET`` ...).
    """

    insn_off: int
    type_id: int
    access_str: str
    kind: int


class CoreReloError(Exception):
    """A relocation that cannot be computed or applied (the load must fail).

    ``str(e)`` is libbpf's warning without the ``libbpf: `` prefix;
    ``relo_idx`` is the relocation's index in the list given (or None).
    """

    def __init__(self, message: str, relo_idx: int | None = None, err: int = -_errno.EINVAL):
        super().__init__(message)
        self.relo_idx = relo_idx
        self.err = err


class _Err(Exception):
    """Internal: a negative errno from deep inside matching, libbpf-style."""

    def __init__(self, err: int = -_errno.EINVAL, message: str = ""):
        super().__init__(message)
        self.err = err


# --- .BTF.ext ------------------------------------------------------------------------


def parse_core_relos(btf_ext: bytes, local_btf: Btf) -> dict[str, list[CoreRelo]]:
    """The CO-RE records of a .BTF.ext section: ``{ELF section name: [CoreRelo]}``.

    ``insn_off`` here is relative to the start of the ELF section (as clang
    writes it); the loader subtracts each program's offset in its section.
    Section names and access strings live in the object's .BTF strings, hence
    ``local_btf``. Malformed input raises CoreReloError.
    """
    data = bytes(btf_ext)
    if len(data) < 8:
        raise CoreReloError(".BTF.ext header truncated")
    magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", data)
    if magic != _btf.MAGIC:
        raise CoreReloError(f"bad .BTF.ext magic 0x{magic:x}")
    if hdr_len > len(data) or hdr_len < 8:
        raise CoreReloError("bad .BTF.ext header length")
    if hdr_len < 32:
        return {}
    off, length = struct.unpack_from("<II", data, 24)
    if not length:
        return {}
    start, end = hdr_len + off, hdr_len + off + length
    if end > len(data) or length < 4 or off % 4:
        raise CoreReloError(".BTF.ext core_relo section out of range")
    (rec_size,) = struct.unpack_from("<I", data, start)
    if rec_size < 16 or rec_size % 4:
        raise CoreReloError(f".BTF.ext core_relo record size {rec_size} invalid")
    out: dict[str, list[CoreRelo]] = {}
    pos = start + 4
    try:
        while pos < end:
            if pos + 8 > end:
                raise CoreReloError(".BTF.ext core_relo section truncated")
            name_off, num = struct.unpack_from("<II", data, pos)
            pos += 8
            if pos + num * rec_size > end:
                raise CoreReloError(".BTF.ext core_relo section truncated")
            recs = out.setdefault(local_btf.name(name_off), [])
            for _ in range(num):
                insn_off, type_id, str_off, kind = struct.unpack_from("<IIII", data, pos)
                recs.append(CoreRelo(insn_off, type_id, local_btf.name(str_off), kind))
                pos += rec_size
    except _btf.BTFError as e:
        raise CoreReloError(f".BTF.ext core_relo: {e}") from None
    return out


# --- target BTF ----------------------------------------------------------------------


class TargetBtf:
    """A target for relocation built from a parsed :class:`bpft.btf.Btf`.

    Anything with ``type(id)``, ``name(off)`` and ``candidates(essential_name)``
    (ids in increasing order, any kind) can be a target; this one indexes a
    Btf's names on first use (fine for small BTF; the kernel's is
    :class:`KernelBtf`).
    """

    label = "target"

    def __init__(self, btf: Btf):
        self.btf = btf
        self._by_name: dict[str, list[int]] | None = None

    def type(self, type_id: int) -> Type:
        return self.btf.type(type_id)

    def name(self, off: int) -> str:
        return self.btf.name(off)

    def candidates(self, ess: str) -> list[int]:
        if self._by_name is None:
            idx: dict[str, list[int]] = {}
            for i, t in enumerate(self.btf.types, self.btf.first_id):
                if t.name_off:
                    n = self.btf.name(t.name_off)
                    if n:
                        idx.setdefault(essential_name(n), []).append(i)
            self._by_name = idx
        return self._by_name.get(ess, [])


def kernel_target() -> KernelBtf:
    """The running kernel's BTF as a relocation target (:func:`.vmlinux.kernel_btf`)."""
    return kernel_btf()


_wrapped: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _as_target(target: Any) -> Any:
    """A Btf becomes a TargetBtf, the same one for the same Btf (its caches are kept)."""
    if isinstance(target, Btf):
        got = _wrapped.get(target)
        if got is None:
            got = _wrapped[target] = TargetBtf(target)
        return got
    return target


# --- type helpers ------------------------------------------------------------------


def _skip(btf: Any, type_id: int) -> tuple[Type | None, int]:
    """skip_mods_and_typedefs: (type, id) after typedefs and modifiers; (None, id) if bad."""
    for _ in range(64):
        try:
            t = btf.type(type_id) if type_id else _VOID
        except _btf.BTFError:
            return None, type_id
        if t.kind not in _SKIP:
            return t, type_id
        type_id = t.size_or_type
    return None, type_id


_VOID = Type(UNKN, 0, 0, False, 0, None)


def _type_by_id(btf: Any, type_id: int) -> Type:
    if type_id == 0:
        return _VOID
    try:
        return btf.type(type_id)
    except _btf.BTFError:
        raise _Err() from None


def _resolve_size(btf: Any, type_id: int) -> int:
    """btf__resolve_size; raises _Err(-EINVAL / -E2BIG)."""
    nelems = 1
    for _ in range(32):
        if type_id == 0:
            break
        t = _type_by_id(btf, type_id)
        k = t.kind
        if k in (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT):
            size = t.size_or_type
            if nelems and size > 0xFFFFFFFF // nelems:
                raise _Err(-_errno.E2BIG)
            return nelems * size
        if k == PTR:
            return nelems * 8
        if k in (TYPEDEF, VOLATILE, CONST, RESTRICT, VAR, DECL_TAG, TYPE_TAG):
            type_id = t.size_or_type
        elif k == ARRAY:
            ne = t.members[2]
            if nelems and ne > 0xFFFFFFFF // nelems:
                raise _Err(-_errno.E2BIG)
            nelems *= ne
            type_id = t.members[0]
        else:
            raise _Err()
    raise _Err()


def _any_enum(t: Type) -> bool:
    return t.kind in (ENUM, ENUM64)


def _kind_compat(a: Type, b: Type) -> bool:
    return a.kind == b.kind or (_any_enum(a) and _any_enum(b))


def _composite(t: Type) -> bool:
    return t.kind in (STRUCT, UNION)


def _int_enc(t: Type) -> int:
    return t.members[0] if t.kind == INT else 0


def _int_off(t: Type) -> int:
    return t.members[1]


def _sname(btf: Any, off: int) -> str:
    try:
        return btf.name(off)
    except _btf.BTFError:
        raise _Err() from None


def _enum_val(t: Type, idx: int) -> int:
    """The enumerator value as libbpf reads it into a u64 (s32 sign-extended for ENUM)."""
    v = t.members[idx][1]
    if t.kind == ENUM:
        v &= 0xFFFFFFFF
        if v & 0x80000000:
            v -= 1 << 32
    return v & _U64


def _kind_str(t: Type) -> str:
    return _KIND_NAMES.get(t.kind, "unknown")


# --- compatibility -------------------------------------------------------------------


def types_are_compat(lb: Any, lid: int, tb: Any, tid: int, level: int = 32) -> int:
    """__bpf_core_types_are_compat (1, 0, or raises _Err)."""
    lt: Type | None  # None once _skip below finds no type
    tt: Type | None
    lt, tt = _type_by_id(lb, lid), _type_by_id(tb, tid)
    if not _kind_compat(lt, tt):
        return 0
    depth = 32
    while True:
        depth -= 1
        if depth < 0:
            raise _Err()
        lt, lid = _skip(lb, lid)
        tt, tid = _skip(tb, tid)
        if lt is None or tt is None:
            raise _Err()
        if not _kind_compat(lt, tt):
            return 0
        k = lt.kind
        if k in (UNKN, STRUCT, UNION, ENUM, FWD, ENUM64):
            return 1
        if k == INT:
            return int(_int_off(lt) == 0 and _int_off(tt) == 0)
        if k == PTR:
            lid, tid = lt.size_or_type, tt.size_or_type
            continue
        if k == ARRAY:
            lid, tid = lt.members[0], tt.members[0]
            continue
        if k == FUNC_PROTO:
            if lt.vlen != tt.vlen:
                return 0
            for (_, lp), (_, tp) in zip(lt.members, tt.members, strict=True):
                if level <= 0:
                    raise _Err()
                _, a = _skip(lb, lp)
                _, b = _skip(tb, tp)
                r = types_are_compat(lb, a, tb, b, level - 1)
                if r <= 0:
                    return r
            _, lid = _skip(lb, lt.size_or_type)
            _, tid = _skip(tb, tt.size_or_type)
            continue
        return 0


def _names_match(lb: Any, loff: int, tb: Any, toff: int) -> bool:
    ln, tn = _sname(lb, loff), _sname(tb, toff)
    if not tn:
        return not ln
    ll, tl = essential_name_len(ln), essential_name_len(tn)
    return ll == tl and ln[:ll] == tn[:tl]


def _enums_match(lb: Any, lt: Type, tb: Any, tt: Type) -> int:
    if lt.size_or_type != tt.size_or_type or lt.vlen > tt.vlen:
        return 0
    for ln, _ in lt.members:
        if not any(_names_match(lb, ln, tb, tn) for tn, _ in tt.members):
            return 0
    return 1


def _composites_match(lb: Any, lt: Type, tb: Any, tt: Type, behind_ptr: bool, level: int) -> int:
    if lt.vlen > tt.vlen:
        return 0
    for lname, ltype, _, _ in lt.members:
        for tname, ttype, _, _ in tt.members:
            if not _names_match(lb, lname, tb, tname):
                continue
            if types_match(lb, ltype, tb, ttype, behind_ptr, level - 1) > 0:
                break
        else:
            return 0
    return 1


def types_match(lb: Any, lid: int, tb: Any, tid: int, behind_ptr: bool = False, level: int = 32) -> int:
    """__bpf_core_types_match (1, 0, or raises _Err)."""
    if level <= 0:
        raise _Err()
    _type_by_id(lb, lid)
    _type_by_id(tb, tid)
    depth = 32
    while True:
        depth -= 1
        if depth < 0:
            raise _Err()
        lt, lid = _skip(lb, lid)
        tt, tid = _skip(tb, tid)
        if lt is None or tt is None:
            raise _Err()
        if not _names_match(lb, lt.name_off, tb, tt.name_off):
            return 0
        local_kind, target_kind = lt.kind, tt.kind
        if local_kind == UNKN:
            return int(local_kind == target_kind)
        if local_kind == FWD:
            lf = lt.kflag
            if behind_ptr:
                if local_kind == target_kind:
                    return int(lf == tt.kflag)
                return int((target_kind == STRUCT and not lf) or (target_kind == UNION and lf))
            if local_kind != target_kind:
                return 0
            return int(lf == tt.kflag)
        if local_kind in (ENUM, ENUM64):
            if not _any_enum(tt):
                return 0
            return _enums_match(lb, lt, tb, tt)
        if local_kind in (STRUCT, UNION):
            if behind_ptr:
                if local_kind == target_kind:
                    return 1
                if target_kind != FWD:
                    return 0
                return int((local_kind == UNION) == tt.kflag)
            if local_kind != target_kind:
                return 0
            return _composites_match(lb, lt, tb, tt, behind_ptr, level)
        if local_kind == INT:
            if local_kind != target_kind:
                return 0
            return int(
                lt.size_or_type == tt.size_or_type and (_int_enc(lt) & INT_SIGNED) == (_int_enc(tt) & INT_SIGNED)
            )
        if local_kind == PTR:
            if local_kind != target_kind:
                return 0
            behind_ptr = True
            lid, tid = lt.size_or_type, tt.size_or_type
            continue
        if local_kind == ARRAY:
            if local_kind != target_kind or lt.members[2] != tt.members[2]:
                return 0
            lid, tid = lt.members[0], tt.members[0]
            continue
        if local_kind == FUNC_PROTO:
            if local_kind != target_kind or lt.vlen != tt.vlen:
                return 0
            for (_, lp), (_, tp) in zip(lt.members, tt.members, strict=True):
                r = types_match(lb, lp, tb, tp, behind_ptr, level - 1)
                if r <= 0:
                    return r
            lid, tid = lt.size_or_type, tt.size_or_type
            continue
        return 0


def fields_are_compat(lb: Any, lid: int, tb: Any, tid: int) -> int:
    """bpf_core_fields_are_compat."""
    while True:
        lt, lid = _skip(lb, lid)
        tt, tid = _skip(tb, tid)
        if lt is None or tt is None:
            raise _Err()
        if _composite(lt) and _composite(tt):
            return 1
        if not _kind_compat(lt, tt):
            return 0
        k = lt.kind
        if k in (PTR, FLOAT):
            return 1
        if k in (FWD, ENUM, ENUM64):
            ln, tn = _sname(lb, lt.name_off), _sname(tb, tt.name_off)
            ll, tl = essential_name_len(ln), essential_name_len(tn)
            return int(ll == 0 or tl == 0 or (ll == tl and ln[:ll] == tn[:tl]))
        if k == INT:
            return int(_int_off(lt) == 0 and _int_off(tt) == 0)
        if k == ARRAY:
            lid, tid = lt.members[0], tt.members[0]
            continue
        return 0


# --- specs ---------------------------------------------------------------------------


class _Accessor:
    __slots__ = ("type_id", "idx", "name")

    def __init__(self, type_id: int, idx: int, name: str | None):
        self.type_id, self.idx, self.name = type_id, idx, name


class _Spec:
    __slots__ = ("btf", "root_type_id", "relo_kind", "spec", "raw_spec", "bit_offset")

    def __init__(self, btf: Any, root_type_id: int, kind: int):
        self.btf = btf
        self.root_type_id = root_type_id
        self.relo_kind = kind
        self.spec: list[_Accessor] = []
        self.raw_spec: list[int] = []
        self.bit_offset = 0

    def copy(self) -> _Spec:
        s = _Spec(self.btf, self.root_type_id, self.relo_kind)
        s.spec = [_Accessor(a.type_id, a.idx, a.name) for a in self.spec]
        s.raw_spec = list(self.raw_spec)
        s.bit_offset = self.bit_offset
        return s


def _parse_access(text: str) -> list[int]:
    """The access string as libbpf's sscanf("%d") loop reads it; raises _Err."""
    if not text or text[0] == ":":
        raise _Err()
    out: list[int] = []
    for part in text.split(":"):
        s = part.strip()
        if not s or not (s.isdigit() or (s[0] in "+-" and s[1:].isdigit())):
            raise _Err()
        v = int(s)
        if v < 0 or v > 0x7FFFFFFF:
            raise _Err()
        if len(out) == SPEC_MAX_LEN:
            raise _Err(-_errno.E2BIG)
        out.append(v)
    return out


def _is_flex_arr(btf: Any, acc: _Accessor | None, nelems: int) -> bool:
    if acc is None or not acc.name or nelems > 0:
        return False
    t = _type_by_id(btf, acc.type_id)
    return acc.idx == t.vlen - 1


def parse_spec(btf: Any, relo: CoreRelo, prog_name: str = "", warn: Callable[[str], None] | None = None) -> _Spec:
    """bpf_core_parse_spec; raises _Err."""
    access = relo.access_str
    if not access or access[0] == ":":
        raise _Err()
    spec = _Spec(btf, relo.type_id, relo.kind)
    if relo.kind in _TYPE_KINDS:
        if access != "0":
            raise _Err()
        return spec
    raw = _parse_access(access)
    spec.raw_spec = raw
    t, tid = _skip(btf, relo.type_id)
    if t is None:
        raise _Err()
    idx = raw[0]
    acc = _Accessor(tid, idx, None)
    spec.spec.append(acc)
    if relo.kind in _ENUMVAL_KINDS:
        if not _any_enum(t) or len(raw) > 1 or idx >= t.vlen:
            raise _Err()
        acc.name = _sname(btf, t.members[idx][0])
        return spec
    if relo.kind not in _FIELD_KINDS:
        raise _Err()
    sz = _resolve_size(btf, tid)
    spec.bit_offset = idx * sz * 8
    for i in range(1, len(raw)):
        t, tid = _skip(btf, tid)
        if t is None:
            raise _Err()
        idx = raw[i]
        if _composite(t):
            if idx >= t.vlen:
                raise _Err()
            mname, mtype, moff, _ = t.members[idx]
            spec.bit_offset += moff
            if mname:
                name = _sname(btf, mname)
                if not name:
                    raise _Err()
                spec.spec.append(_Accessor(tid, idx, name))
            tid = mtype
        elif t.kind == ARRAY:
            elem, _, nelems = t.members
            et, tid = _skip(btf, elem)
            if et is None:
                raise _Err()
            flex = _is_flex_arr(btf, spec.spec[-1] if spec.spec else None, nelems)
            if not flex and idx >= nelems:
                raise _Err()
            spec.spec.append(_Accessor(tid, idx, None))
            spec.bit_offset += idx * _resolve_size(btf, tid) * 8
        else:
            if warn:
                warn(
                    f"prog '{prog_name}': relo for [{relo.type_id}] {access} (at idx {i}) "
                    f"captures type [{tid}] of unexpected kind {_kind_str(t)}"
                )
            raise _Err()
        if len(spec.spec) > SPEC_MAX_LEN:
            raise _Err(-_errno.E2BIG)
    spec.bit_offset &= 0xFFFFFFFF
    return spec


def _match_member(lb: Any, lacc: _Accessor, tb: Any, tid: int, spec: _Spec) -> tuple[int, int]:
    """bpf_core_match_member: (found, next target id)."""
    tt, tid = _skip(tb, tid)
    if tt is None:
        raise _Err()
    if not _composite(tt):
        return 0, 0
    lt = _type_by_id(lb, lacc.type_id)
    lname_off, ltype, _, _ = lt.members[lacc.idx]
    lname = _sname(lb, lname_off)
    for i, (mname, mtype, moff, _) in enumerate(tt.members):
        if len(spec.raw_spec) == SPEC_MAX_LEN:
            raise _Err(-_errno.E2BIG)
        spec.bit_offset += moff
        spec.raw_spec.append(i)
        tname = _sname(tb, mname)
        if not tname:
            found, nxt = _match_member(lb, lacc, tb, mtype, spec)
            if found:
                return found, nxt
        elif tname == lname:
            spec.spec.append(_Accessor(tid, i, tname))
            found = fields_are_compat(lb, ltype, tb, mtype)
            if not found:
                spec.spec.pop()
            return found, mtype
        spec.bit_offset -= moff
        spec.raw_spec.pop()
    return 0, 0


def spec_match(local: _Spec, tb: Any, tid: int) -> tuple[int, _Spec]:
    """bpf_core_spec_match: (1 or 0, target spec); raises _Err."""
    targ = _Spec(tb, tid, local.relo_kind)
    kind = local.relo_kind
    if kind in _TYPE_KINDS:
        if kind == TYPE_MATCHES:
            return types_match(local.btf, local.root_type_id, tb, tid), targ
        return types_are_compat(local.btf, local.root_type_id, tb, tid), targ
    lacc0 = local.spec[0]
    if kind in _ENUMVAL_KINDS:
        tt, tid = _skip(tb, tid)
        if tt is None or not _any_enum(tt):
            return 0, targ
        lel = essential_name_len(lacc0.name or "")
        for i, (noff, _) in enumerate(tt.members):
            tn = _sname(tb, noff)
            if essential_name_len(tn) != lel:
                continue
            if tn[:lel] == (lacc0.name or "")[:lel]:
                targ.spec.append(_Accessor(tid, i, tn))
                targ.raw_spec.append(i)
                return 1, targ
        return 0, targ
    if kind not in _FIELD_KINDS:
        raise _Err()
    for i, lacc in enumerate(local.spec):
        tt, tid = _skip(tb, tid)
        if tt is None:
            raise _Err()
        if lacc.name:
            found, tid = _match_member(local.btf, lacc, tb, tid, targ)
            if found <= 0:
                return found, targ
        else:
            if i > 0:
                if tt.kind != ARRAY:
                    return 0, targ
                elem, _, nelems = tt.members
                flex = _is_flex_arr(tb, targ.spec[-1] if targ.spec else None, nelems)
                if not flex and lacc.idx >= nelems:
                    return 0, targ
                et, tid = _skip(tb, elem)
                if et is None:
                    raise _Err()
            if len(targ.raw_spec) == SPEC_MAX_LEN:
                raise _Err(-_errno.E2BIG)
            targ.spec.append(_Accessor(tid, lacc.idx, None))
            targ.raw_spec.append(lacc.idx)
            targ.bit_offset += lacc.idx * _resolve_size(tb, tid) * 8
    targ.bit_offset &= 0xFFFFFFFF
    return 1, targ


def format_spec(spec: _Spec) -> str:
    """bpf_core_format_spec: ``<byte_off> [2] struct task_struct.pid (0:1 @ offset 4)``."""
    btf = spec.btf
    try:
        t = _type_by_id(btf, spec.root_type_id)
        s = _sname(btf, t.name_off)
    except _Err:
        return f"<{KIND_STR.get(spec.relo_kind, 'unknown')}> [{spec.root_type_id}] <?>"
    out = f"<{KIND_STR.get(spec.relo_kind, 'unknown')}> [{spec.root_type_id}] {_kind_str(t)} {s or '<anon>'}"
    kind = spec.relo_kind
    if kind in _TYPE_KINDS:
        return out
    if kind in _ENUMVAL_KINDS:
        et, _ = _skip(btf, spec.root_type_id)
        # libbpf prints raw_spec[0], which is 0 for a candidate that did not match
        ei = spec.raw_spec[0] if spec.raw_spec else 0
        if et is None or not _any_enum(et) or ei >= et.vlen:
            return out
        noff, _ = et.members[ei]
        v = _enum_val(et, ei)
        if et.kind == ENUM:
            v &= 0xFFFFFFFF
            if et.kflag and v & 0x80000000:
                v -= 1 << 32
        elif et.kflag and v & (1 << 63):
            v -= 1 << 64
        return out + f"::{_sname(btf, noff)} = {v}"
    if kind in _FIELD_KINDS:
        for i, a in enumerate(spec.spec):
            if a.name:
                out += f".{a.name}"
            elif i > 0 or a.idx > 0:
                out += f"[{a.idx}]"
        out += " (" + ":".join(str(x) for x in spec.raw_spec)
        if spec.bit_offset % 8:
            out += f" @ offset {spec.bit_offset // 8}.{spec.bit_offset % 8})"
        else:
            out += f" @ offset {spec.bit_offset // 8})"
    return out


# --- values --------------------------------------------------------------------------


class _RelocResult:
    __slots__ = (
        "orig_val",
        "new_val",
        "poison",
        "validate",
        "fail_memsz_adjust",
        "orig_sz",
        "new_sz",
        "orig_type_id",
        "new_type_id",
    )

    def __init__(self) -> None:
        self.orig_val = self.new_val = 0
        self.poison = False
        self.validate = True
        self.fail_memsz_adjust = False
        self.orig_sz = self.new_sz = 0
        self.orig_type_id = self.new_type_id = 0


_POISON = object()


def _calc_field(relo: CoreRelo, spec: _Spec | None, prog_name: str, warn) -> tuple[Any, int, int, bool]:
    """bpf_core_calc_field_relo: (value or _POISON, field size, field type id, validate)."""
    if relo.kind == FIELD_EXISTS:
        return (1 if spec else 0), 0, 0, True
    if spec is None:
        return _POISON, 0, 0, True
    acc = spec.spec[-1]
    btf = spec.btf
    t = _type_by_id(btf, acc.type_id)
    if not acc.name:
        if relo.kind == FIELD_BYTE_OFFSET:
            sz = _resolve_size(btf, acc.type_id)
            return spec.bit_offset // 8, sz, acc.type_id, True
        if relo.kind == FIELD_BYTE_SIZE:
            return _resolve_size(btf, acc.type_id), 0, 0, True
        if warn:
            warn(f"prog '{prog_name}': relo {relo.kind} at insn #{relo.insn_off // 8} can't be applied to array access")
        raise _Err()
    _, mtype, _, bit_sz = t.members[acc.idx]
    mt, field_type_id = _skip(btf, mtype)
    if mt is None:
        raise _Err()
    bit_off = spec.bit_offset
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = mt.size_or_type
        if byte_sz <= 0:
            raise _Err()
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                if warn:
                    warn(
                        f"prog '{prog_name}': relo {relo.kind} at insn #{relo.insn_off // 8} can't be satisfied for bitfield"
                    )
                raise _Err(-_errno.E2BIG)
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = _resolve_size(btf, field_type_id)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    validate = not bitfield
    k = relo.kind
    fsz = ftid = 0
    if k == FIELD_BYTE_OFFSET:
        val = byte_off
        if not bitfield:
            fsz, ftid = byte_sz, field_type_id
    elif k == FIELD_BYTE_SIZE:
        val = byte_sz
    elif k == FIELD_SIGNED:
        val = int((_any_enum(mt) and mt.kflag) or bool(_int_enc(mt) & INT_SIGNED))
        validate = True
    elif k == FIELD_LSHIFT_U64:
        val = (64 - (bit_off + bit_sz - byte_off * 8)) & _U64
    elif k == FIELD_RSHIFT_U64:
        val = (64 - bit_sz) & _U64
        validate = True
    else:
        raise _Err(-_errno.EOPNOTSUPP)
    return val, fsz, ftid, validate


def _calc_type(relo: CoreRelo, spec: _Spec | None) -> tuple[int, bool]:
    if spec is None:
        return 0, True
    k = relo.kind
    if k == TYPE_ID_TARGET:
        return spec.root_type_id, False
    if k in (TYPE_EXISTS, TYPE_MATCHES):
        return 1, True
    if k == TYPE_SIZE:
        return _resolve_size(spec.btf, spec.root_type_id), True
    raise _Err(-_errno.EOPNOTSUPP)


def _calc_enumval(relo: CoreRelo, spec: _Spec | None) -> Any:
    if relo.kind == ENUMVAL_EXISTS:
        return 1 if spec else 0
    if relo.kind == ENUMVAL_VALUE:
        if spec is None:
            return _POISON
        t = _type_by_id(spec.btf, spec.spec[0].type_id)
        return _enum_val(t, spec.spec[0].idx)
    raise _Err(-_errno.EOPNOTSUPP)


def _calc_relo(relo: CoreRelo, idx: int, local: _Spec, targ: _Spec | None, prog_name: str, warn) -> _RelocResult:
    """bpf_core_calc_relo."""
    res = _RelocResult()
    k = relo.kind
    try:
        if k in _FIELD_KINDS:
            ov, res.orig_sz, res.orig_type_id, res.validate = _calc_field(relo, local, prog_name, warn)
            nv, res.new_sz, res.new_type_id, _ = _calc_field(relo, targ, prog_name, warn)
            if ov is _POISON or nv is _POISON:
                res.poison = True
                return res
            res.orig_val, res.new_val = ov, nv
            if res.orig_sz != res.new_sz:
                ot = _type_by_id(local.btf, res.orig_type_id)
                nt = _type_by_id(targ.btf, res.new_type_id) if targ else _VOID
                if ot.kind == PTR and nt.kind == PTR:
                    return res
                if ot.kind == INT and nt.kind == INT and _int_enc(ot) != INT_SIGNED and _int_enc(nt) != INT_SIGNED:
                    return res
                res.fail_memsz_adjust = True
        elif k in _TYPE_KINDS:
            res.orig_val, res.validate = _calc_type(relo, local)
            res.new_val, _ = _calc_type(relo, targ)
        elif k in _ENUMVAL_KINDS:
            ov = _calc_enumval(relo, local)
            nv = _calc_enumval(relo, targ)
            if ov is _POISON or nv is _POISON:
                res.poison = True
                return res
            res.orig_val, res.new_val = ov, nv
        else:
            raise _Err(-_errno.EOPNOTSUPP)
    except _Err as e:
        if e.err == -_errno.EOPNOTSUPP and warn:
            warn(
                f"prog '{prog_name}': relo #{idx}: unrecognized CO-RE relocation "
                f"{KIND_STR.get(k, 'unknown')} ({k}) at insn #{relo.insn_off // 8}"
            )
        raise
    return res


# --- patching ------------------------------------------------------------------------


def _poison(insns: bytearray, pos: int, log, prog_name: str, idx: int) -> None:
    if log:
        log(f"prog '{prog_name}': relo #{idx}: substituting insn #{pos // 8} w/ invalid insn")
    _INSN.pack_into(insns, pos, 0x05 | 0x80, 0, 0, POISON_IMM)


_SIZE_BYTES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
_BYTES_SIZE = {8: 0x18, 4: 0x00, 2: 0x08, 1: 0x10}


def patch_insn(
    insns: bytearray, relo: CoreRelo, idx: int, res: _RelocResult, prog_name: str = "", warn=None, log=None
) -> None:
    """bpf_core_patch_insn; raises _Err on instructions libbpf refuses."""
    pos = relo.insn_off
    ii = pos // 8
    code, regs, off, imm = _INSN.unpack_from(insns, pos)
    cls = code & 0x07
    is_ldimm64 = code == 0x18

    def poison() -> None:
        # an ld_imm64 is poisoned in both halves, so that the verifier never meets a bare
        # "unknown opcode 00". Debian's bpftool 7.1 since 7.1.0+6.1.190 (libbpf's fix
        # "Reject truncated ldimm64 CO-RE relocations") poisons and logs the first half
        # first; builds before it logged the second half first.
        _poison(insns, pos, log, prog_name, idx)
        if is_ldimm64 and pos + 16 <= len(insns):
            _poison(insns, pos + 8, log, prog_name, idx)

    if res.poison:
        poison()
        return
    orig, new = res.orig_val, res.new_val
    if cls in (0x04, 0x07):  # ALU, ALU64
        if code & 0x08:
            raise _Err()
        if res.validate and (imm & _U64) != orig:
            if warn:
                warn(
                    f"prog '{prog_name}': relo #{idx}: unexpected insn #{ii} (ALU/ALU64) value: "
                    f"got {imm & 0xFFFFFFFF}, exp {orig} -> {new}"
                )
            raise _Err()
        nimm = new & 0xFFFFFFFF
        if nimm & 0x80000000:
            nimm -= 1 << 32
        _INSN.pack_into(insns, pos, code, regs, off, nimm)
        if log:
            log(f"prog '{prog_name}': relo #{idx}: patched insn #{ii} (ALU/ALU64) imm {imm & 0xFFFFFFFF} -> {new}")
    elif cls in (0x01, 0x02, 0x03):  # LDX, ST, STX
        if res.validate and (off & _U64) != orig:
            if warn:
                warn(
                    f"prog '{prog_name}': relo #{idx}: unexpected insn #{ii} (LDX/ST/STX) value: "
                    f"got {off & 0xFFFFFFFF}, exp {orig} -> {new}"
                )
            raise _Err()
        if new > 0x7FFF:
            if warn:
                warn(f"prog '{prog_name}': relo #{idx}: insn #{ii} (LDX/ST/STX) value too big: {new}")
            raise _Err(-_errno.ERANGE)
        if res.fail_memsz_adjust:
            if warn:
                warn(
                    f"prog '{prog_name}': relo #{idx}: insn #{ii} (LDX/ST/STX) accesses field incorrectly. "
                    "Make sure you are accessing pointers, unsigned integers, or fields of matching type and size."
                )
            poison()
            return
        _INSN.pack_into(insns, pos, code, regs, new, imm)
        if log:
            log(f"prog '{prog_name}': relo #{idx}: patched insn #{ii} (LDX/ST/STX) off {off & _U64} -> {new}")
        if res.new_sz != res.orig_sz:
            have = _SIZE_BYTES[code & 0x18]
            if have != res.orig_sz:
                if warn:
                    warn(
                        f"prog '{prog_name}': relo #{idx}: insn #{ii} (LDX/ST/STX) unexpected mem size: "
                        f"got {have}, exp {res.orig_sz}"
                    )
                raise _Err()
            nsz = _BYTES_SIZE.get(res.new_sz)
            if nsz is None:
                if warn:
                    warn(f"prog '{prog_name}': relo #{idx}: insn #{ii} (LDX/ST/STX) invalid new mem size: {res.new_sz}")
                raise _Err()
            _INSN.pack_into(insns, pos, (code & 0xE0) | nsz | cls, regs, new, imm)
            if log:
                log(
                    f"prog '{prog_name}': relo #{idx}: patched insn #{ii} (LDX/ST/STX) mem_sz {res.orig_sz} -> {res.new_sz}"
                )
    elif cls == 0x00:  # LD
        ok = is_ldimm64 and pos + 16 <= len(insns) and (regs >> 4) == 0 and off == 0
        if ok:
            code2, regs2, off2, imm2 = _INSN.unpack_from(insns, pos + 8)
            ok = code2 == 0 and regs2 == 0 and off2 == 0
        if not ok:
            if warn:
                warn(f"prog '{prog_name}': relo #{idx}: insn #{ii} (LDIMM64) has unexpected form")
            raise _Err()
        cur = (imm & 0xFFFFFFFF) | ((imm2 & 0xFFFFFFFF) << 32)
        if res.validate and cur != orig:
            if warn:
                warn(
                    f"prog '{prog_name}': relo #{idx}: unexpected insn #{ii} (LDIMM64) value: "
                    f"got {cur}, exp {orig} -> {new}"
                )
            raise _Err()
        lo, hi = new & 0xFFFFFFFF, (new >> 32) & 0xFFFFFFFF
        _INSN.pack_into(insns, pos, code, regs, off, lo - (1 << 32) if lo & 0x80000000 else lo)
        _INSN.pack_into(insns, pos + 8, code2, regs2, off2, hi - (1 << 32) if hi & 0x80000000 else hi)
        if log:
            log(f"prog '{prog_name}': relo #{idx}: patched insn #{ii} (LDIMM64) imm64 {cur} -> {new}")
    else:
        if warn:
            warn(
                f"prog '{prog_name}': relo #{idx}: trying to relocate unrecognized insn #{ii}, "
                f"code:0x{code:x}, src:0x{regs >> 4:x}, dst:0x{regs & 0xF:x}, off:0x{off & 0xFFFF:x}, "
                f"imm:0x{imm & 0xFFFFFFFF:x}"
            )
        raise _Err()


# --- the driver ----------------------------------------------------------------------

# candidate lists per (local BTF, target), pruned as libbpf prunes its cache
_cand_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cands_for(local_btf: Btf, target: Any, local_id: int, cache: dict, log) -> list[int]:
    got = cache.get(local_id)
    if got is not None:
        return got
    lt = _type_by_id(local_btf, local_id)
    lname = _sname(local_btf, lt.name_off)
    if not lname:
        raise _Err()
    ess = essential_name(lname)
    out = []
    for cid in target.candidates(ess):
        try:
            ct = target.type(cid)
        except _btf.BTFError:
            continue
        if not _kind_compat(ct, lt):
            continue
        out.append(cid)
        if log:
            tn = _sname(target, ct.name_off)
            log(
                f"CO-RE relocating [{local_id}] {_kind_str(lt)} {lname}: found target candidate "
                f"[{cid}] {_kind_str(ct)} {tn} in [{getattr(target, 'label', 'target')}]"
            )
    cache[local_id] = out
    return out


def calc_relo_insn(
    relo: CoreRelo, idx: int, local_btf: Btf, target: Any, cache: dict, prog_name: str = "", warn=None, log=None
) -> _RelocResult:
    """bpf_core_resolve_relo + bpf_core_calc_relo_insn: the result for one relocation."""
    local_id = relo.type_id
    lt = _type_by_id(local_btf, local_id)
    lname = _sname(local_btf, lt.name_off)
    cands: list[int] = []
    if relo.kind != TYPE_ID_LOCAL:
        # libbpf looks for candidates (bpf_core_find_cands) before parsing the spec
        try:
            cands = _cands_for(local_btf, target, local_id, cache, log)
        except _Err as e:
            if warn:
                warn(
                    f"prog '{prog_name}': relo #{idx}: target candidate search failed for "
                    f"[{local_id}] {_kind_str(lt)} {lname}: {e.err}"
                )
            raise
    try:
        local = parse_spec(local_btf, relo, prog_name, warn)
    except _Err as e:
        if warn:
            warn(
                f"prog '{prog_name}': relo #{idx}: parsing [{local_id}] {_kind_str(lt)} "
                f"{lname or '<anon>'} + {relo.access_str} failed: {e.err}"
            )
        raise _Err(-_errno.EINVAL) from None
    if log:
        log(f"prog '{prog_name}': relo #{idx}: {format_spec(local)}")
    if relo.kind == TYPE_ID_LOCAL:
        res = _RelocResult()
        res.validate = False
        res.orig_val = res.new_val = local.root_type_id
        return res
    if not lname:
        if warn:
            warn(
                f"prog '{prog_name}': relo #{idx}: <{KIND_STR.get(relo.kind, 'unknown')}> ({relo.kind}) "
                "relocation doesn't support anonymous types"
            )
        raise _Err(-_errno.EOPNOTSUPP)
    kept: list[int] = []
    best: _RelocResult | None = None
    best_spec: _Spec | None = None
    for i, cid in enumerate(cands):
        try:
            found, cspec = spec_match(local, target, cid)
        except _Err as e:
            if warn:
                warn(f"prog '{prog_name}': relo #{idx}: error matching candidate #{i} <{cid}>: {e.err}")
            raise
        if log:
            word = "matching" if found else "non-matching"
            log(f"prog '{prog_name}': relo #{idx}: {word} candidate #{i} {format_spec(cspec)}")
        if not found:
            continue
        cres = _calc_relo(relo, idx, local, cspec, prog_name, warn)
        if best is None or best_spec is None:  # set together, by the first match
            best, best_spec = cres, cspec
        elif cspec.bit_offset != best_spec.bit_offset:
            if warn:
                warn(
                    f"prog '{prog_name}': relo #{idx}: field offset ambiguity: "
                    f"{cspec.bit_offset} != {best_spec.bit_offset}"
                )
            raise _Err()
        elif cres.poison != best.poison or cres.new_val != best.new_val:
            if warn:
                warn(
                    f"prog '{prog_name}': relo #{idx}: relocation decision ambiguity: "
                    f"{'failure' if cres.poison else 'success'} {cres.new_val} != "
                    f"{'failure' if best.poison else 'success'} {best.new_val}"
                )
            raise _Err()
        kept.append(cid)
    if kept:
        cache[local_id] = kept
        return best  # type: ignore[return-value]
    if log:
        log(f"prog '{prog_name}': relo #{idx}: no matching targets found")
    return _calc_relo(relo, idx, local, None, prog_name, warn)


def apply_core_relos(
    prog_insns: bytearray,
    relos: list[CoreRelo],
    local_btf: Btf,
    target: Any,
    *,
    prog_name: str = "",
    log: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> None:
    """Compute every relocation as libbpf 1.1 does and patch ``prog_insns`` in place.

    ``target`` is :func:`kernel_target`, a :class:`TargetBtf` or a
    ``bpft.btf.Btf``. Candidate lists are cached per (local BTF, target) and
    pruned across calls, as libbpf's per-object cache is, so call this for the
    programs of one object in ELF order. ``log`` receives libbpf's debug lines,
    ``warn`` its warnings (both without the ``libbpf: `` prefix). A relocation
    that cannot be computed or applied raises :class:`CoreReloError`; one that
    cannot be satisfied poisons its instruction, as libbpf does.
    """
    target = _as_target(target)
    per_local = _cand_caches.get(local_btf)
    if per_local is None:
        per_local = _cand_caches[local_btf] = weakref.WeakKeyDictionary()
    cache = per_local.get(target)
    if cache is None:
        cache = per_local[target] = {}
    n = len(prog_insns)
    for idx, relo in enumerate(relos):
        try:
            if relo.insn_off % 8 or relo.insn_off < 0 or relo.insn_off + 8 > n:
                raise CoreReloError(f"prog '{prog_name}': relo #{idx}: insn offset {relo.insn_off} out of range", idx)
            try:
                res = calc_relo_insn(relo, idx, local_btf, target, cache, prog_name, warn, log)
            except _Err as e:
                raise CoreReloError(
                    f"prog '{prog_name}': relo #{idx}: failed to relocate: {e.err}", idx, e.err
                ) from None
            try:
                patch_insn(prog_insns, relo, idx, res, prog_name, warn, log)
            except _Err as e:
                raise CoreReloError(
                    f"prog '{prog_name}': relo #{idx}: failed to patch insn #{relo.insn_off // 8}: {e.err}",
                    idx,
                    e.err,
                ) from None
        except (_btf.BTFError, IndexError, TypeError, struct.error) as e:
            raise CoreReloError(f"prog '{prog_name}': relo #{idx}: malformed BTF: {e}", idx) from None
