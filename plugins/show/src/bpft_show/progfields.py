"""What ``prog show`` prints about a program: bpftool 7.1's fields, as one field table.

:data:`PROG_FIELDS` describes each field once (see :mod:`bpft_show.fieldtable`),
in the order of bpftool's JSON object (``print_prog_json()``). bpftool's plain
text (``print_prog_plain()``) takes the same fields in the same order but for
two: the offload device follows the tag, and the pinned paths come before
``btf_id``. It reads::

    10: xdp  name some_prog  tag 005a3d2123620c8b  gpl run_time_ns 81632 run_cnt 10
            loaded_at 2017-09-29T20:11:00+0000  uid 0
            xlated 528B  jited 370B  memlock 4096B  map_ids 10
            btf_id 5
            pids systemd(1)

The expressions read the info tuple of a listing (:data:`bpft.kernel.info.LIST_FIELDS`:
``name`` is the 16 NUL-padded bytes, ``gpl_compatible`` the 32-bit word that
holds the flag in bit 0), the values below, and the run values of one listing.
"""

from __future__ import annotations

import os
import re
import time

from bpft.kernel import fs, uapi
from bpft.kernel import info as kinfo
from bpft.output import json_quote
from bpft.progs import full_name, pinned_paths

from .fieldtable import Field, FieldTable, RunValue, Value
from .metadata import prog_metadata

NAME_SHOWN = kinfo.BPF_OBJ_NAME_LEN - 1  # a name this long may be cut: full_name() looks further
_REPLACE = "replace"


class TextCache(dict):
    """``cache[key]`` is ``make(key)``, made once per key: pieces of text that many programs share."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key):
        text = self[key] = self.make(key)
        return text


class Clock(TextCache):
    """bpftool's print_boot_time(): boot-relative ns to wall-clock seconds, and their text.

    ``clock[secs]`` is the local-time text of wall-clock ``secs``, made once
    per second (programs loaded together share one): a listing looks its texts
    up with ``clock[(clock.base_ns + load_time) // 1_000_000_000]``.
    """

    def __init__(self) -> None:
        super().__init__(lambda secs: time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(secs)))
        real = time.clock_gettime_ns(time.CLOCK_REALTIME)
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        rs, rn = divmod(real, 1_000_000_000)
        bs, bn = divmod(boot, 1_000_000_000)
        # bpftool's seconds: (rs - bs) + (rn - bn + nsecs) / 1e9, rounded down, in one division
        self.base_ns = (rs - bs) * 1_000_000_000 + rn - bn


def name_text(fd: int, raw: bytes) -> str:
    """The name to print from the info's NUL-padded bytes (bpftool's get_prog_full_name())."""
    name = raw.rstrip(b"\0")  # the kernel pads names with NULs and allows none inside one
    if len(name) < NAME_SHOWN:
        return name.decode("ascii", _REPLACE)  # the kernel allows only [A-Za-z0-9_.]
    return full_name(fd, kinfo.prog_info(fd))


def dev_name(ifindex: int, ns_dev: int, ns_ino: int) -> str | None:
    """The name of an offload device in our network namespace (print_dev_plain / print_dev_json)."""
    try:
        st = os.stat("/proc/self/ns/net")
    except OSError:
        return None
    if st.st_dev != ns_dev or st.st_ino != ns_ino:
        return None
    import socket

    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return None


def dev_json(ifindex: int, ns_dev: int, ns_ino: int) -> dict:
    """The JSON object of an offload device."""
    dev: dict = {"ifindex": ifindex, "ns_dev": ns_dev, "ns_inode": ns_ino}
    name = dev_name(ifindex, ns_dev, ns_ino)
    if name:
        dev["ifname"] = name
    return dev


_LEADING_INT = re.compile(rb"\s*([+-]?\d+)")


def atoll(text: bytes) -> int:
    """C's atoll(): the leading integer of ``text`` (after white space), 0 if none."""
    if text.isdigit():
        return int(text)
    m = _LEADING_INT.match(text)
    return int(m[1]) if m else 0


def _refs(options, env: dict) -> dict:
    from bpft.kernel.procfs import obj_refs

    return obj_refs("prog")


_TYPE_NAMES = uapi.PROG_TYPE_NAMES

#: What the expressions may call or read besides a program's own values.
HELPERS = {
    "TYPE_NAMES": _TYPE_NAMES,
    "TYPE_JSON": tuple(json_quote(name) for name in _TYPE_NAMES),
    "NR_TYPES": len(_TYPE_NAMES),
    "NAME_LAST": NAME_SHOWN - 1,  # the byte that is NUL in a name the kernel kept whole
    "json_quote": json_quote,
    "name_text": name_text,
    "dev_name": dev_name,
    "dev_json": dev_json,
    "atoll": atoll,
    "prog_map_ids": kinfo.prog_map_ids,
    "prog_metadata": prog_metadata,
}

#: The values of one listing, made when it starts.
RUN_VALUES = (
    RunValue("pinned", lambda options, env: pinned_paths("prog") if options.bpffs else None),  # -f
    RunValue("refs", _refs),  # the processes holding each program
    RunValue("clock", lambda options, env: Clock()),
    RunValue("base_ns", lambda options, env: env["clock"].base_ns),
    RunValue("memlock_of", lambda options, env: fs.fdinfo_reader("memlock")),
    # memlock texts, which many programs share
    RunValue("memlock_plain", lambda options, env: TextCache(lambda memlock: memlock.decode(errors=_REPLACE))),
    RunValue("memlock_json", lambda options, env: TextCache(lambda memlock: str(atoll(memlock)))),
)

