"""``bpft prog run PROG data_in FILE [data_out FILE [data_size_out L]]
[ctx_in FILE [ctx_out FILE [ctx_size_out M]]] [repeat N]``.

One BPF_PROG_TEST_RUN, printed as bpftool v7.1 prints it: output data and
context written to files, or to stdout (``-``) as a hex-and-ASCII dump (plain)
or arrays of byte values (JSON), then the return value and the duration.

One deliberate difference: bpftool always passes ``repeat`` (1 by default)
and a context output buffer, which the kernel refuses for raw_tracepoint and
syscall programs, so bpftool can never run those. bpft runs them the way the
kernel allows (no repeat, no output buffers; a syscall program's context is
copied back into the input buffer, which bpft prints as ``ctx_out``), and
says plainly what such a program cannot take.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import sys

from bpft.api import Context
from bpft.errors import EXIT_FAILURE, BpftError
from bpft.grammar import Args, is_prefix, parse_uint
from bpft.kernel import syscall as sc
from bpft.output import json_writer_of

DEFAULT_SIZE = 32 * 1024  # bpftool's SZ_32K output buffers

KEYWORDS = ("data_in", "data_out", "data_size_out", "ctx_in", "ctx_out", "ctx_size_out", "repeat")

# Program types whose test run refuses data, ctx_out, repeat and duration.
_ONCE_ONLY_TYPES = {"raw_tracepoint", "raw_tracepoint_writable", "syscall"}


def _errcode(err: int) -> int:
    """bpftool returns -errno from main(): the exit status is its low byte."""
    return (-err) & 0xFF


def hex_dump(data: bytes) -> str:
    """bpftool's hex_print(): offset, 16 bytes in pairs, then an ASCII column."""
    out = []
    size = len(data)
    for i in range(0, size, 16):
        row = data[i : i + 16]
        line = [f"{i:07x}\t"]
        for j, b in enumerate(row):
            line.append(f"{b:02x} " if j % 2 else f"{b:02x}")
        for j in range(len(row), 16):
            line.append("   " if j % 2 else "  ")
        line.append("| ")
        for j, b in enumerate(row):
            line.append(chr(b) if 0x20 <= b <= 0x7E else ".")
            if j == 7:
                line.append(" ")
        line.append("\n")
        out.append("".join(line))
    return "".join(out)


def _common_prefix_error(word: str) -> None:
    """bpftool's detect_common_prefix() over the data_* and ctx_* keyword families."""
    for family in (KEYWORDS[0:3], KEYWORDS[3:6]):
        hits = [k for k in family if is_prefix(word, k)]
        if len(hits) >= 2:
            raise BpftError(f"ambiguous prefix: '{word}' could be '" + "' or '".join(hits) + "'")


def read_input(fname: str | None) -> bytes | None:
    """bpftool's get_run_data(): the whole file (``-``: stdin), or None without a name."""
    if fname is None:
        return None
    try:
        if fname == "-":
            return sys.stdin.buffer.read()
        with open(fname, "rb") as f:
            return f.read()
    except IsADirectoryError as e:
        raise BpftError(f"failed to read data_in/ctx_in from {fname}: {e.strerror}") from None
    except OSError as e:
        if isinstance(e, (FileNotFoundError, PermissionError)) or e.filename is not None:
            raise BpftError(f"failed to open {fname}: {e.strerror}") from None
        raise BpftError(f"failed to read data_in/ctx_in from {fname}: {e.strerror}") from None


class _Opts:
    __slots__ = ("data_in", "data_out", "data_size_out", "ctx_in", "ctx_out", "ctx_size_out", "repeat")

    def __init__(self):
        self.data_in = self.data_out = self.ctx_in = self.ctx_out = None
        self.data_size_out = self.ctx_size_out = 0
        self.repeat = 1


# the keywords in bpftool's order (prefixes match the first), and for numbers the
# name bpftool's messages give them
_KEYWORDS = (
    ("data_in", None),
    ("data_out", None),
    ("data_size_out", "output data size"),
    ("ctx_in", None),
    ("ctx_out", None),
    ("ctx_size_out", "output context size"),
    ("repeat", "repeat number"),
)


def parse_args(args: Args) -> _Opts:
    """The keywords after PROG, with bpftool's messages."""
    o = _Opts()
    while args:
        word = args.next()
        _common_prefix_error(word)
        for keyword, number in _KEYWORDS:
            if is_prefix(word, keyword):
                args.require(1, EXIT_FAILURE)
                value = args.next()
                setattr(o, keyword, parse_uint(value, number) if number else value)
                break
        else:
            raise BpftError(
                "expected no more arguments, 'data_in', 'data_out', 'data_size_out', 'ctx_in', "
                f"'ctx_out', 'ctx_size_out' or 'repeat', got: '{word}'?"
            )
        if o.data_in == "-" and o.ctx_in == "-":
            raise BpftError("cannot use standard input for both data_in and ctx_in")
    return o


def _buffer(data: bytes | None):
    if data is None:
        return None
    return ctypes.create_string_buffer(data, max(len(data), 1))


def _prog_type_name(fd: int) -> str:
    from bpft.kernel import info, uapi

    try:
        t = info.prog_info(fd).type
    except OSError:
        return ""
    names = uapi.PROG_TYPE_NAMES
    return names[t] if 0 <= t < len(names) else ""


