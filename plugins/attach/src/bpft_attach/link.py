"""``bpft link { show | list | pin | detach | help }``: bpftool 7.1's link.c.

Plain and JSON are bpftool 7.1's bytes (its libbpf 1.1 names the link types
up to ``struct_ops``; newer ones print as ``type N``), plus, as in ``prog
show``, the processes that hold each link (``pids``). ``--detail`` adds the
decoded target of every link (``target``), which bpftool 7.1 prints for
none of the newer link types.
"""

from __future__ import annotations

import errno
import os

from bpft.api import Context
from bpft.attachments import CgroupPaths, describe_link
from bpft.errors import BpftError
from bpft.grammar import Args, is_prefix, strtoul
from bpft.handles import open_pinned
from bpft.kernel import info as kinfo
from bpft.kernel import links, uapi
from bpft.kernel import syscall as sc
from bpft.kernel.links import LinkInfo
from bpft.kernel.uapi import LinkType
from bpft.output import Record
from bpft.pinning import pin_fd

from .reply import done


def parse_link_fd(args: Args) -> int:
    """bpftool's link_parse_fd(): ``id ID`` or ``pinned FILE``."""
    word = args.current
    if is_prefix(word, "id"):
        args.next()
        text = args.next()
        value, rest = strtoul(text)
        if rest:
            raise BpftError(f"can't parse {text} as ID")
        link_id = value & 0xFFFFFFFF
        try:
            return sc.link_get_fd_by_id(link_id)
        except sc.BpfError as e:
            signed = link_id - (1 << 32) if link_id >= 1 << 31 else link_id
            # libbpf's -errno comes back as bpftool's exit status
            raise BpftError(f"failed to get link with ID {signed}: {e.strerror}", (-e.errno) & 0xFF) from None
    if is_prefix(word, "pinned"):
        args.next()
        return open_pinned(args.next(), "link")
    raise BpftError(f"expected 'id' or 'pinned', got: '{word}'?")


def _type_name(kind: int) -> str | None:
    names = uapi.LINK_TYPE_NAMES
    return names[kind] if 0 <= kind < len(names) else None


def _attach_type_name(value: int) -> str | None:
    return uapi.attach_type_name(value)


