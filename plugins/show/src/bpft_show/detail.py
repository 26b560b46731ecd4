"""``prog show --detail``: bpftool's fields, then what bpftool leaves out.

After each program's usual text (or JSON object, or table row), the
``bpf_prog_info`` fields bpftool does not print (``verified_insns``, the
attach BTF target by name, the func/line info and subprogram counts) and
every place the program is attached (:func:`bpft.attachments.attachments`:
links with their decoded targets, perf events held by processes, cgroups,
XDP, tc, tcx, sockmaps, struct_ops maps). Without ``--detail`` nothing here runs.
"""

from __future__ import annotations

import json
import os

from bpft.api import Context
from bpft.attachments import Place, attachments
from bpft.errors import BpftError, SilentFailure
from bpft.grammar import Args
from bpft.kernel import info as kinfo
from bpft.output import RawJson, Record
from bpft.progs import iter_prog_ids, open_prog
from bpft.targets import btf_target_name

#: bpf_prog_info fields bpftool does not print, in the kernel's order: (JSON key, plain word, info field)
EXTRA_FIELDS = (
    ("nr_jited_ksyms", "jited_ksyms", "nr_jited_ksyms"),
    ("nr_func_info", "func_info", "nr_func_info"),
    ("nr_line_info", "line_info", "nr_line_info"),
    ("nr_jited_line_info", "jited_line_info", "nr_jited_line_info"),
    ("nr_prog_tags", "prog_tags", "nr_prog_tags"),
    ("verified_insns", "verified_insns", "verified_insns"),
)


class Detail:
    """The extra fields and attachments of one program, in each output form."""

    def __init__(self, info: kinfo.ProgInfoRec, places: list[Place]):
        self.info = info
        self.places = places
        self.btf_name = btf_target_name(info) if info.attach_btf_id else None

    def json_fields(self) -> dict:
        info = self.info
        j: dict = {key: getattr(info, field) for key, _, field in EXTRA_FIELDS}
        if info.attach_btf_id:
            j["attach_btf_obj_id"] = info.attach_btf_obj_id
            j["attach_btf_id"] = info.attach_btf_id
            if self.btf_name:
                j["attach_btf_name"] = self.btf_name
        j["attached"] = [p.as_json() for p in self.places]
        return j

    def plain(self) -> str:
        info = self.info
        lines = ["\t" + "  ".join(f"{word} {getattr(info, field)}" for _, word, field in EXTRA_FIELDS)]
        if info.attach_btf_id:
            name = f"{self.btf_name} " if self.btf_name else ""
            lines.append(f"\tattach_btf {name}(btf_id {info.attach_btf_obj_id} type_id {info.attach_btf_id})")
        if self.places:
            lines.append("\tattached:")
            lines.extend(f"\t\t{p.text()}" for p in self.places)
        else:
            lines.append("\tattached: none")
        return "\n".join(lines) + "\n"

    def row(self) -> dict:
        return {
            "verified": self.info.verified_insns,
            "attach_btf": self.btf_name or "",
            "attached": "; ".join(p.text() for p in self.places),
        }


def with_detail(ctx: Context, rec: Record, detail: Detail) -> Record:
    """``rec`` (the program's usual record) with the detail after its fields."""
    if ctx.json:
        value = rec.json
        if isinstance(value, RawJson):  # the compact listing's text
            value = json.loads(value)
        return Record({**value, **detail.json_fields()})
    if ctx.options.format == "table":
        return Record(None, "", {**(rec.row() or {}), **detail.row()})
    return Record(None, rec.plain() + detail.plain())


def _info(fd: int) -> kinfo.ProgInfoRec:
    try:
        return kinfo.prog_info(fd)
    except OSError as e:
        raise BpftError(f"can't get prog info: {e.strerror}") from None


def _record(ctx: Context, shower, fd: int, places: dict[int, list[Place]]) -> Record:
    info = _info(fd)
    return with_detail(ctx, shower.record(fd), Detail(info, places.get(info.id, [])))


def run(ctx: Context, args: Args, Shower) -> int:
    """``prog show --detail [PROG]``: one program's fd open at a time in a listing.

    ``Shower`` is show's record maker (passed in: show imports this module).
    """
    em = ctx.emitter
    if len(args) == 2:
        fds = ctx.prog_fds(args)
        if not fds:
            raise SilentFailure()
        try:
            places = attachments({_info(fd).id for fd in fds})
            shower = Shower(ctx)
            if len(fds) > 1:
                em.begin_list()
            for fd in fds:
                em.record(_record(ctx, shower, fd, places))
            if len(fds) > 1:
                em.end_list()
        finally:
            for fd in fds:
                os.close(fd)
        return 0
    if args:
        raise args.bad()
    places = attachments()
    shower = Shower(ctx)
    em.begin_list()
    for prog_id in iter_prog_ids():
        prog_fd = open_prog(prog_id)  # None: unloaded since its id was read
        if prog_fd is None:
            continue
        try:
            em.record(_record(ctx, shower, prog_fd, places))
        finally:
            os.close(prog_fd)
    em.end_list()
    return 0