def test_run(fd: int, o: _Opts, data_in: bytes | None, ctx_in: bytes | None):
    """Run the program; returns (retval, duration, data_out bytes | None, ctx_out bytes | None)."""
    din, cin = _buffer(data_in), _buffer(ctx_in)
    ptype = _prog_type_name(fd)
    attr = sc.TestRunAttr(prog_fd=fd)
    if ptype in _ONCE_ONLY_TYPES:
        return _run_once_only(attr, ptype, o, din, data_in, cin, ctx_in)

    dout = cout = None
    if data_in is not None:  # then din holds it
        attr.data_size_out = o.data_size_out or DEFAULT_SIZE
        dout = ctypes.create_string_buffer(attr.data_size_out)
        attr.data_in, attr.data_size_in, attr.data_out = sc.addr(din), len(data_in), sc.addr(dout)
    else:
        attr.data_size_out = o.data_size_out
    if ctx_in is not None:  # then cin holds it
        attr.ctx_size_out = o.ctx_size_out or DEFAULT_SIZE
        cout = ctypes.create_string_buffer(attr.ctx_size_out)
        attr.ctx_in, attr.ctx_size_in, attr.ctx_out = sc.addr(cin), len(ctx_in), sc.addr(cout)
    else:
        attr.ctx_size_out = o.ctx_size_out
    attr.repeat = o.repeat
    asked_data, asked_ctx = attr.data_size_out, attr.ctx_size_out
    try:
        sc.prog_test_run(attr)
    except OSError as e:
        err = e.errno or 0  # always set by the syscall layer
        msg = f"failed to run program: {os.strerror(err)}"
        if err == _errno.ENOSPC:
            if dout is not None and attr.data_size_out > asked_data:
                msg += f" (output data is {attr.data_size_out} bytes, data_size_out is {asked_data})"
            elif cout is not None and attr.ctx_size_out > asked_ctx:
                msg += f" (output context is {attr.ctx_size_out} bytes, ctx_size_out is {asked_ctx})"
        elif err == _errno.EINVAL and din is None:
            msg += f" (no data_in: {ptype or 'this'} programs need input data)"
        raise BpftError(msg, _errcode(err)) from None
    data_out = dout.raw[: attr.data_size_out] if dout is not None and attr.data_size_out else None
    ctx_out = cout.raw[: attr.ctx_size_out] if cout is not None and attr.ctx_size_out else None
    return attr.retval, attr.duration, data_out, ctx_out


def _run_once_only(attr, ptype, o, din, data_in, cin, ctx_in):
    """raw_tracepoint / syscall: the kernel takes only ctx_in and runs the program once."""
    if din is not None:
        raise BpftError(
            f"failed to run program: {os.strerror(_errno.EINVAL)} "
            f"({ptype} programs take no data_in; give their arguments with ctx_in)",
            _errcode(_errno.EINVAL),
        )
    if o.repeat > 1:
        raise BpftError(
            f"failed to run program: {os.strerror(_errno.EINVAL)} "
            f"(the kernel runs {ptype} programs once: repeat must be 0 or 1)",
            _errcode(_errno.EINVAL),
        )
    if cin is not None:
        attr.ctx_in, attr.ctx_size_in = sc.addr(cin), len(ctx_in)
    try:
        sc.prog_test_run(attr)
    except OSError as e:
        raise BpftError(f"failed to run program: {os.strerror(e.errno)}", _errcode(e.errno)) from None
    ctx_out = None
    if ptype == "syscall" and cin is not None:
        ctx_out = cin.raw[: len(ctx_in)]  # the kernel copies the context back into ctx_in
    return attr.retval, 0, None, ctx_out


def _write_output(ctx: Context, data: bytes, fname: str | None, key: str) -> int:
    """bpftool's print_run_output(): 0, or -1 after reporting a failure."""
    if fname is None:
        return 0
    if fname == "-":
        if ctx.json:
            w = json_writer_of(ctx.emitter)
            w.name(key)
            w.value(list(data))
        else:
            ctx.emitter.text(hex_dump(data))
        return 0
    try:
        f = open(fname, "wb")
    except OSError as e:
        _report(ctx, f"failed to open {fname}: {e.strerror}")
        return -1
    try:
        with f:
            f.write(data)
    except OSError as e:
        _report(ctx, f"failed to write output data/ctx: {e.strerror}")
        return -1
    return 0


def _report(ctx: Context, message: str) -> None:
    """An error that does not stop the command (the return value is still printed)."""
    if ctx.json:
        # bpftool nests an error object inside the result object, which no JSON
        # parser accepts; we give it as the result's "error" member instead.
        w = json_writer_of(ctx.emitter)
        w.name("error")
        w.string(message)
    else:
        ctx.emitter.error(message)


def run(ctx: Context, args: Args) -> int:
    args.require(4, EXIT_FAILURE)
    fd = ctx.prog_fd(args)
    try:
        o = parse_args(args)
        data_in = read_input(o.data_in)
        ctx_in = read_input(o.ctx_in)
        retval, duration, data_out, ctx_out = test_run(fd, o, data_in, ctx_in)
    finally:
        os.close(fd)

    err = 0
    if ctx.json:
        json_writer_of(ctx.emitter).start_object()
    if data_out is not None:
        err += _write_output(ctx, data_out, o.data_out, "data_out")
    if ctx_out is not None:
        err += _write_output(ctx, ctx_out, o.ctx_out, "ctx_out")
    if ctx.json:
        w = json_writer_of(ctx.emitter)
        w.name("retval")
        w.value(retval)
        w.name("duration")
        w.value(duration)
        w.end_object()
    else:
        avg = " (average)" if o.repeat > 1 else ""
        ctx.emitter.text(f"Return value: {retval}, duration{avg}: {duration}ns\n")
    return err & 0xFF