class LinkShower:
    """The per-run tables (pins with -f, holders, cgroup paths) and one link's record."""

    def __init__(self, ctx: Context):
        from bpft.kernel.procfs import obj_refs
        from bpft.progs import pinned_paths

        self.ctx = ctx
        self.pinned = pinned_paths("link") if ctx.options.bpffs else None
        self.refs = obj_refs("link")
        self.detail = bool(getattr(ctx.options, "detail", False))
        self.cgroups = CgroupPaths()

    def record(self, fd: int) -> Record:
        try:
            link = links.link_info(fd)
        except OSError as e:
            raise BpftError(f"can't get link info: {e.strerror}") from None
        prog_type = self._prog_type(link) if link.type == LinkType.TRACING else None
        target = describe_link(link, self.cgroups) if self.detail or self.ctx.options.format == "table" else None
        return Record(
            self._json(link, prog_type, target),
            self._plain(link, prog_type, target),
            self._row(link, target),
        )

    @staticmethod
    def _prog_type(link: LinkInfo) -> int:
        try:
            fd = sc.prog_get_fd_by_id(link.prog_id)
        except OSError as e:
            raise BpftError(f"can't get prog info: {e.strerror}") from None
        try:
            return kinfo.prog_info(fd).type
        except OSError as e:
            raise BpftError(f"can't get prog info: {e.strerror}") from None
        finally:
            os.close(fd)

    def _json(self, link: LinkInfo, prog_type: int | None, target: str | None) -> dict:
        f = link.fields
        name = _type_name(link.type)
        j: dict = {"id": link.id, "type": name if name is not None else link.type, "prog_id": link.prog_id}
        if link.type == LinkType.RAW_TRACEPOINT:
            j["tp_name"] = f["tp_name"]
        elif link.type == LinkType.TRACING and prog_type is not None:  # record() read it for TRACING
            tname = uapi.prog_type_name(prog_type)
            j["prog_type"] = tname if tname is not None else prog_type
            j["attach_type"] = _attach_type_name(f["attach_type"]) or f["attach_type"]
        elif link.type == LinkType.CGROUP:
            j["cgroup_id"] = f["cgroup_id"]
            j["attach_type"] = _attach_type_name(f["attach_type"]) or f["attach_type"]
        elif link.type == LinkType.ITER:
            j["target_name"] = f["target_name"]
            if f["target_name"] in ("bpf_map_elem", "bpf_sk_storage_map"):
                j["map_id"] = f["map_id"]
        elif link.type == LinkType.NETNS:
            j["netns_ino"] = f["netns_ino"]
            j["attach_type"] = _attach_type_name(f["attach_type"]) or f["attach_type"]
        if target is not None and self.detail:
            j["target"] = target
        if self.pinned:
            j["pinned"] = list(self.pinned.get(link.id, ()))
        refs = self.refs.get(link.id)
        if refs:
            j["pids"] = [{"pid": pid, "comm": comm} for pid, comm in refs]
        return j

    def _plain(self, link: LinkInfo, prog_type: int | None, target: str | None) -> str:
        f = link.fields
        name = _type_name(link.type)
        out = [f"{link.id}: {name + '  ' if name is not None else f'type {link.type}  '}prog {link.prog_id}  "]
        if link.type == LinkType.RAW_TRACEPOINT:
            out.append(f"\n\ttp '{f['tp_name']}'  ")
        elif link.type == LinkType.TRACING and prog_type is not None:  # record() read it for TRACING
            tname = uapi.prog_type_name(prog_type)
            out.append(f"\n\tprog_type {tname if tname is not None else prog_type}  ")
            out.append(_attach_plain(f["attach_type"]))
        elif link.type == LinkType.CGROUP:
            out.append(f"\n\tcgroup_id {f['cgroup_id']}  ")
            out.append(_attach_plain(f["attach_type"]))
        elif link.type == LinkType.ITER:
            out.append(f"target_name {f['target_name']}  ")
            if f["target_name"] in ("bpf_map_elem", "bpf_sk_storage_map"):
                out.append(f"map_id {f['map_id']}  ")
        elif link.type == LinkType.NETNS:
            out.append(f"\n\tnetns_ino {f['netns_ino']}  ")
            out.append(_attach_plain(f["attach_type"]))
        if target is not None and self.detail:
            out.append(f"\n\ttarget {target}")
        if self.pinned:
            out.extend(f"\n\tpinned {p}" for p in self.pinned.get(link.id, ()))
        refs = self.refs.get(link.id)
        if refs:
            out.append("\n\tpids " + ", ".join(f"{comm}({pid})" for pid, comm in refs))
        out.append("\n")
        return "".join(out)

    def _row(self, link: LinkInfo, target: str | None) -> dict:
        name = _type_name(link.type)
        return {
            "id": link.id,
            "type": name if name is not None else link.type,
            "prog_id": link.prog_id,
            "target": target or "",
            "pids": ", ".join(f"{comm}({pid})" for pid, comm in self.refs.get(link.id) or ()),
        }


def _attach_plain(value: int) -> str:
    name = _attach_type_name(value)
    return f"attach_type {name if name is not None else value}  "


def run_show(ctx: Context, args: Args) -> int:
    shower = LinkShower(ctx)
    em = ctx.emitter
    if len(args) == 2:
        fd = parse_link_fd(args)
        try:
            em.record(shower.record(fd))
        finally:
            os.close(fd)
        return 0
    if args:
        raise args.bad()
    em.begin_list()
    try:
        for link_id in links.link_ids():
            try:
                fd = sc.link_get_fd_by_id(link_id)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    continue
                raise BpftError(f"can't get link by id ({link_id}): {e.strerror}") from None
            try:
                em.record(shower.record(fd))
            finally:
                os.close(fd)
    finally:
        em.end_list()
    return 0


def run_pin(ctx: Context, args: Args) -> int:
    args.require(3)
    fd = parse_link_fd(args)
    try:
        if args.current is None:
            raise BpftError("'pin' needs a FILE")
        pin_fd(fd, args.current, ctx.options.nomount)
    finally:
        os.close(fd)
    return done(ctx)


def run_detach(ctx: Context, args: Args) -> int:
    if len(args) != 2:
        raise BpftError("link specifier is invalid or missing\n", 1)
    try:
        fd = parse_link_fd(args)
    except BpftError as e:
        raise BpftError(e.message, 1) from None
    try:
        links.link_detach(fd)
    except OSError as e:
        raise BpftError(f"failed link detach: {e.strerror}", 1) from None
    finally:
        os.close(fd)
    return done(ctx)


def run_help(ctx: Context, args: Args) -> int:
    ctx.emitter.help(ctx.extra["help"]())
    return 0
