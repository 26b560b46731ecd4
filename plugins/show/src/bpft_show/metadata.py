"""``bpf_metadata_*`` variables of a program's .rodata, as bpftool shows them.

bpftool looks through the program's maps for the first array map with a
4-byte key, one entry, BTF for its value and ``.rodata`` in its name; reads
entry 0; and prints each DATASEC variable whose name starts with
``bpf_metadata_`` through its BTF dumper (JSON values with -j, the dumper's
plain-text form otherwise).
"""

from __future__ import annotations

import os

from bpft.kernel import info as kinfo
from bpft.kernel import syscall as sc

PREFIX = "bpf_metadata_"
_ARRAY = 2


def _find_rodata(map_ids: list[int]) -> tuple[kinfo.MapInfo, bytes] | None:
    for map_id in map_ids:
        try:
            fd = sc.map_get_fd_by_id(map_id)
        except OSError:
            return None
        try:
            mi = kinfo.map_info(fd)
            if (
                mi.type != _ARRAY
                or mi.key_size != 4
                or mi.max_entries != 1
                or not mi.btf_value_type_id
                or b".rodata" not in mi.name
            ):
                continue
            try:
                value = sc.map_lookup_elem(fd, b"\0\0\0\0", mi.value_size)
            except OSError:
                return None
            return mi, value
        except OSError:
            return None
        finally:
            os.close(fd)
    return None


def prog_metadata(fd: int, map_ids: list[int]) -> list[tuple[str, object, str]] | None:
    """[(name without prefix, JSON value, plain text)] or None when there is none."""
    found = _find_rodata(map_ids)
    if not found:
        return None
    mi, value = found
    from bpft import btf as btfmod

    try:
        btf = btfmod.load_kernel_btf(mi.btf_id)
        out = []
        for name, type_id, offset in btfmod.datasec_vars(btf, mi.btf_value_type_id):
            if not name.startswith(PREFIX):
                continue
            data = value[offset:]
            out.append(
                (name[len(PREFIX) :], btfmod.dump_json(btf, type_id, data), btfmod.dump_plain(btf, type_id, data))
            )
        return out or None
    except (OSError, ValueError):
        return None
