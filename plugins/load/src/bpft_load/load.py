"""``bpft prog load`` and ``bpft prog loadall``: bpftool 7.1's load_with_options()."""

from __future__ import annotations

import errno
import os
import sys

from bpft.api import Context
from bpft.errors import EXIT_FAILURE, BpftError
from bpft.grammar import Args, is_prefix, strtoul

from .log import VERIFIER_LOG_EVERYTHING, Log, cli_log


def run_load(ctx: Context, args: Args) -> int:
    if ctx.options.use_loader:  # bpftool -L: through a generated loader program (loadall ignores -L)
        from .useloader import run_with_loader

        return run_with_loader(ctx, args)
    return _load_with_options(ctx, args, first_prog_only=True)


def run_loadall(ctx: Context, args: Args) -> int:
    return _load_with_options(ctx, args, first_prog_only=False)


class _Replace:
    """``map { idx IDX | name NAME } MAP``: which map of the object, and the fd of the map to use."""

    __slots__ = ("idx", "name", "fd")

    def __init__(self, idx: int, name: str | None, fd: int):
        self.idx, self.name, self.fd = idx, name, fd


class _Request:
    """What the command line asks of load / loadall (plain slots, not a dataclass: importing
    dataclasses is a measurable part of a load, docs/design-notes.md)."""

    __slots__ = ("file", "pin_path", "first_prog_only", "common_type", "replaces", "ifindex", "pinmaps", "auto_attach")

    def __init__(
        self,
        file: str,
        pin_path: str,
        first_prog_only: bool,
        common_type: tuple[int, int] | None,  # (program type, expected attach type) from ``type``
        replaces: list[_Replace],
        ifindex: int,
        pinmaps: str | None,
        auto_attach: bool,  # loadall: attach each program by its section, pin the links
    ):
        self.file, self.pin_path, self.first_prog_only = file, pin_path, first_prog_only
        self.common_type, self.replaces, self.ifindex = common_type, replaces, ifindex
        self.pinmaps, self.auto_attach = pinmaps, auto_attach


def _close_all(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _load_with_options(ctx: Context, args: Args, first_prog_only: bool) -> int:
    args.require(2, EXIT_FAILURE)  # load_with_options() returns -1 after REQ_ARGS
    file = args.next()
    pinfile = args.next()
    replaces: list[_Replace] = []
    common_type: tuple[int, int] | None = None
    ifindex = 0
    pinmaps = None
    auto_attach = False
    from .sections import find_sec_def

    log = cli_log(ctx.options.debug)
    try:
        while args:
            word = args.current
            if is_prefix(word, "type"):
                args.next()
                if common_type is not None:
                    raise BpftError("program type already specified")
                args.require(1, EXIT_FAILURE)
                name = args.next()
                d = find_sec_def(name)
                if d is None:
                    d = find_sec_def(name + "/")
                    if d is None:
                        _type_failure(name + "/")
                        raise BpftError("")
                common_type = (d.prog_type, d.attach_type)
            elif is_prefix(word, "map"):
                args.next()
                args.require(4, EXIT_FAILURE)
                if is_prefix(args.current, "idx"):
                    args.next()
                    text = args.next()
                    idx, rest = strtoul(text)
                    if rest:
                        raise BpftError(f"can't parse {text} as IDX")
                    idx &= 0xFFFFFFFF
                    if idx >= 1 << 31:
                        idx -= 1 << 32
                    map_name = None
                elif is_prefix(args.current, "name"):
                    args.next()
                    map_name = args.next()
                    idx = -1
                else:
                    raise BpftError(f"expected 'idx' or 'name', got: '{args.current}'?")
                fd = ctx.map_fd(args)
                replaces.append(_Replace(idx, map_name, fd))
            elif is_prefix(word, "dev"):
                args.next()
                if ifindex:
                    raise BpftError("offload device already specified")
                args.require(1, EXIT_FAILURE)
                dev = args.next()
                try:
                    ifindex = _if_nametoindex(dev)
                except OSError as e:
                    raise BpftError(f"unrecognized netdevice '{dev}': {e.strerror}") from None
            elif is_prefix(word, "pinmaps"):
                args.next()
                args.require(1, EXIT_FAILURE)
                pinmaps = args.next()
            elif is_prefix(word, "autoattach"):
                auto_attach = True
                args.next()
            else:
                raise BpftError(f"expected no more arguments, 'type', 'map' or 'dev', got: '{word}'?")
        request = _Request(file, pinfile, first_prog_only, common_type, replaces, ifindex, pinmaps, auto_attach)
        return _do_load(ctx, log, request)
    finally:
        _close_all(r.fd for r in replaces)


def _type_failure(name: str) -> None:
    """libbpf_prog_type_by_name() failing with bpftool's all-levels print."""
    from .sections import type_names

    sys.stdout.flush()
    sys.stderr.write(f"libbpf: failed to guess program type from ELF section '{name}'\n")
    sys.stderr.write(f"libbpf: supported section(type) names are:{type_names()}\n")


def _if_nametoindex(name: str) -> int:
    import socket

    try:
        return socket.if_nametoindex(name)
    except OSError as e:
        if e.errno is None:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV)) from None
        raise


