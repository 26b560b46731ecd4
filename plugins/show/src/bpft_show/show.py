"""``bpft prog { show | list } [PROG]``: bpftool's program listing, plain and JSON.

Each program becomes one Record whose JSON value has bpftool's keys in
bpftool's order, and whose plain text is bpftool's layout:

    10: xdp  name some_prog  tag 005a3d2123620c8b  gpl run_time_ns 81632 run_cnt 10
            loaded_at 2017-09-29T20:11:00+0000  uid 0
            xlated 528B  jited 370B  memlock 4096B  map_ids 10
            btf_id 5
            pids systemd(1)
"""

from __future__ import annotations

import os
import re
import time

from bpft.api import Context
from bpft.errors import BpftError, SilentFailure
from bpft.grammar import Args
from bpft.kernel import fs, uapi
from bpft.kernel import info as kinfo
from bpft.output import RawJson, Record, json_quote, render_json
from bpft.parallel import PARTS_PER_WORKER, forced_workers, render_partitions, worker_count
from bpft.progs import full_name, id_ranges, pinned_paths, prog_id_span, render_prog_infos

from .metadata import prog_metadata

# The plain and compact texts read the listing's info tuple by position: a
# namedtuple attribute costs as much as the rest of a field's text.
_LIST_FIELDS = (
    "type id tag jited_prog_len xlated_prog_len load_time created_by_uid nr_map_ids name ifindex "
    "gpl_compatible netns_dev netns_ino btf_id run_time_ns run_cnt recursion_misses"
).split()
if kinfo.LIST_FIELDS != _LIST_FIELDS:
    raise ImportError("bpft.kernel.info.LIST_FIELDS changed: update bpft_show.show")
_NAME_SHOWN = kinfo.BPF_OBJ_NAME_LEN - 1  # a name this long may be cut: full_name() looks further
_TYPE_NAMES = uapi.PROG_TYPE_NAMES
_NR_TYPES = len(_TYPE_NAMES)
_TYPE_JSON = [json_quote(name) for name in _TYPE_NAMES]
_TYPE_PARTS = [f"{name}  " for name in _TYPE_NAMES]
_GPL = ("", "  gpl")  # by gpl_compatible & 1
_JSON_BOOL = ("false", "true")
_NL_TAB = "\n\t"  # f-string expressions cannot hold a backslash before Python 3.12
_REPLACE = "replace"


def _metadata_plain(meta: list) -> str:
    return "\tmetadata:" + "".join(f"\n\t\t{key} = {text}" for key, _, text in meta) + "\n"


