"""``bpft prog { show | list } [PROG]``: bpftool's program listing, plain, JSON and table.

What is shown of a program is described once, in the field table
:data:`bpft_show.progfields.PROG_FIELDS`; a :class:`Shower` renders programs
through it in the form the emitter asks for.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from bpft.api import Context
from bpft.errors import BpftError, SilentFailure
from bpft.grammar import Args
from bpft.kernel import info as kinfo
from bpft.output import RawJson, Record
from bpft.parallel import PARTS_PER_WORKER, forced_workers, render_partitions, worker_count
from bpft.progs import id_ranges, prog_id_span, render_prog_infos

from .fieldtable import FieldTable
from .progfields import PROG_FIELDS


def fields_for(ctx: Context) -> FieldTable:
    """The field table ``ctx``'s listing shows: :data:`~bpft_show.progfields.PROG_FIELDS`, or
    an extension of it that an option asks for (see :mod:`bpft_show.fieldtable`)."""
    return PROG_FIELDS


def info_reader(table: FieldTable) -> Callable[[int], tuple]:
    """``read(fd)``: the info tuple ``table``'s expressions read. For the base table's fields
    that is the listing's own reader, :func:`bpft.kernel.info.prog_list_info` (looked up
    here, when a listing starts, so tests can wrap it)."""
    if list(table.info_fields) == kinfo.LIST_FIELDS:
        return kinfo.prog_list_info
    return kinfo.prog_fields_reader(list(table.info_fields))


class Shower:
    """Renders programs through a field table, in the form the emitter needs: plain or
    compact JSON text by the table's compiled renderers, pretty JSON values and table
    rows field by field. Holds the listing's run values (pins, pids, clock...).
    """

    def __init__(self, ctx: Context, table: FieldTable | None = None):
        self.ctx = ctx
        self.table = table or fields_for(ctx)
        if ctx.emitter.is_json:
            mode = "json" if ctx.options.pretty else "compact"
        else:
            mode = "plain" if ctx.emitter.can_prerender else "table"
        self.start(mode, self.table.run_env(ctx.options))

    def start(self, mode: str, env: dict) -> None:
        """Render in ``mode`` ("plain", "compact", "json" or "table") with the run values ``env``."""
        self.mode, self.env = mode, env
        self.read = info_reader(self.table)
        # the text of one program for pre-rendering emitters, by the shortest path for the mode
        if mode == "plain":
            self.text = self.table.plain_renderer(env)
        elif mode == "compact":
            self.text = self.table.compact_renderer(env)
        else:
            self.text = lambda fd, info: self.ctx.emitter.render(self.record_of(fd, info))

    def record(self, fd: int) -> Record:
        """The record of the program ``fd`` (one shown by handle)."""
        try:
            info = self.read(fd)
        except OSError as e:
            raise BpftError(f"can't get prog info: {e.strerror}") from None
        return self.record_of(fd, info)

    def record_of(self, fd: int, info: tuple) -> Record:
        """The record of the program ``fd`` whose info tuple is ``info``."""
        if self.mode == "plain":
            return Record(None, self.text(fd, info))
        if self.mode == "compact":
            return Record(RawJson(self.text(fd, info)))
        if self.mode == "json":
            return Record(self.table.json_value(self.env, fd, info))
        return Record(None, "", self.table.row(self.env, fd, info))

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
            render_prog_infos(render or self.text, texts, start, stop, read=self.read)
        except BpftError as e:
            return texts, e.message, e.exit_code
        return texts, None, 0


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
        _, err, code = shower.render_range(0, None, lambda fd, info: em.record(shower.record_of(fd, info)))
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
