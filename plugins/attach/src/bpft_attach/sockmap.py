"""``prog attach|detach PROG ATTACH_TYPE [MAP]``: bpftool 7.1's do_attach() / do_detach(), unchanged.

ATTACH_TYPE is matched as bpftool 7.1's parse_attach_type() does: the libbpf
names of the five attach types this verb knows (``sk_msg_verdict``,
``sk_skb_verdict``, ``sk_skb_stream_verdict``, ``sk_skb_stream_parser``,
``flow_dissector``) exactly, and the older names (``msg_verdict``,
``skb_verdict``, ``stream_verdict``, ``stream_parser``) by prefix, in the
order of enum bpf_attach_type. MAP is a sockmap or sockhash; flow_dissector
takes no map and attaches in the caller's network namespace.
"""

from __future__ import annotations

import os

from bpft.api import Context
from bpft.errors import EXIT_EINVAL, BpftError
from bpft.grammar import Args
from bpft.kernel import syscall as sc

from .reply import done

BPF_SK_SKB_STREAM_PARSER = 4
BPF_SK_SKB_STREAM_VERDICT = 5
BPF_SK_MSG_VERDICT = 7
BPF_FLOW_DISSECTOR = 17
BPF_SK_SKB_VERDICT = 38

# (attach type, libbpf name matched exactly, legacy name matched by prefix), enum order
ATTACH_TYPES = (
    (BPF_SK_SKB_STREAM_PARSER, "sk_skb_stream_parser", "stream_parser"),
    (BPF_SK_SKB_STREAM_VERDICT, "sk_skb_stream_verdict", "stream_verdict"),
    (BPF_SK_MSG_VERDICT, "sk_msg_verdict", "msg_verdict"),
    (BPF_FLOW_DISSECTOR, "flow_dissector", None),
    (BPF_SK_SKB_VERDICT, "sk_skb_verdict", "skb_verdict"),
)


def parse_attach_type(word: str | None) -> int | None:
    if word is None:
        return None
    for value, name, legacy in ATTACH_TYPES:
        if word == name or (legacy is not None and legacy.startswith(word)):
            return value
    return None


def parse_rest(ctx: Context, args: Args, prog_fd: int) -> tuple[int, int]:
    """The rest of bpftool's parse_attach_detach_args() after PROG: (attach type, map fd or 0).

    Closes ``prog_fd`` on failure.
    """
    try:
        attach_type = parse_attach_type(args.current)
        if attach_type is None:
            raise BpftError("invalid attach/detach type", EXIT_EINVAL)
        if attach_type == BPF_FLOW_DISSECTOR:
            return attach_type, 0
        args.next()
        args.require(2)
        map_fd = ctx.map_fd(args)
    except BaseException:
        os.close(prog_fd)
        raise
    return attach_type, map_fd


def _close(*fds: int) -> None:
    for fd in fds:
        if fd > 0:
            os.close(fd)


def _run(ctx: Context, args: Args, prog_fd: int, call, verb: str, failure: str) -> int:
    attach_type, map_fd = parse_rest(ctx, args, prog_fd)
    try:
        call(prog_fd, map_fd, attach_type)
    except OSError as e:
        ctx.debug(f"{verb}: {e.strerror}")
        raise BpftError(failure, EXIT_EINVAL) from None
    finally:
        _close(prog_fd, map_fd)
    return done(ctx)


def attach(ctx: Context, args: Args, prog_fd: int) -> int:
    return _run(ctx, args, prog_fd, sc.prog_attach, "attach", "failed prog attach to map")


def detach(ctx: Context, args: Args, prog_fd: int) -> int:
    return _run(ctx, args, prog_fd, sc.prog_detach, "detach", "failed prog detach from map")