class _TextCache(dict):
    """``cache[key]`` is ``make(key)``, made once per key: pieces of text that many programs share."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key):
        text = self[key] = self.make(key)
        return text


class _Clock(_TextCache):
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

    def wallclock(self, nsecs: int) -> int:
        """The wall-clock seconds of boot-relative ``nsecs``."""
        return (self.base_ns + nsecs) // 1_000_000_000


class _Dev:
    """Offload device naming (print_dev_plain / print_dev_json)."""

    @staticmethod
    def name(ifindex: int, ns_dev: int, ns_ino: int) -> str | None:
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


class Shower:
    """Builds records for programs; holds the per-run tables (pins, pids, clock).

    Only the representation the emitter needs is built: JSON values for -j,
    text for plain output, rows for --table. Plain and compact JSON text come
    from the listing's short info tuple (:func:`bpft.kernel.info.prog_list_info`),
    the other forms from the whole record.
    """

    def __init__(self, ctx: Context):
        self.ctx = ctx
        if ctx.emitter.is_json:
            mode = "json" if ctx.options.pretty else "compact"
        else:
            mode = "plain" if ctx.emitter.can_prerender else "table"
        from bpft.kernel.procfs import obj_refs

        self._tables(mode, pinned_paths("prog") if ctx.options.bpffs else None, obj_refs("prog"))
        # the text of one program for pre-rendering emitters, by the shortest path for the mode
        if mode == "plain":
            self.text = self._plain_text
        elif mode == "compact":
            self.text = self._compact_text
        else:
            self.text = lambda fd, info: ctx.emitter.render(self._record(fd, info))
        self.full_info = mode not in ("plain", "compact")

    def _tables(self, mode: str, pinned: dict | None, refs: dict) -> None:
        """What a run looks programs up in: their pins (None without ``-f``), the processes
        that hold them, the clock, and the memlock pieces of text, which many programs share."""
        self.mode, self.pinned, self.refs = mode, pinned, refs
        self.any_pins_or_pids = bool(pinned or refs)  # the texts look programs up only then
        self.clock = _Clock()
        self.base_ns = self.clock.base_ns
        self.memlock = fs.fdinfo_reader("memlock")
        if mode == "compact":
            self.memlock_parts = _TextCache(lambda memlock: f',"bytes_memlock":{_atoll(memlock)}')
        else:
            self.memlock_parts = _TextCache(lambda memlock: f"  memlock {memlock.decode(errors=_REPLACE)}B")

    def record(self, fd: int) -> Record:
        try:
            info = kinfo.prog_info(fd) if self.full_info else kinfo.prog_list_info(fd)
        except OSError as e:
            raise BpftError(f"can't get prog info: {e.strerror}") from None
        return self._record(fd, info)

    def render_range(self, start: int, stop: int | None, render=None) -> tuple[list, str | None, int]:
        """``render(fd, info)`` (default: the emitter's text) of each program with ``start < id
        <= stop``, and the error that ended the walk, if one did: a renderer for
        :func:`bpft.parallel.render_partitions`. Programs unloaded meanwhile are skipped.

        This is the loop of a listing: per program it makes the four kernel calls
        a listing needs and as little Python as the texts allow (no record, one
        call for the text).
        """
        texts: list = []
        try:
            render_prog_infos(render or self.text, texts, start, stop, self.full_info)
        except BpftError as e:
            return texts, e.message, e.exit_code
        return texts, None, 0

    def _values(self, fd: int, info: kinfo.ProgInfoRec) -> tuple:
        """What the JSON object and the table row are made of, for :meth:`_json` and :meth:`_record`."""
        map_ids = kinfo.prog_map_ids(fd, info.nr_map_ids) if info.nr_map_ids else ()
        return (
            info,
            uapi.prog_type_name(info.type),
            full_name(fd, info) if info.name else "",
            info.tag.hex(),
            _Dev.name(info.ifindex, info.netns_dev, info.netns_ino) if info.ifindex else None,
            self.clock.wallclock(info.load_time) if info.load_time else None,
            self.memlock(fd),
            map_ids,
            self.pinned.get(info.id, ()) if self.pinned else None,
            self.refs.get(info.id),
            prog_metadata(fd, map_ids) if map_ids else None,
        )

    def _record(self, fd: int, info: kinfo.ProgInfoRec) -> Record:
        if self.mode == "plain":
            return Record(None, self._plain_text(fd, info))
        if self.mode == "compact":
            return Record(RawJson(self._compact_text(fd, info)))
        values = self._values(fd, info)
        if self.mode == "json":
            return Record(self._json(*values))
        _, tname, name, tag, _, secs, memlock, map_ids, _, refs, _ = values
        return Record(
            None,
            "",
            {
                "id": info.id,
                "type": tname if tname is not None else info.type,
                "name": name,
                "tag": tag,
                "gpl": "yes" if info.gpl_compatible else "no",
                "loaded_at": self.clock[secs] if secs is not None else "",
                "uid": info.created_by_uid,
                "xlated": info.xlated_prog_len,
                "jited": info.jited_prog_len or "-",
                "memlock": memlock.decode(errors="replace") if memlock else "",
                "map_ids": ",".join(map(str, map_ids)),
                "pids": ", ".join(f"{comm}({pid})" for pid, comm in refs or ()),
            },
        )

    def _name(self, fd: int, raw: bytes) -> str:
        """The name to print from the info's NUL-padded bytes (bpftool's get_prog_full_name())."""
        name = raw.rstrip(b"\0")  # the kernel pads names with NULs and allows none inside one
        if len(name) < _NAME_SHOWN:
            return name.decode("ascii", _REPLACE)  # the kernel allows only [A-Za-z0-9_.]
        return full_name(fd, kinfo.prog_info(fd))

    def _plain_text(self, fd: int, info: tuple) -> str:
        """bpftool's plain text of one program (show_prog_plain()), from the listing's info tuple.

        The hot path of a plain listing: the fields are unpacked by position
        (:data:`_LIST_FIELDS`), each optional piece is ``""`` unless the
        program has it, and the text is built by one f-string.
        """
        ptype, pid, tag, jited_len, xlated_len, load_time, uid, nr_map_ids, name, ifindex, gpl, ns_dev, ns_ino, \
            btf_id, run_time_ns, run_cnt, misses = info  # fmt: skip
        dev = ""
        if ifindex:
            devname = _Dev.name(ifindex, ns_dev, ns_ino)
            dev = "  offloaded_to " + (devname or f"ifindex {ifindex} ns_dev {ns_dev} ns_ino {ns_ino}")
        memlock = self.memlock(fd)
        tail = self._plain_tail(fd, pid, nr_map_ids, btf_id) if nr_map_ids or btf_id or self.any_pins_or_pids else "\n"
        return (
            f"{pid}: {_TYPE_PARTS[ptype] if ptype < _NR_TYPES else f'type {ptype}  '}"
            f"{f'name {self._name(fd, name)}  ' if name[0] else ''}tag {tag.hex()}{dev}{_GPL[gpl & 1]}"
            f"{f' run_time_ns {run_time_ns} run_cnt {run_cnt}' if run_time_ns else ''}"
            f"{f' recursion_misses {misses}' if misses else ''}"
            f"{f'{_NL_TAB}loaded_at {self.clock[(self.base_ns + load_time) // 1_000_000_000]}  uid {uid}' if load_time else ''}"
            f"{_NL_TAB}xlated {xlated_len}B{f'  jited {jited_len}B' if jited_len else '  not jited'}"
            f"{self.memlock_parts[memlock] if memlock is not None else ''}{tail}"
        )

    def _plain_tail(self, fd: int, pid: int, nr_map_ids: int, btf_id: int) -> str:
        """The plain text's pieces after memlock, which not every program has."""
        map_ids = kinfo.prog_map_ids(fd, nr_map_ids) if nr_map_ids else None
        pins = self.pinned.get(pid) if self.pinned else None
        refs = self.refs.get(pid)
        meta = prog_metadata(fd, map_ids) if map_ids else None
        return (
            f"{'  map_ids ' + ','.join(map(str, map_ids)) if map_ids else ''}"
            f"{''.join(f'{_NL_TAB}pinned {p}' for p in pins) if pins else ''}"
            f"{f'{_NL_TAB}btf_id {btf_id}' if btf_id else ''}"
            f"{_NL_TAB + 'pids ' + ', '.join(f'{comm}({p})' for p, comm in refs) if refs else ''}"
            "\n"
            f"{_metadata_plain(meta) if meta else ''}"
        )

    def _compact_text(self, fd: int, info: tuple) -> str:
        """bpftool's compact JSON object of one program, as text (the hot path of ``-j``).

        The common fields are written directly, from the listing's info tuple
        (as in :meth:`_plain_text`); a program with any of the rarer ones (run
        stats, offload, pins, pids, metadata) goes through :meth:`_json` and
        the general renderer, which places them.
        """
        ptype, pid, tag, jited_len, xlated_len, load_time, uid, nr_map_ids, name, ifindex, gpl, _, _, btf_id, \
            run_time_ns, _, misses = info  # fmt: skip
        if run_time_ns or misses or ifindex or (self.any_pins_or_pids and self._has_pins_or_pids(pid)):
            return self._general_json(fd)
        map_ids = kinfo.prog_map_ids(fd, nr_map_ids) if nr_map_ids else ()
        if map_ids and prog_metadata(fd, map_ids):
            return self._general_json(fd)
        name_part = ""
        if name[0]:
            text = self._name(fd, name)
            # a name the kernel kept whole has only [A-Za-z0-9_.]: nothing to escape
            name_part = f',"name":"{text}"' if not name[_NAME_SHOWN - 1] else ',"name":' + json_quote(text)
        loaded = f',"loaded_at":{(self.base_ns + load_time) // 1_000_000_000},"uid":{uid}' if load_time else ""
        jited = f'true,"bytes_jited":{jited_len}' if jited_len else "false"
        memlock = self.memlock(fd)
        tail = self.memlock_parts[memlock] if memlock is not None else ""
        if map_ids:
            tail += ',"map_ids":[' + ",".join(map(str, map_ids)) + "]"
        if btf_id:
            tail += f',"btf_id":{btf_id}'
        if self.pinned:  # bpftool names "pinned" only when something is pinned at all
            tail += ',"pinned":[]'
        return (
            f'{{"id":{pid},"type":{_TYPE_JSON[ptype] if ptype < _NR_TYPES else ptype}{name_part},'
            f'"tag":"{tag.hex()}","gpl_compatible":{_JSON_BOOL[gpl & 1]}{loaded},'
            f'"bytes_xlated":{xlated_len},"jited":{jited}{tail}}}'
        )

    def _has_pins_or_pids(self, pid: int) -> bool:
        return bool((self.pinned and pid in self.pinned) or self.refs.get(pid))

    def _general_json(self, fd: int) -> str:
        return render_json(self._json(*self._values(fd, kinfo.prog_info(fd))))

    @staticmethod
    def _json(info, tname, name, tag, devname, secs, memlock, map_ids, pins, refs, meta) -> dict:
        j: dict = {"id": info.id, "type": tname if tname is not None else info.type}
        if name:
            j["name"] = name
        j["tag"] = tag
        j["gpl_compatible"] = bool(info.gpl_compatible)
        if info.run_time_ns:
            j["run_time_ns"] = info.run_time_ns
            j["run_cnt"] = info.run_cnt
        if info.recursion_misses:
            j["recursion_misses"] = info.recursion_misses
        if info.ifindex:
            dev = {"ifindex": info.ifindex, "ns_dev": info.netns_dev, "ns_inode": info.netns_ino}
            if devname:
                dev["ifname"] = devname
            j["dev"] = dev
        if secs is not None:
            j["loaded_at"] = RawJson(str(secs))
            j["uid"] = info.created_by_uid
        j["bytes_xlated"] = info.xlated_prog_len
        if info.jited_prog_len:
            j["jited"] = True
            j["bytes_jited"] = info.jited_prog_len
        else:
            j["jited"] = False
        if memlock is not None:
            j["bytes_memlock"] = _atoll(memlock)
        if map_ids:
            j["map_ids"] = list(map_ids)
        if info.btf_id:
            j["btf_id"] = info.btf_id
        if pins is not None:
            j["pinned"] = list(pins)
        if refs:
            j["pids"] = [{"pid": pid, "comm": comm} for pid, comm in refs]
        if meta:
            j["metadata"] = {k: v for k, v, _ in meta}
        return j


