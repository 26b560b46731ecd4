"""``bpft prog tracelog``: stream the kernel's trace pipe (bpf_trace_printk output).

As bpftool: find tracefs (mounting it unless ``-n``), then copy trace_pipe to
stdout line by line (JSON: an array of strings) until Ctrl-C, SIGTERM or
SIGHUP, which end with status 0. Unlike bpftool, every line is flushed as it
comes (so ``bpft prog tracelog | grep ...`` shows lines at once), and a closed
output pipe (``| head -1``) ends the command quietly as soon as it is noticed,
even while the trace pipe is idle.
"""

from __future__ import annotations

import os
import select
import signal

from bpft.api import Context
from bpft.errors import BpftError
from bpft.grammar import Args
from bpft.kernel import tracefs
from bpft.output import json_writer_of


class _Stop(Exception):
    pass


def _stop(signum, frame):
    raise _Stop()


def run(ctx: Context, args: Args) -> int:
    if ctx.json:
        json_writer_of(ctx.emitter).start_array()
    try:
        path = tracefs.trace_pipe_path(ctx.options.nomount, ctx.info)
    except tracefs.TracefsError as e:
        raise BpftError(str(e)) from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise BpftError(f"could not open trace pipe: {e.strerror}") from None

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        _stream(ctx, fd)
    except _Stop:
        pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        os.close(fd)
    return 0


def _stream(ctx: Context, fd: int) -> None:
    out = ctx.emitter.out
    out.flush()
    try:
        out_fd = out.fileno()
    except (OSError, ValueError, AttributeError):
        out_fd = None
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if out_fd is not None:
        poller.register(out_fd, 0)  # only POLLERR/POLLHUP: the reader went away
    pending = b""
    while True:
        for ready_fd, events in poller.poll():
            if ready_fd == out_fd and events & (select.POLLERR | select.POLLHUP):
                raise BrokenPipeError()
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError as e:
            raise BpftError(f"failed to read content from trace pipe: {e.strerror}") from None
        if not chunk:
            raise BpftError("failed to read content from trace pipe: end of file")
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if not lines:
            continue
        if ctx.json:
            w = json_writer_of(ctx.emitter)
            for line in lines:
                w.string(line.decode("utf-8", "replace") + "\n")
            out.write(w.take())
        else:
            out.write(b"\n".join(lines).decode("utf-8", "replace") + "\n")
        out.flush()
