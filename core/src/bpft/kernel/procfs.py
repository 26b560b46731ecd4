"""Which processes hold fds on BPF objects, from /proc.

Upstream bpftool finds them with a BPF task_file iterator (a skeleton the
Debian build lacks); the kernel exposes the same facts in procfs: the fd's
link target names the object kind (``anon_inode:bpf-prog``) and its fdinfo
carries ``prog_id:`` / ``map_id:`` / ``link_id:``. As upstream, processes are
listed once per object, by tgid, in ascending pid order, with the comm of
the thread-group leader; our own process is left out (bpftool's own fds are
only its iterator's).
"""

from __future__ import annotations

import os

_ID_KEY = {"prog": b"prog_id:", "map": b"map_id:", "link": b"link_id:"}
_MARKER = {"prog": "bpf-prog", "map": "bpf-map", "link": "bpf_link"}  # the anon inodes' names


def _pids() -> list[int]:
    try:
        return sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
    except OSError:
        return []


def obj_refs(kind: str) -> dict[int, list[tuple[int, str]]]:
    """{object id: [(pid, comm), ...]} for objects of ``kind`` ('prog', 'map', 'link')."""
    key = _ID_KEY[kind]
    marker = _MARKER[kind]
    me = os.getpid()
    table: dict[int, list[tuple[int, str]]] = {}
    for pid in _pids():
        if pid == me:
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        comm = None
        for fd in fds:
            try:
                if marker not in os.readlink(f"{fd_dir}/{fd}"):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            pos = data.find(key)
            if pos < 0:
                continue
            end = data.find(b"\n", pos)
            try:
                obj_id = int(data[pos + len(key) : end if end >= 0 else None])
            except ValueError:
                continue
            if comm is None:
                try:
                    with open(f"/proc/{pid}/comm", "rb") as f:
                        comm = f.read().rstrip(b"\n").decode(errors="replace")[:15]
                except OSError:
                    comm = ""
            refs = table.setdefault(obj_id, [])
            if not refs or refs[-1][0] != pid:
                if all(p != pid for p, _ in refs):
                    refs.append((pid, comm))
    return table