#: The values of one program that several fields read, computed once per program.
VALUES = (
    Value("loaded_secs", "(base_ns + load_time) // 1_000_000_000"),
    Value("memlock", "memlock_of(fd)"),  # bytes, None if fdinfo has none
    Value("map_ids", "prog_map_ids(fd, nr_map_ids) if nr_map_ids else ()"),
    Value("pins", "pinned.get(id, ()) if pinned else None"),  # None: bpftool names no "pinned"
    Value("pids", "refs.get(id) if refs else None"),  # [(pid, comm)]
    Value("meta", "prog_metadata(fd, map_ids) if map_ids else None"),  # [(key, JSON value, text)]
)

# a name the kernel kept whole has only [A-Za-z0-9_.]: nothing to escape
_JSON_NAME = """{f'"{name_text(fd, name)}"' if not name[NAME_LAST] else json_quote(name_text(fd, name))}"""
_PIDS_TEXT = "', '.join(f'{comm}({pid})' for pid, comm in pids)"

#: bpftool's fields of a program, in its JSON order.
PROG_FIELDS = FieldTable(
    (
        Field("id", plain="{id}: ", json_text="{id}", column="id"),
        Field(
            "type",
            value="TYPE_NAMES[type] if type < NR_TYPES else type",
            plain="{TYPE_NAMES[type] if type < NR_TYPES else f'type {type}'}  ",
            json_text="{TYPE_JSON[type] if type < NR_TYPES else type}",
            column="type",
        ),
        Field(
            "name",
            value="name_text(fd, name)",
            when="name[0]",
            plain="name {name_text(fd, name)}  ",
            json_text=_JSON_NAME,
            column="name",
        ),
        Field("tag", value="tag.hex()", plain="tag {tag.hex()}", json_text='"{tag.hex()}"', column="tag"),
        Field(
            "gpl_compatible",
            value="bool(gpl_compatible & 1)",
            plain="{'  gpl' if gpl_compatible & 1 else ''}",
            json_text="{'true' if gpl_compatible & 1 else 'false'}",
            column="gpl",
            cell="'yes' if gpl_compatible & 1 else 'no'",
        ),
        Field("run_time_ns", when="run_time_ns", plain=" run_time_ns {run_time_ns}", json_text="{run_time_ns}"),
        Field("run_cnt", when="run_time_ns", plain=" run_cnt {run_cnt}", json_text="{run_cnt}"),
        Field(
            "recursion_misses",
            when="recursion_misses",
            plain=" recursion_misses {recursion_misses}",
            json_text="{recursion_misses}",
        ),
        Field(
            "dev",
            value="dev_json(ifindex, netns_dev, netns_ino)",
            when="ifindex",
            plain="  offloaded_to {dev_name(ifindex, netns_dev, netns_ino) or f'ifindex {ifindex} ns_dev {netns_dev} ns_ino {netns_ino}'}",
            plain_after="tag",
        ),
        # uid rides on load_time, as in bpftool: 0 is a valid uid
        Field(
            "loaded_at",
            value="loaded_secs",
            when="load_time",
            plain=r"\n\tloaded_at {clock[loaded_secs]}",
            json_text="{loaded_secs}",
            column="loaded_at",
            cell="clock[loaded_secs]",
        ),
        Field(
            "uid",
            value="created_by_uid",
            when="load_time",
            plain="  uid {created_by_uid}",
            json_text="{created_by_uid}",
            column="uid",
        ),
        Field(
            "bytes_xlated",
            value="xlated_prog_len",
            plain=r"\n\txlated {xlated_prog_len}B",
            json_text="{xlated_prog_len}",
            column="xlated",
        ),
        Field(
            "jited",
            value="jited_prog_len > 0",
            plain="{f'  jited {jited_prog_len}B' if jited_prog_len else '  not jited'}",
            json_text="{'true' if jited_prog_len else 'false'}",
            column="jited",
            cell="jited_prog_len or '-'",
        ),
        Field("bytes_jited", value="jited_prog_len", when="jited_prog_len", json_text="{jited_prog_len}"),
        Field(
            "bytes_memlock",
            value="atoll(memlock)",
            when="memlock is not None",
            plain="  memlock {memlock_plain[memlock]}B",
            json_text="{memlock_json[memlock]}",
            column="memlock",
            cell="memlock_plain[memlock]",
        ),
        Field(
            "map_ids",
            value="list(map_ids)",
            when="map_ids",
            plain="  map_ids {','.join(map(str, map_ids))}",
            json_text="[{','.join(map(str, map_ids))}]",
            column="map_ids",
            cell="','.join(map(str, map_ids))",
        ),
        Field("btf_id", when="btf_id", plain=r"\n\tbtf_id {btf_id}", json_text="{btf_id}"),
        Field(
            "pinned",
            value="list(pins)",
            when="pins is not None",  # bpftool names "pinned" whenever anything is pinned
            plain=r"{''.join(f'\n\tpinned {path}' for path in pins)}",
            plain_after="map_ids",
        ),
        Field(
            "pids",
            value="[{'pid': pid, 'comm': comm} for pid, comm in pids]",
            when="pids",
            plain=r"\n\tpids {" + _PIDS_TEXT + "}",
            column="pids",
            cell=_PIDS_TEXT,
        ),
        Field(
            "metadata",
            value="{key: value for key, value, _ in meta}",
            when="meta",
            plain=r"\n\tmetadata:{''.join(f'\n\t\t{key} = {text}' for key, _, text in meta)}",
        ),
    ),
    info_fields=kinfo.LIST_FIELDS,
    values=VALUES,
    run_values=RUN_VALUES,
    helpers=HELPERS,
    info_order=kinfo.prog_info_offset,
    label="prog",
)
