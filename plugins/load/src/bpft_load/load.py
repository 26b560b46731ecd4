"""``bpft prog load`` and ``bpft prog loadall``: bpftool 7.1's load_with_options()."""

from __future__ import annotations

import os

from bpft.api import Context
from bpft.attach import autoattach
from bpft.errors import BpftError
from bpft.grammar import Args, is_prefix, strtoul


def run_load(ctx: Context, args: Args) -> int:
    return _load_with_options(ctx, args, first_prog_only=True)


def run_loadall(ctx: Context, args: Args) -> int:
    return _load_with_options(ctx, args, first_prog_only=False)


class _Replace:
    __slots__ = ("idx", "name", "fd")

    def __init__(self, idx, name, fd):
        self.idx, self.name, self.fd = idx, name, fd


def _close_all(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _require(args: Args, n: int) -> None:
    """REQ_ARGS inside load_with_options(): bpftool returns -1 there (exit 255)."""
    if len(args) < n:
        prev = args.peek(-1) if args.pos > 0 else args.verb
        raise BpftError(f"'{prev}' needs at least {n} arguments, {len(args)} found")


def _load_with_options(ctx: Context, args: Args, first_prog_only: bool) -> int:
    _require(args, 2)
    file = args.next()
    pinfile = args.next()
    replaces: list[_Replace] = []
    common_type: tuple[int, int] | None = None
    ifindex = 0
    pinmaps = None
    auto_attach = False
    from .log import Log
    from .sections import find_sec_def

    log = Log(ctx.options.debug)
    try:
        while args:
            word = args.current
            if is_prefix(word, "type"):
                args.next()
                if common_type is not None:
                    raise BpftError("program type already specified")
                _require(args, 1)
                name = args.current
                d = find_sec_def(name)
                if d is None:
                    d = find_sec_def(name + "/")
                    if d is None:
                        _type_failure(log, name + "/")
                        raise BpftError("")
                common_type = (d.prog_type, d.attach_type)
                args.next()
            elif is_prefix(word, "map"):
                args.next()
                _require(args, 4)
                if is_prefix(args.current, "idx"):
                    args.next()
                    text = args.current
                    idx, rest = strtoul(text)
                    if rest:
                        raise BpftError(f"can't parse {text} as IDX")
                    idx &= 0xFFFFFFFF
                    if idx >= 1 << 31:
                        idx -= 1 << 32
                    name = None
                elif is_prefix(args.current, "name"):
                    args.next()
                    name = args.current
                    idx = -1
                else:
                    raise BpftError(f"expected 'idx' or 'name', got: '{args.current}'?")
                args.next()
                fd = ctx.map_fd(args)
                replaces.append(_Replace(idx, name, fd))
            elif is_prefix(word, "dev"):
                args.next()
                if ifindex:
                    raise BpftError("offload device already specified")
                _require(args, 1)
                try:
                    ifindex = _if_nametoindex(args.current)
                except OSError as e:
                    raise BpftError(f"unrecognized netdevice '{args.current}': {e.strerror}") from None
                args.next()
            elif is_prefix(word, "pinmaps"):
                args.next()
                _require(args, 1)
                pinmaps = args.next()
            elif is_prefix(word, "autoattach"):
                auto_attach = True
                args.next()
            else:
                raise BpftError(f"expected no more arguments, 'type', 'map' or 'dev', got: '{word}'?")
        return _do_load(ctx, log, file, pinfile, first_prog_only, common_type, replaces, ifindex, pinmaps, auto_attach)
    finally:
        _close_all(r.fd for r in replaces)


def _type_failure(log, name: str) -> None:
    """libbpf_prog_type_by_name() failing with bpftool's all-levels print."""
    import sys

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
            raise OSError(19, os.strerror(19)) from None
        raise


def _do_load(ctx, log, file, pinfile, first_prog_only, common_type, replaces, ifindex, pinmaps, auto_attach) -> int:
    from .elfobj import OpenError, open_object
    from .loader import LoadError, close_object, load_object
    from .sections import find_sec_def

    try:
        obj = open_object(file, log, relaxed_maps=ctx.options.mapcompat)
    except OpenError:
        raise BpftError("failed to open object file") from None
    try:
        for p in obj.main_programs():
            if common_type is None:
                d = find_sec_def(p.sec_name)
                if d is None:
                    _type_failure(log, p.sec_name)
                    raise BpftError("")
                p.prog_type, p.attach_type = d.prog_type, d.attach_type
            else:
                p.prog_type, p.attach_type = common_type
        # map replacement: names first (resolved to indexes), then by index
        for r in replaces:
            if r.name is not None:
                for i, m in enumerate(obj.maps):
                    if m.name == r.name:
                        r.idx = i
                        break
                if r.idx == -1:
                    raise BpftError(f"unable to find map '{r.name}'")
        order = sorted(replaces, key=lambda r: r.idx)
        seen = set()
        for r in order:
            if r.idx in seen:
                raise BpftError(f"replacement for map idx {r.idx} specified more than once")
            seen.add(r.idx)
            if r.idx < 0 or r.idx >= len(obj.maps):
                raise BpftError(f"map idx '{r.idx}' not used")
        for r in order:
            m = obj.maps[r.idx]
            try:
                _reuse_fd(m, r.fd)
            except OSError as e:
                raise BpftError(f"unable to set up map reuse: {-(e.errno or 22)}") from None
        try:
            load_object(obj, log, kernel_log_level=(1 + 2 + 4) if ctx.options.debug else 0, ifindex=ifindex)
        except LoadError:
            raise BpftError("failed to load object file") from None
        from bpft.pinning import mount_bpffs_for_pin

        mount_bpffs_for_pin(pinfile, ctx.options.nomount)
        progs = obj.main_programs()
        pinned: list[str] = []
        if first_prog_only:
            if not progs:
                raise BpftError("object file doesn't contain any bpf program")
            from bpft.kernel import syscall as sc

            try:
                sc.obj_pin(progs[0].fd, pinfile)
            except OSError:
                raise BpftError(f"failed to pin program {progs[0].sec_name}") from None
            pinned.append(pinfile)
        else:
            for p in progs:
                path = f"{pinfile}/{p.name}"
                try:
                    _pin(log, p.fd, path, f"prog '{p.name}'")
                except OSError:
                    for q in reversed(pinned):
                        _unlink(q)
                    raise BpftError("failed to pin all programs") from None
                pinned.append(path)
        if auto_attach:  # links pinned beside the programs; a failure removes them and `pinned`
            named = [(p.name, p.sec_name, p.fd) for p in progs[: len(pinned)]]
            pinned += autoattach(named, pinned, ctx.info, ctx.options.nomount)
        if pinmaps:
            done: list[str] = []
            for m in obj.maps:
                path = f"{pinmaps}/{m.name}".replace(".", "_")
                if m.pin_path and m.pinned:
                    if path != m.pin_path:
                        log.warn(f"map '{m.name}' already has pin path '{m.pin_path}' different from '{path}'")
                        _fail_pinmaps(pinned, done)
                    log.debug(f"map '{m.name}' already pinned at '{m.pin_path}'; not re-pinning")
                    continue
                try:
                    _pin(log, m.fd, path, None)
                except OSError:
                    _fail_pinmaps(pinned, done)
                done.append(path)
        if ctx.json:
            from bpft.output import Record

            ctx.emitter.record(Record(None, ""))
        close_object(obj, unpin_maps=False)
        return 0
    except BaseException:
        close_object(obj)
        raise


def _fail_pinmaps(pinned, done):
    for q in reversed(done):
        _unlink(q)
    for q in reversed(pinned):
        _unlink(q)
    raise BpftError("failed to pin all maps")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _reuse_fd(m, fd: int) -> None:
    """bpf_map__reuse_fd(): take the existing map's definition and a dup of its fd."""
    from bpft.kernel import info as kinfo

    info = kinfo.map_info(fd)
    new = os.dup(fd)
    m.fd = new
    m.reused = True
    m.name = info.name.decode(errors="replace") if isinstance(info.name, bytes) else str(info.name)
    m.type = info.type
    m.key_size = info.key_size
    m.value_size = info.value_size
    m.max_entries = info.max_entries
    m.flags = info.map_flags
    m.key_type_id = getattr(info, "btf_key_type_id", 0)
    m.value_type_id = getattr(info, "btf_value_type_id", 0)
    m.init_slots = []
    m.pin_path = None


def _pin(log, fd: int, path: str, what: str | None) -> None:
    """bpf_program__pin (``what`` = "prog 'NAME'") / bpf_map__pin (``what`` None): make the
    parent dir, check it is bpffs, pin; with libbpf's lines for each."""
    from bpft.kernel import fs
    from bpft.kernel import syscall as sc

    d = fs.c_dirname(path)
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        log.warn(f"failed to mkdir {path}: {e.strerror}")
        raise
    magic = fs.fs_magic(d)
    if magic is None:
        log.warn(f"failed to statfs {d}: {os.strerror(2)}")
        raise OSError(2, "statfs")
    if magic != fs.BPF_FS_MAGIC:
        log.warn(f"specified path {path} is not on BPF FS")
        raise OSError(22, "not bpffs")
    try:
        sc.obj_pin(fd, path)
    except OSError as e:
        log.warn(f"{what}: failed to pin at '{path}': {e.strerror}" if what else f"failed to pin map: {e.strerror}")
        raise
    log.debug(f"{what}: pinned at '{path}'" if what else f"pinned map '{path}'")
