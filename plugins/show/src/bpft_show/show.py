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
import time

from bpft.api import Context
from bpft.errors import BpftError, SilentFailure
from bpft.grammar import Args
from bpft.kernel import fs, uapi
from bpft.kernel import info as kinfo
from bpft.output import RawJson, Record, json_quote, render_json
from bpft.parallel import MIN_ITEMS, render_items, render_partitions, worker_count
from bpft.progs import full_name, id_partitions, iter_prog_fds, pinned_paths

from .metadata import prog_metadata


class _Clock:
    """bpftool's print_boot_time(): boot-relative ns to wall-clock seconds."""

    def __init__(self) -> None:
        real = time.clock_gettime_ns(time.CLOCK_REALTIME)
        boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        self.rs, self.rn = divmod(real, 1_000_000_000)
        self.bs, self.bn = divmod(boot, 1_000_000_000)

    def wallclock(self, nsecs: int) -> int:
        return (self.rs - self.bs) + (self.rn - self.bn + nsecs) // 1_000_000_000

    _texts: dict[int, str] = {}

    @classmethod
    def plain(cls, secs: int) -> str:
        """bpftool's local-time text; programs loaded together share a second, so it is cached."""
        text = cls._texts.get(secs)
        if text is None:
            text = cls._texts[secs] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(secs))
        return text


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
    text for plain output, rows for --table.
    """

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.pinned = pinned_paths("prog") if ctx.options.bpffs else None
        from bpft.kernel.procfs import obj_refs

        self.refs = obj_refs("prog")
        self.clock = _Clock()
        if ctx.emitter.is_json:
            self.mode = "json" if ctx.options.pretty else "compact"
        else:
            self.mode = "plain" if ctx.emitter.can_prerender else "table"

    def record(self, fd: int) -> Record:
        try:
            info = kinfo.prog_info(fd)
        except OSError as e:
            raise BpftError(f"can't get prog info: {e.strerror}") from None
        return self._record(fd, info)

    def render_fd(self, id_fd: tuple[int, int]) -> str | None:
        """The emitter's text for one program, ``(id, fd)``; closes the fd. None if it was unloaded meanwhile."""
        fd = id_fd[1]
        try:
            try:
                info = kinfo.prog_info(fd)
            except OSError as e:
                if e.errno == 2:  # unloaded between GET_FD_BY_ID and GET_INFO
                    return None
                raise BpftError(f"can't get prog info: {e.strerror}") from None
            return self.ctx.emitter.render(self._record(fd, info))
        finally:
            os.close(fd)

    def _record(self, fd: int, info: kinfo.ProgInfoRec) -> Record:
        tname = uapi.prog_type_name(info.type)
        name = full_name(fd, info) if info.name else ""
        tag = info.tag.hex()
        secs = self.clock.wallclock(info.load_time) if info.load_time else None
        memlock = fs.fdinfo_value(fd, "memlock")
        map_ids = kinfo.prog_map_ids(fd, info.nr_map_ids) if info.nr_map_ids else ()
        pins = self.pinned.get(info.id, ()) if self.pinned else None
        refs = self.refs.get(info.id)
        meta = prog_metadata(fd, map_ids) if map_ids else None
        devname = _Dev.name(info.ifindex, info.netns_dev, info.netns_ino) if info.ifindex else None
        if self.mode == "compact":
            return Record(self._json_compact(info, tname, name, tag, devname, secs, memlock, map_ids, pins, refs, meta))
        if self.mode == "json":
            return Record(self._json(info, tname, name, tag, devname, secs, memlock, map_ids, pins, refs, meta))
        if self.mode == "plain":
            return Record(None, self._plain(info, tname, name, tag, devname, secs, memlock, map_ids, pins, refs, meta))
        return Record(
            None,
            "",
            {
                "id": info.id,
                "type": tname if tname is not None else info.type,
                "name": name,
                "tag": tag,
                "gpl": "yes" if info.gpl_compatible else "no",
                "loaded_at": _Clock.plain(secs) if secs is not None else "",
                "uid": info.created_by_uid,
                "xlated": info.xlated_prog_len,
                "jited": info.jited_prog_len or "-",
                "memlock": memlock or "",
                "map_ids": ",".join(map(str, map_ids)),
                "pids": ", ".join(f"{comm}({pid})" for pid, comm in refs or ()),
            },
        )

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

    @classmethod
    def _json_compact(cls, info, tname, name, tag, devname, secs, memlock, map_ids, pins, refs, meta) -> RawJson:
        """The same object as :meth:`_json`, as compact JSON text (the common ``-j`` case, built directly)."""
        out = [f'{{"id":{info.id},"type":', f'"{tname}"' if tname is not None else str(info.type)]
        if name:
            out.append(',"name":' + json_quote(name))
        out.append(f',"tag":"{tag}","gpl_compatible":' + ("true" if info.gpl_compatible else "false"))
        if info.run_time_ns or info.recursion_misses or info.ifindex or pins or refs or meta:
            # the rarer fields: let the general renderer place them
            j = cls._json(info, tname, name, tag, devname, secs, memlock, map_ids, pins, refs, meta)
            return RawJson(render_json(j))
        if secs is not None:
            out.append(f',"loaded_at":{secs},"uid":{info.created_by_uid}')
        out.append(f',"bytes_xlated":{info.xlated_prog_len}')
        if info.jited_prog_len:
            out.append(f',"jited":true,"bytes_jited":{info.jited_prog_len}')
        else:
            out.append(',"jited":false')
        if memlock is not None:
            out.append(f',"bytes_memlock":{_atoll(memlock)}')
        if map_ids:
            out.append(',"map_ids":[' + ",".join(map(str, map_ids)) + "]")
        if info.btf_id:
            out.append(f',"btf_id":{info.btf_id}')
        if pins is not None:
            out.append(',"pinned":[]')
        out.append("}")
        return RawJson("".join(out))

    @staticmethod
    def _plain(info, tname, name, tag, devname, secs, memlock, map_ids, pins, refs, meta) -> str:
        out = [f"{info.id}: ", f"{tname}  " if tname is not None else f"type {info.type}  "]
        if name:
            out.append(f"name {name}  ")
        out.append(f"tag {tag}")
        if info.ifindex:
            out.append(
                "  offloaded_to "
                + (devname or f"ifindex {info.ifindex} ns_dev {info.netns_dev} ns_ino {info.netns_ino}")
            )
        if info.gpl_compatible:
            out.append("  gpl")
        if info.run_time_ns:
            out.append(f" run_time_ns {info.run_time_ns} run_cnt {info.run_cnt}")
        if info.recursion_misses:
            out.append(f" recursion_misses {info.recursion_misses}")
        out.append("\n")
        if secs is not None:
            out.append(f"\tloaded_at {_Clock.plain(secs)}  uid {info.created_by_uid}\n")
        out.append(f"\txlated {info.xlated_prog_len}B")
        out.append(f"  jited {info.jited_prog_len}B" if info.jited_prog_len else "  not jited")
        if memlock is not None:
            out.append(f"  memlock {memlock}B")
        if map_ids:
            out.append("  map_ids " + ",".join(map(str, map_ids)))
        for p in pins or ():
            out.append(f"\n\tpinned {p}")
        if info.btf_id:
            out.append(f"\n\tbtf_id {info.btf_id}")
        if refs:
            out.append("\n\tpids " + ", ".join(f"{comm}({pid})" for pid, comm in refs))
        out.append("\n")
        if meta:
            out.append("\tmetadata:")
            for key, _, text in meta:
                out.append(f"\n\t\t{key} = {text}")
            out.append("\n")
        return "".join(out)


