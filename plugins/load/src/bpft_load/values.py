"""Map keys and values as Python data, read through the object's BTF.

Integers (bitfields, enums and pointers too) become ``int``, ``bool`` stays ``bool``,
structs and unions ``dict`` (member name to value), arrays ``list``, except arrays
of chars, which stay ``bytes``; a global data section is a ``dict`` of its variables. Where a type is missing, the bytes are returned as
they are.
"""

from __future__ import annotations

from bpft.records import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs start-up: annotations only
    from typing import Any

from bpft import btf as B

_MAX_DEPTH = 64


def decode(btf: B.Btf | None, type_id: int, data: bytes) -> Any:
    """``data`` as a Python value of BTF type ``type_id`` (``data`` itself without a type)."""
    if btf is None or not type_id:
        return data
    return _decode(btf, type_id, data, 0, 0)


def _decode(btf: B.Btf, type_id: int, data: bytes, bit_offset: int, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise B.BTFError("type nesting too deep")
    type_id = btf.resolve(type_id)
    t = btf.type(type_id)
    kind = t.kind
    if kind == B.INT:
        encoding, int_offset, bits = t.members
        value = _bits(data, bit_offset + int_offset, bits)
        if encoding & B.INT_BOOL:
            return value != 0
        if encoding & B.INT_SIGNED and value >> (bits - 1):
            value -= 1 << bits
        return value
    if kind in (B.ENUM, B.ENUM64):
        value = _bits(data, bit_offset, t.size_or_type * 8)
        if t.kflag and value >> (t.size_or_type * 8 - 1):  # a signed enum
            value -= 1 << (t.size_or_type * 8)
        return value
    if kind == B.PTR:
        return _bits(data, bit_offset, 64)
    if kind in (B.STRUCT, B.UNION):
        out = {}
        for name_off, member_type, member_offset, bitfield_size in t.members:
            offset = bit_offset + member_offset
            if bitfield_size:
                out[btf.name(name_off)] = _bits(data, offset, bitfield_size)
            else:
                out[btf.name(name_off)] = _decode(btf, member_type, data[offset >> 3 :], offset & 7, depth + 1)
        return out
    if kind == B.ARRAY:
        element, _index_type, count = t.members
        size = btf.size(element)
        element_type = btf.type(btf.resolve(element)) if element else None
        if element_type is not None and element_type.kind == B.INT and size == 1:
            return bytes(data[:count])
        if count * max(size, 1) > len(data):
            raise B.BTFError(f"array of {count} elements is larger than its {len(data)} bytes of data")
        return [_decode(btf, element, data[i * size :], 0, depth + 1) for i in range(count)]
    if kind == B.DATASEC:  # a global data map's value: its variables by name
        return {
            btf.name(btf.type(var).name_off): _decode(
                btf, btf.type(var).size_or_type, data[off : off + size], 0, depth + 1
            )
            for var, off, size in t.members
        }
    return bytes(data[: btf.size(type_id)]) if kind == B.FLOAT else data


def _bits(data: bytes, bit_offset: int, bits: int) -> int:
    nbytes = (bit_offset + bits + 7) >> 3
    value = int.from_bytes(bytes(data[:nbytes]).ljust(nbytes, b"\0"), "little")
    return (value >> bit_offset) & ((1 << bits) - 1)
