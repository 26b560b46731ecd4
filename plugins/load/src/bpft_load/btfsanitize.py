"""An object's BTF made loadable by an older kernel, as libbpf 1.1 sanitizes it.

Kinds the kernel does not know are replaced in a copy (the object's own BTF stays
as it is, for CO-RE and the maps), record for record, so type ids keep their
meaning:

=============================  ==============================================
missing                        replacement
=============================  ==============================================
VAR, DATASEC (5.2)             VAR -> INT of 1 byte; DATASEC -> STRUCT of its
                               variables ('.' in the name -> '_')
DECL_TAG (5.16)                INT of 1 byte
FUNC, FUNC_PROTO (5.0)         FUNC -> TYPEDEF; FUNC_PROTO -> ENUM (size 4)
global functions (5.6)         FUNC linkage -> static
FLOAT (5.13)                   anonymous empty STRUCT of the same size
TYPE_TAG (5.17)                anonymous CONST
ENUM64 (6.0)                   UNION whose members are one added 1-byte INT,
                               ``enum64_placeholder``; ENUM loses its kflag
=============================  ==============================================
"""

from __future__ import annotations

import struct

from bpft import btf as B

from .btfedit import EditableBtf
from .features import Feature, supports


def _info(kind: int, vlen: int = 0, kflag: int = 0) -> int:
    return (kflag << 31) | (kind << 24) | vlen


# the features this module stands in for
BTF_KIND_FEATURES = frozenset(
    {
        Feature.BTF_FUNC,
        Feature.BTF_FUNC_GLOBAL,
        Feature.BTF_DATASEC,
        Feature.BTF_FLOAT,
        Feature.BTF_DECL_TAG,
        Feature.BTF_TYPE_TAG,
        Feature.BTF_ENUM64,
    }
)


def _missing() -> set[Feature]:
    return {f for f in BTF_KIND_FEATURES if not supports(f)}


def sanitize(raw: bytes, missing: set[Feature] | None = None) -> bytes:
    """``raw`` (an encoded BTF blob) with what the kernel lacks replaced; ``raw`` itself
    when the kernel knows every kind. ``missing`` overrides the probe (for tests)."""
    missing = _missing() if missing is None else missing
    if not missing:
        return raw
    eb = EditableBtf(raw)
    types = eb.types
    placeholder = 0
    for tid in range(1, eb.count() + 1):
        off = eb.offsets[tid - 1]
        kind, vlen = eb.kind(tid), eb.vlen(tid)
        (info,) = struct.unpack_from("<I", types, off + 4)
        kflag = info >> 31
        if (kind == B.VAR and Feature.BTF_DATASEC in missing) or (
            kind == B.DECL_TAG and Feature.BTF_DECL_TAG in missing
        ):
            # 1 byte: a bigger INT could outgrow the variable it stands for
            struct.pack_into("<III", types, off + 4, _info(B.INT), 1, 8)
        elif kind == B.DATASEC and Feature.BTF_DATASEC in missing:
            _rename_section(eb, tid)
            struct.pack_into("<I", types, off + 4, _info(B.STRUCT, vlen))
            for i in range(vlen):
                at = off + 12 + 12 * i
                var_type, var_off, _size = struct.unpack_from("<III", types, at)
                (var_name,) = struct.unpack_from("<I", types, eb.offsets[var_type - 1])
                struct.pack_into("<III", types, at, var_name, var_type, var_off * 8)
        elif kind == B.FUNC_PROTO and Feature.BTF_FUNC in missing:
            struct.pack_into("<II", types, off + 4, _info(B.ENUM, vlen), 4)
        elif kind == B.FUNC and Feature.BTF_FUNC in missing:
            struct.pack_into("<I", types, off + 4, _info(B.TYPEDEF))
        elif kind == B.FUNC and Feature.BTF_FUNC_GLOBAL in missing:
            struct.pack_into("<I", types, off + 4, _info(B.FUNC))
        elif kind == B.FLOAT and Feature.BTF_FLOAT in missing:
            struct.pack_into("<II", types, off, 0, _info(B.STRUCT))
        elif kind == B.TYPE_TAG and Feature.BTF_TYPE_TAG in missing:
            struct.pack_into("<II", types, off, 0, _info(B.CONST))
        elif kind == B.ENUM and kflag and Feature.BTF_ENUM64 in missing:
            struct.pack_into("<I", types, off + 4, _info(B.ENUM, vlen))
        elif kind == B.ENUM64 and Feature.BTF_ENUM64 in missing:
            if not placeholder:
                placeholder = eb.add_int("enum64_placeholder", 1, 0)
                types = eb.types
            struct.pack_into("<I", types, off + 4, _info(B.UNION, vlen))
            for i in range(vlen):
                struct.pack_into("<II", types, off + 12 + 12 * i + 4, placeholder, 0)
    return eb.encode()


def _rename_section(eb: EditableBtf, tid: int) -> None:
    """'.data' -> '_data' in place: a STRUCT's name must be a C identifier."""
    (name_off,) = struct.unpack_from("<I", eb.types, eb.offsets[tid - 1])
    end = eb.strings.find(b"\0", name_off)
    eb.strings[name_off:end] = eb.strings[name_off:end].replace(b".", b"_")