def _atoll(text: str) -> int:
    """C's atoll(): the leading integer of ``text``, 0 if none."""
    if text.isdigit():
        return int(text)
    digits = ""
    for ch in text.strip():
        if ch.isdigit() or (not digits and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def run(ctx: Context, args: Args) -> int:
    """The show/list verb."""
    if len(args) == 2:
        return _show_subset(ctx, args)
    if args:
        raise args.bad()
    shower = Shower(ctx)
    em = ctx.emitter
    em.begin_list()
    if em.can_prerender:
        # Long listings: the id space is split into ranges of equal width; the
        # parent renders the first, forked workers the others (bpft.parallel).
        ranges = id_partitions(worker_count(2 * MIN_ITEMS), 2 * MIN_ITEMS)

        def part(start: int, stop: int):
            return lambda: render_items(shower.render_fd, iter_prog_fds(start, stop))

        for texts in render_partitions([part(*r) for r in ranges]):
            em.emit_rendered(texts)
    else:
        for _prog_id, fd in iter_prog_fds():
            try:
                try:
                    info = kinfo.prog_info(fd)
                except OSError as e:
                    if e.errno == 2:
                        continue
                    raise BpftError(f"can't get prog info: {e.strerror}") from None
                em.record(shower._record(fd, info))
            finally:
                os.close(fd)
    em.end_list()
    return 0


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
