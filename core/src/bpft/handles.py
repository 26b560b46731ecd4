"""PROG and MAP handles: ``id ID | pinned FILE | tag TAG | name NAME``.

The keywords come from plugins (``bpft_handle_kinds``); the core's own four
resolvers are in this module and registered by ``bpft.builtin``; the dispatch from
a keyword to its resolver is ``bpft.api.Context.handle_fds``. (Core's resolvers use
nothing of the context: their ``ctx`` is typed ``object``, so that this module need
not know ``bpft.api``.) Semantics are
bpftool's: ``tag`` and ``name`` may match several programs, and a verb that
needs one program says ``several programs match this handle``.
"""

from __future__ import annotations

import os
import re

from .errors import BpftError
from .grammar import parse_uint
from .kernel import fs
from .kernel import info as kinfo
from .kernel import syscall as sc
from .progs import MAX_PROG_FULL_NAME, full_name, render_prog_infos

# --- core's handle kinds ---------------------------------------------------------


def _prog_by_id(ctx: object, value: str) -> list[int]:
    prog_id = parse_uint(value, "ID")
    try:
        return [sc.prog_get_fd_by_id(prog_id)]
    except OSError as e:
        raise BpftError(f"get by id ({prog_id}): {e.strerror}") from None


_HEX2 = re.compile(r"\s*([0-9a-fA-F]{1,2})")


def parse_tag(text: str) -> bytes:
    """Eight hex bytes as bpftool's sscanf("%02hhx" x 8) reads them."""
    out, pos = bytearray(), 0
    for _ in range(8):
        m = _HEX2.match(text, pos)
        if not m:
            raise BpftError("can't parse tag")
        out.append(int(m.group(1), 16))
        pos = m.end()
    return bytes(out)


def _progs_matching(match) -> list[int]:
    """fds of every program whose (fd, info) satisfies ``match``, by id; vanished ones skipped."""
    fds: list[int] = []

    def keep(fd: int, info: kinfo.ProgInfoRec) -> None:
        try:
            ok = match(fd, info)
        except OSError:
            ok = False
        if ok:
            fds.append(os.dup(fd))  # the walk closes its own

    try:
        render_prog_infos(keep, [], full=True)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def _prog_by_tag(ctx: object, value: str) -> list[int]:
    tag = parse_tag(value)
    return _progs_matching(lambda fd, info: bytes(info.tag) == tag)


def _prog_by_name(ctx: object, value: str) -> list[int]:
    if len(value.encode()) > MAX_PROG_FULL_NAME - 1:
        raise BpftError("can't parse name")
    return _progs_matching(lambda fd, info: full_name(fd, info) == value)


def open_pinned(path: str, kind: str) -> int:
    """bpftool's open_obj_pinned_any(): an fd on a pinned object of ``kind``."""
    try:
        fd = sc.obj_get(path)
    except OSError as e:
        shown, reason = path, e.strerror
        if e.errno == 13:  # EACCES: bpftool looks at (and, via dirname(), prints) the parent
            shown = fs.c_dirname(path)
            if not fs.is_bpffs(shown):
                reason = "directory not in bpf file system (bpffs)"
        raise BpftError(f"bpf obj get ({shown}): {reason}") from None
    try:
        got = fs.fd_kind(fd)
    except OSError as e:
        os.close(fd)
        raise BpftError(f"can't read link type: {e.strerror}") from None
    if got != kind:
        os.close(fd)
        raise BpftError(f"incorrect object type: {got}")
    return fd


def _prog_pinned(ctx: object, value: str) -> list[int]:
    return [open_pinned(value, "prog")]


def _map_by_id(ctx: object, value: str) -> list[int]:
    map_id = parse_uint(value, "ID")
    try:
        return [sc.map_get_fd_by_id(map_id)]
    except OSError as e:
        raise BpftError(f"get map by id ({map_id}): {e.strerror}") from None


def _map_by_name(ctx: object, value: str) -> list[int]:
    if len(value.encode()) > kinfo.BPF_OBJ_NAME_LEN - 1:
        raise BpftError("can't parse name")
    fds: list[int] = []
    map_id = 0
    while True:
        try:
            nxt = sc.map_get_next_id(map_id)
        except OSError as e:
            raise BpftError(e.strerror or str(e)) from None
        if nxt is None:
            return fds
        map_id = nxt
        try:
            fd = sc.map_get_fd_by_id(map_id)
        except OSError:
            continue
        try:
            ok = kinfo.map_info(fd).name.decode(errors="replace") == value
        except OSError:
            ok = False
        if ok:
            fds.append(fd)
        else:
            os.close(fd)


def _map_pinned(ctx: object, value: str) -> list[int]:
    return [open_pinned(value, "map")]
