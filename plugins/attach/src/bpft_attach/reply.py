"""The reply of a verb that prints nothing: bpftool writes ``null`` with -j."""

from __future__ import annotations

from bpft.api import Context
from bpft.output import reply_null


def done(ctx: Context) -> int:
    """Write bpftool's JSON ``null`` if the output is JSON; the exit status 0."""
    reply_null(ctx.emitter)
    return 0