def _do_load(ctx: Context, log: Log, request: _Request) -> int:
    from bpft.pinning import mount_bpffs_for_pin

    from .elfopen import open_object
    from .errors import LoadError, OpenError
    from .sections import find_sec_def

    try:
        spec = open_object(request.file, log=log, strict_maps=not ctx.options.mapcompat)
    except OpenError:
        raise BpftError("failed to open object file") from None
    for prog in spec.main_programs():
        if request.common_type is not None:
            prog.prog_type, prog.attach_type = request.common_type
            continue
        sec_def = find_sec_def(prog.sec_name)
        if sec_def is None:
            _type_failure(prog.sec_name)
            raise BpftError("")
        prog.prog_type, prog.attach_type = sec_def.prog_type, sec_def.attach_type
    replace_maps = _replacement_maps(spec, request.replaces)
    try:
        obj = spec.load(
            log=log,
            replace_maps=replace_maps,
            kernel_log_level=VERIFIER_LOG_EVERYTHING if ctx.options.debug else 0,
            ifindex=request.ifindex,
        )
    except LoadError as e:
        if e.step == "reuse maps":
            raise BpftError(f"unable to set up map reuse: {-(e.errno or errno.EINVAL)}") from None
        if e.hint:  # bpft's own word on top of libbpf's lines (a kernel too old for the type)
            sys.stdout.flush()
            sys.stderr.write(f"Warning: {e.hint}\n")
        raise BpftError("failed to load object file") from None
    with obj:
        try:
            mount_bpffs_for_pin(request.pin_path, ctx.options.nomount)
            _pin(ctx, obj, request)
        except BaseException:
            obj.unpin()
            raise
    if ctx.json:
        from bpft.output import Record

        ctx.emitter.record(Record(None, ""))
    return 0


def _replacement_maps(spec, replaces: list[_Replace]) -> dict[str, int]:
    """bpftool's map replacement checks: names resolved to indexes first, then each index
    once and in range. Returns {map name: fd}."""
    for r in replaces:
        if r.name is not None:
            r.idx = next((i for i, m in enumerate(spec.map_list) if m.name == r.name), -1)
            if r.idx == -1:
                raise BpftError(f"unable to find map '{r.name}'")
    order = sorted(replaces, key=lambda r: r.idx)
    seen = set()
    for r in order:
        if r.idx in seen:
            raise BpftError(f"replacement for map idx {r.idx} specified more than once")
        seen.add(r.idx)
        if r.idx < 0 or r.idx >= len(spec.map_list):
            raise BpftError(f"map idx '{r.idx}' not used")
    return {spec.map_list[r.idx].name: r.fd for r in order}


def _pin(ctx: Context, obj, request: _Request) -> None:
    """load pins the first program (bpftool calls bpf_obj_pin itself: no libbpf lines),
    loadall every program in a directory (and with autoattach, a link beside each
    program it can attach); pinmaps every map."""
    from bpft.kernel import syscall as sc

    from .errors import LoadError

    if request.first_prog_only:
        if not obj.program_list:
            raise BpftError("object file doesn't contain any bpf program")
        first = obj.program_list[0]
        try:
            sc.obj_pin(first.fd, request.pin_path)
        except OSError:
            raise BpftError(f"failed to pin program {first.spec.sec_name}") from None
        obj.pins.append(request.pin_path)
    else:
        try:
            prog_pins = obj.pin(request.pin_path)
        except LoadError:
            raise BpftError("failed to pin all programs") from None
        if request.auto_attach:  # a failure removes the links it made and the program pins
            from bpft.attach import autoattach  # the attach targets: only for autoattach

            named = [(p.name, p.spec.sec_name, p.fd) for p in obj.program_list]
            obj.pins += autoattach(named, prog_pins, ctx.info, ctx.options.nomount)
    if request.pinmaps:
        try:
            obj.pin_maps(request.pinmaps)
        except LoadError:
            raise BpftError("failed to pin all maps") from None
