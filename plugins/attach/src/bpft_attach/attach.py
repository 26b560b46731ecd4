"""``prog attach|detach PROG TARGET [link FILE]``, beside bpftool's ``PROG ATTACH_TYPE [MAP]``.

The words after PROG are read as a TARGET (:func:`bpft.targets.parse_target`)
when they form one; otherwise as bpftool 7.1 reads them (:mod:`.sockmap`), so
bpftool's five attach types keep bpftool's behaviour and errors byte for byte.

With ``link FILE`` the link is pinned and bpft returns. Without it, bpft holds
the link in the foreground until Ctrl-C (or SIGTERM), and says so; tc, which
has no link type, is attached through netlink and stays until ``detach``.
A perf event on no CPU makes one link per online CPU: ``link DIR`` pins them
in the new directory DIR (``cpu0``, ``cpu1``...), and bpft holds them all.
"""

from __future__ import annotations

import os
import signal
import sys

from bpft.api import Context
from bpft.attach import Part, attach_parts, check_link_path, close_links, detach_program, pin_parts
from bpft.errors import BpftError
from bpft.grammar import Args
from bpft.kernel import links
from bpft.output import Record
from bpft.targets import Target, parse_target

from . import sockmap
from .reply import done


def _prog_and_target(ctx: Context, args: Args) -> tuple[int, Target | None]:
    args.require(3)
    prog_fd = ctx.prog_fd(args)
    try:
        return prog_fd, parse_target(args, ctx.options.nomount)
    except BaseException:
        os.close(prog_fd)
        raise


def _link_file(args: Args) -> str | None:
    if not args:
        return None
    if args.current != "link":
        raise args.bad()
    args.next()
    path = args.next()
    if args:
        raise args.bad()
    return path


def run_attach(ctx: Context, args: Args) -> int:
    prog_fd, target = _prog_and_target(ctx, args)
    if target is None:
        return sockmap.attach(ctx, args, prog_fd)
    try:
        path = _link_file(args)
        if path is not None:
            if target.legacy:
                raise BpftError(f"{target.describe()} has no BPF link type: there is no link to pin at {path}")
            check_link_path(path)
        made = attach_parts(prog_fd, target)
    finally:
        os.close(prog_fd)
    if made[0].attached.link_fd is None:  # legacy: one place, no link
        ctx.info(f"attached to {target.describe()}: {made[0].attached.note}")
        return done(ctx)
    if path is not None:
        pin_parts(made, path)
        return done(ctx)
    return _hold(ctx, made, target)


class _Stop(Exception):
    """SIGINT, SIGTERM or SIGHUP while holding a link."""


def _stop(signum, frame):
    raise _Stop()


def _say(message: str) -> None:
    """A note on stderr, with -j too: a user must know that bpft is holding the link."""
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _hold(ctx: Context, made: list[Part], target: Target) -> int:
    """Keep the links open until Ctrl-C: closing a link's last fd detaches it."""
    try:
        held = [links.link_info(part.attached.link_fd) for part in made]  # type: ignore[arg-type]
        prog_id = held[0].prog_id
        ids = ", ".join(str(link.id) for link in held)
        where = target.describe()
        if len(made) > 1:
            where += f" on every online CPU ({', '.join(str(part.name) for part in made)})"
        if len(held) == 1:
            _say(
                f"program {prog_id} attached to {where} as link {ids}; holding it until Ctrl-C (add 'link FILE' to pin it instead)"
            )
        else:
            _say(
                f"program {prog_id} attached to {where} as links {ids}; "
                "holding them until Ctrl-C (add 'link DIR' to pin them in a new directory instead)"
            )
        # SIGINT too: a shell starts a background job with SIGINT ignored
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            while True:
                signal.pause()
        except _Stop:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        close_links(made)
    _say(f"link{'s' if len(held) > 1 else ''} {ids} closed: program {prog_id} detached from {target.describe()}")
    if ctx.json:
        records = [
            Record({"link_id": link.id, "prog_id": link.prog_id, "target": part.target.describe()})
            for link, part in zip(held, made, strict=True)
        ]
        if len(records) == 1:
            ctx.emitter.record(records[0])
        else:
            ctx.emitter.begin_list()
            for record in records:
                ctx.emitter.record(record)
            ctx.emitter.end_list()
    return 0


def run_detach(ctx: Context, args: Args) -> int:
    prog_fd, target = _prog_and_target(ctx, args)
    if target is None:
        return sockmap.detach(ctx, args, prog_fd)
    try:
        if args:
            raise args.bad()
        notes = detach_program(prog_fd, target)
    finally:
        os.close(prog_fd)
    for note in notes:
        ctx.debug(note)
    return done(ctx)