_LEADING_INT = re.compile(rb"\s*([+-]?\d+)")


def _atoll(text: bytes) -> int:
    """C's atoll(): the leading integer of ``text`` (after white space), 0 if none."""
    if text.isdigit():
        return int(text)
    m = _LEADING_INT.match(text)
    return int(m[1]) if m else 0


def run(ctx: Context, args: Args) -> int:
    """The show/list verb."""
    if ctx.options.detail:  # bpft's --detail: the fields bpftool omits, and every attachment
        from .detail import run as run_detail

        return run_detail(ctx, args, Shower)
    if len(args) == 2:
        return _show_subset(ctx, args)
    if args:
        raise args.bad()
    shower = Shower(ctx)
    em = ctx.emitter
    em.begin_list()
    if em.can_prerender:
        ranges, workers = _listing_parts()

        def part(start: int, stop: int):
            return lambda: shower.render_range(start, stop)

        for texts in render_partitions([part(*r) for r in ranges], workers):
            em.emit_rendered(texts)
    else:  # the table collects its rows as they come
        _, err, code = shower.render_range(0, None, lambda fd, info: em.record(shower._record(fd, info)))
        if err is not None:
            raise BpftError(err, code)
    em.end_list()
    return 0


#: From this many program ids on, a listing is spread over forked workers. Forking
#: costs a few ms here (the child's copy-on-write faults on the interpreter's heap),
#: which the workers win back only on long listings: on a 2-vCPU VM, none at 2,000
#: programs, ~15% of the wall time at 10,000 (bench/README.md).
FORK_FROM_IDS = 5000

#: From this many ids on, a listing is cut into parts even on one process: each
#: part's texts are written before the next is rendered, so memory stays small.
STREAM_FROM_IDS = 600


def _listing_parts() -> tuple[list[tuple[int, int]], int]:
    """The id ranges a listing renders in turn (see :func:`bpft.parallel.render_partitions`),
    and how many processes take them. ``BPFT_WORKERS`` forces the workers, and a cut,
    even for a few ids, so tests can exercise them."""
    span = prog_id_span()
    if span is None:
        return [(0, 0)], 1
    first, last = span
    width = last - first + 1
    workers = worker_count(width, FORK_FROM_IDS)
    if workers > 1 or width >= STREAM_FROM_IDS or forced_workers():
        return id_ranges(first, last, workers * PARTS_PER_WORKER), workers
    return [(0, last)], 1


def _show_subset(ctx: Context, args: Args) -> int:
    fds = ctx.prog_fds(args)
    if not fds:
        raise SilentFailure()
    shower = Shower(ctx)
    em = ctx.emitter
    many = len(fds) > 1
    try:
        if many:
            em.begin_list()
        for fd in fds:
            em.record(shower.record(fd))
        if many:
            em.end_list()
    finally:
        for fd in fds:
            os.close(fd)
    return 0
