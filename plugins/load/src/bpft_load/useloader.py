"""``bpft -L prog load FILE``: bpftool 7.1's do_loader() and try_loader().

The object is opened as for ``prog load``, emitted as a loader program
(:mod:`.genloader`) and run. Like bpftool, only FILE is read (a PATH after it is
ignored): the loader loads the programs and creates the maps, and pins nothing, so
they are gone when the command exits. With ``-d``: libbpf's lines (the generator's
``gen:`` lines among them), the loader's instructions on stdout, then its run's
result and the kernel's verifier log on stderr.

bpftool's exit statuses are kept: 0 after a failed open (bpftool reports it and
returns 0), the negative errno of a failed generation or run otherwise.
"""

from __future__ import annotations

import errno
import os
import sys

from bpft.api import Context
from bpft.errors import EXIT_FAILURE, BpftError
from bpft.grammar import Args

from .log import VERIFIER_LOG_EVERYTHING, cli_log


def run_with_loader(ctx: Context, args: Args) -> int:
    args.require(1, EXIT_FAILURE)  # do_loader() returns -1 after REQ_ARGS
    path = args.next()
    debug = ctx.options.debug
    log = cli_log(debug)
    from .elfopen import open_object
    from .errors import LoadError, OpenError
    from .genloader import generate_loader, load_and_run

    try:
        spec = open_object(path, log=log, strict_maps=not ctx.options.mapcompat)
    except OpenError:
        raise BpftError("failed to open object file", exit_code=0) from None
    try:
        loader = generate_loader(spec, log)
    except LoadError as e:
        raise BpftError("failed to load object file", exit_code=-(e.errno or errno.EINVAL) & 0xFF) from None
    if debug:
        _print_insns(ctx, loader.insns)
    fds_before = _count_open_fds()
    with load_and_run(loader, log_level=VERIFIER_LOG_EVERYTHING if debug else 0) as run:
        fd_delta = _count_open_fds() - fds_before - len(run.map_fds) - len(run.prog_fds)
        if run.err < 0 or debug:
            sys.stdout.flush()
            errstr = "(null)" if run.errstr is None else run.errstr
            log_text = "(null)" if run.log is None else run.log
            sys.stderr.write(f"err {run.err}\n{errstr}\n{log_text}")
            if fd_delta and run.err < 0:
                sys.stderr.write(f"loader prog leaked {fd_delta} FDs\n")
            sys.stderr.flush()
    return run.err & 0xFF


def _count_open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _print_insns(ctx: Context, insns: bytes) -> None:
    """bpftool's dump_xlated_plain() of the loader's instructions (the disassembler of
    bpft-dump: without it, a warning instead)."""
    try:
        from bpft_dump.disasm import Disasm
        from bpft_dump.dump import xlated_plain
    except ImportError:
        sys.stdout.flush()
        sys.stderr.write("Warning: the loader's instructions are printed by bpft-dump, which is not installed\n")
        return
    from bpft.kernel import kallsyms

    out = ctx.emitter.out
    xlated_plain(out, insns, Disasm((), kallsyms.load), None, None, None, False, False)
    out.flush()
