"""``prog pin PROG FILE``: bpftool's do_pin_any() / do_pin_fd() / mount_bpffs_for_pin().

The directory of FILE must be on a BPF file system; if it is not, bpffs is
mounted there (``mount --make-private``, a bind mount if needed, then
``mount -t bpf bpf DIR -o mode=0700``), unless ``-n/--nomount`` forbids it.
"""

from __future__ import annotations

import os

from bpft import pinning
from bpft.api import Context
from bpft.errors import EXIT_FAILURE, BpftError
from bpft.grammar import Args
from bpft.output import reply_null


def pin_fd(ctx: Context, fd: int, name: str) -> None:
    """bpftool's do_pin_fd() (shared with ``link pin``: :func:`bpft.pinning.pin_fd`)."""
    pinning.pin_fd(fd, name, ctx.options.nomount)


def run(ctx: Context, args: Args) -> int | None:
    args.require(3)
    fd = ctx.prog_fd(args)
    try:
        name = args.current
        if name is None:  # only a third-party handle kind taking more words gets here
            raise BpftError("'pin' needs a FILE", EXIT_FAILURE)
        pin_fd(ctx, fd, name)
    finally:
        os.close(fd)
    reply_null(ctx.emitter)
    return 0
