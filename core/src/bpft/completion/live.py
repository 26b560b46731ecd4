"""Live completion values: what the kernel and bpffs hold now.

Each function returns candidates starting with ``prefix`` and never raises: without the
rights to ask (bpf() needs CAP_SYS_ADMIN), there is simply nothing to offer.
"""

from __future__ import annotations

import os

from ..records import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def _program_fields(field: Callable[[int, object], str], prefix: str) -> list[str]:
    from ..errors import BpftError
    from ..progs import render_prog_infos

    out: list[str] = []
    try:
        render_prog_infos(lambda fd, info: out.append(field(fd, info)), [], full=True)
    except (OSError, BpftError):
        pass
    return sorted({v for v in out if v.startswith(prefix)}, key=lambda v: (len(v), v))


def prog_ids(prefix: str) -> list[str]:
    from ..errors import BpftError
    from ..progs import iter_prog_ids

    try:
        return [str(i) for i in iter_prog_ids() if str(i).startswith(prefix)]
    except (OSError, BpftError):
        return []


def prog_names(prefix: str) -> list[str]:
    from ..progs import full_name

    return _program_fields(lambda fd, info: full_name(fd, info), prefix)  # type: ignore[arg-type]


def prog_tags(prefix: str) -> list[str]:
    return _program_fields(lambda fd, info: bytes(info.tag).hex(), prefix)  # type: ignore[attr-defined]


def map_ids(prefix: str) -> list[str]:
    from ..kernel import syscall as sc

    out, map_id = [], 0
    try:
        while (nxt := sc.map_get_next_id(map_id)) is not None:
            map_id = nxt
            if str(map_id).startswith(prefix):
                out.append(str(map_id))
    except OSError:
        pass
    return out


def pinned_paths(prefix: str) -> list[str]:
    """Paths under the bpffs mounts: the mounts themselves while ``prefix`` is above them,
    then the entries of the directory being typed (directories with a trailing ``/``)."""
    from ..kernel import fs

    mounts = [m.rstrip("/") + "/" for m in fs.bpffs_mounts()]
    inside = [m for m in mounts if prefix.startswith(m)]
    if not inside:
        return [m for m in mounts if m.startswith(prefix)]
    directory, _, start = prefix.rpartition("/")
    try:
        entries = sorted(os.scandir(directory + "/"), key=lambda e: e.name)
    except OSError:
        return []
    return [
        f"{directory}/{e.name}/" if e.is_dir(follow_symlinks=False) else f"{directory}/{e.name}"
        for e in entries
        if e.name.startswith(start)
    ]
