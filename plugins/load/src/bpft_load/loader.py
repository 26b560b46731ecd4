"""Putting an opened object into the kernel: libbpf 1.1's bpf_object__load.

Externs are resolved, the BTF is loaded, maps are created, each main program
is linked and loaded (with func_info/line_info and the object's BTF), read-only
data maps are bound to every program, prog arrays get their initial programs.
On any failure everything created so far is closed (and auto-pinned maps unpinned).
"""

from __future__ import annotations

import ctypes
import errno
import os

from bpft.kernel import syscall as sc

from .elfobj import Object, OpenError
from .log import Log

LOG_BUF_SIZE = (1 << 32) >> 8  # libbpf's BPF_LOG_BUF_SIZE (16 MiB)
BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS = 1 << 4, 1 << 5
PROG_BIND_MAP = 35


class LoadError(Exception):
    """bpf_object__load failed (the warning has been printed)."""


class _PrepareError(Exception):
    """libbpf's prog_prepare_load_fn failed with ``err`` (its own warning printed)."""

    def __init__(self, err: int):
        super().__init__(err)
        self.err = err


class _BindAttr(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("map_fd", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


def close_object(obj: Object, unpin_maps: bool = True) -> None:
    for p in obj.programs:
        if p.fd >= 0:
            os.close(p.fd)
            p.fd = -1
    for m in obj.maps:
        if unpin_maps and m.pinned and not m.reused and m.pin_path:
            try:
                os.unlink(m.pin_path)
            except OSError:
                pass
            m.pinned = False
        if m.inner is not None and m.inner.fd >= 0:
            os.close(m.inner.fd)
            m.inner.fd = -1
        if m.fd >= 0:
            os.close(m.fd)
            m.fd = -1
    if obj.btf_fd >= 0:
        os.close(obj.btf_fd)
        obj.btf_fd = -1


def load_object(obj: Object, log: Log, *, kernel_log_level: int = 0, ifindex: int = 0) -> None:
    try:
        _load(obj, log, kernel_log_level, ifindex)
    except (OpenError, LoadError, OSError) as e:
        close_object(obj)
        if isinstance(e, OSError) and not isinstance(e, sc.BpfError):
            log.warn(f"failed to load object '{obj.path}': {e.strerror or e}")
        else:
            log.warn(f"failed to load object '{obj.path}'")
        raise LoadError() from None
    except (
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        AttributeError,
        OverflowError,
        RecursionError,
        ArithmeticError,
        MemoryError,
    ) as e:
        # malformed input that got past open: clean up and fail as libbpf would
        close_object(obj)
        log.warn(f"failed to load object '{obj.path}': malformed object ({e or type(e).__name__})")
        raise LoadError() from None
    except BaseException:
        close_object(obj)
        raise


def _load(obj: Object, log: Log, kernel_log_level: int, ifindex: int) -> None:
    from .externs import resolve_externs
    from .link import link_program, relocate_data
    from .maps import create_maps, init_kern_struct_ops, init_prog_arrays

    from bpft.kernel.memlock import bump_memlock_rlimit  # kernels before 5.11

    bump_memlock_rlimit()
    if log.debug_on and _needs_vmlinux_btf(obj):
        log.debug("loading kernel BTF '/sys/kernel/btf/vmlinux': 0")
    resolve_externs(obj, log)
    _load_btf(obj, log)
    init_kern_struct_ops(obj, log)
    create_maps(obj, log, ifindex)
    linked = [link_program(obj, p, log) for p in obj.main_programs()]
    _apply_core(obj, linked, log)
    rodata = [m for m in obj.maps if m.kind == "rodata"]
    for lk in linked:
        relocate_data(obj, lk, log)
    for lk in linked:
        p = lk.prog
        p.fd = _load_prog(obj, lk, log, kernel_log_level, ifindex)
        for m in rodata:
            try:
                sc.bpf(PROG_BIND_MAP, _BindAttr(prog_fd=p.fd, map_fd=m.fd))
            except sc.BpfError as e:
                log.warn(f"prog '{p.name}': failed to bind map '{m.name}': {e.strerror}")
    init_prog_arrays(obj, log)


def _needs_vmlinux_btf(obj: Object) -> bool:
    """libbpf's obj_needs_vmlinux_btf(): when bpf_object__load reads the kernel's BTF."""
    if obj.btf_ext is not None and obj.btf_ext.core_relo.by_sec:
        return True
    if any(e.kind == "ksym" and e.type_id for e in obj.externs):
        return True
    # struct_ops, lsm, and tracing programs (no freplace target can be given here)
    return any(p.prog_type in (26, 27, 29) for p in obj.main_programs())


def _load_btf(obj: Object, log: Log) -> None:
    if obj.btf is None:
        return
    from .btfsanitize import sanitize  # kinds this kernel lacks, replaced as libbpf does

    raw = sanitize(obj.btf.encode())
    try:
        obj.btf_fd = sc.btf_load(raw, log_size=LOG_BUF_SIZE if log.debug_on else 0)
    except sc.BpfError:
        try:
            sc.btf_load(raw, log_size=1 << 20)
        except sc.BpfError as e2:
            e = e2
        log.warn(f"Error loading .BTF into kernel: {-e.errno}. BTF is optional, ignoring.")
        if e.log:
            log.warn(f"-- BEGIN BTF LOAD LOG ---\n{e.log}\n-- END BTF LOAD LOG --")
        obj.btf_fd = -1


def _apply_core(obj: Object, linked, log: Log) -> None:
    if not any(lk.core for lk in linked):
        return
    try:
        from . import corerelo
    except ImportError:
        log.warn("CO-RE relocations are present but the relocation engine is not installed")
        raise LoadError() from None
    import struct

    btf = obj.btf.btf
    target = corerelo.kernel_target()
    for lk in linked:
        if not lk.core:
            continue
        relos = []
        for off, raw in lk.core:
            _o, type_id, access_off, kind = struct.unpack_from("<IIII", raw)
            relos.append(corerelo.CoreRelo(off, type_id, obj.btf.str_at(access_off), kind))
        dbg = log.debug if log.debug_on else None
        if dbg:
            dbg(f"sec '{lk.prog.sec_name}': found {len(relos)} CO-RE relocations")
        try:
            corerelo.apply_core_relos(lk.insns, relos, btf, target, prog_name=lk.prog.name, log=dbg, warn=log.warn)
        except corerelo.CoreReloError as e:
            log.warn(f"prog '{lk.prog.name}': relo failed: {e}")
            raise LoadError() from None


def _load_prog(obj: Object, lk, log: Log, kernel_log_level: int, ifindex: int) -> int:
    p = lk.prog
    if p.prog_type == 0:
        log.warn(f"prog '{p.name}': missing BPF prog type, check ELF section name '{p.sec_name}'")
        log.warn(f"prog '{p.name}': failed to load: -22")
        raise LoadError()
    insns = bytes(lk.insns)
    ins = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(obj.license.encode())
    attr = sc.ProgLoadAttr(
        prog_type=p.prog_type,
        insn_cnt=len(insns) // 8,
        insns=ctypes.addressof(ins),
        license=ctypes.addressof(lic),
        kern_version=obj.kern_version,
        prog_name=p.name.encode()[:15],
        prog_ifindex=ifindex,
        expected_attach_type=p.attach_type,
    )
    keep = [ins, lic]
    if p.attach_btf_id:  # struct_ops: the kernel struct's id, its member index as attach type
        attr.attach_btf_id = p.attach_btf_id
    flags = p.sec_def.flags if p.sec_def else 0
    from . import sections as S

    if flags & S.SLEEPABLE:
        attr.prog_flags |= BPF_F_SLEEPABLE
    if p.prog_type == 6 and flags & S.XDP_FRAGS:
        attr.prog_flags |= BPF_F_XDP_HAS_FRAGS
    if flags & S.ATTACH_BTF:
        _, sl, target = p.sec_name.partition("/")
        try:
            if not sl:
                log.warn(
                    f"prog '{p.name}': no BTF-based attach target is specified, use bpf_program__set_attach_target()"
                )
                raise _PrepareError(-errno.EINVAL)
            attr.attach_btf_id = _attach_btf_id(p, target, log)
        except _PrepareError as e:
            log.warn(f"prog '{p.name}': failed to prepare load attributes: {e.err}")
            log.warn(f"prog '{p.name}': failed to load: {e.err}")
            raise LoadError() from None
    if obj.btf_fd >= 0:
        attr.prog_btf_fd = obj.btf_fd
        if lk.func_info:
            fi = b"".join(lk.func_info)
            fib = ctypes.create_string_buffer(fi, len(fi))
            keep.append(fib)
            attr.func_info_rec_size = obj.btf_ext.func_info.rec_size
            attr.func_info = ctypes.addressof(fib)
            attr.func_info_cnt = len(lk.func_info)
        if lk.line_info:
            li = b"".join(lk.line_info)
            lib = ctypes.create_string_buffer(li, len(li))
            keep.append(lib)
            attr.line_info_rec_size = obj.btf_ext.line_info.rec_size
            attr.line_info = ctypes.addressof(lib)
            attr.line_info_cnt = len(lk.line_info)
    level = kernel_log_level
    log_size = LOG_BUF_SIZE
    while True:
        try:
            fd, vlog = _prog_load(attr, level, log_size)
        except sc.BpfError as e:
            if level == 0:
                level = 1
                continue
            if e.errno == errno.ENOSPC and log_size <= 0xFFFFFFFF // 2:
                log_size *= 2  # libbpf: the log did not fit, retry with a buffer twice as big
                continue
            vlog = _fixup_verifier_log(obj, lk, e.log) if e.log else e.log
            log.warn(f"prog '{p.name}': BPF program load failed: {e.strerror}")
            if e.errno == errno.EPERM:
                _perm_msg(log)
            if vlog:
                log.warn(f"prog '{p.name}': -- BEGIN PROG LOAD LOG --\n{vlog}-- END PROG LOAD LOG --")
            log.warn(f"prog '{p.name}': failed to load: {-e.errno}")
            _name_missing_prog_type(p.prog_type, e.errno, vlog)
            raise LoadError() from None
        del keep
        if kernel_log_level:
            # libbpf prints the log of a successful load at debug level
            log.debug(f"prog '{p.name}': -- BEGIN PROG LOAD LOG --\n{vlog}-- END PROG LOAD LOG --")
        return fd


def _name_missing_prog_type(prog_type: int, err: int, vlog: str) -> None:
    """bpft's addition to libbpf's lines: the kernel is older than the program's type."""
    from .features import missing_prog_type

    why = missing_prog_type(prog_type) if err == errno.EINVAL and not vlog.strip() else None
    if why:
        import sys

        sys.stderr.write(f"Warning: {why}\n")


def _prog_load(attr, level: int, log_size: int = LOG_BUF_SIZE) -> tuple[int, str]:
    """BPF_PROG_LOAD with a verifier log at ``level`` (none at 0); returns the fd and the
    log, which libbpf prints with -d after a successful load too (on failure it is in
    ``BpfError.log``)."""
    if not level:
        return sc.prog_load(attr), ""
    buf = ctypes.create_string_buffer(log_size)
    attr.log_buf, attr.log_size, attr.log_level = ctypes.addressof(buf), log_size, level
    try:
        fd = sc.bpf(sc.PROG_LOAD, attr)
    except sc.BpfError as e:
        e.log = buf.value.decode("utf-8", "replace")
        raise
    finally:
        attr.log_buf = attr.log_size = attr.log_level = 0
    return fd, buf.value.decode("utf-8", "replace")


def _attach_btf_id(p, target: str, log: Log) -> int:
    """libbpf's find_attach_btf_id() in vmlinux: btf_trace_/bpf_iter_/bpf_lsm_ prefixes."""
    from bpft import btf as B

    from .vmlinux import find_kernel_type

    if p.prog_type == 28:  # freplace needs a target program, which bpftool cannot give
        log.warn(f"prog '{p.name}': attach program FD is not set")
        raise _PrepareError(-errno.EINVAL)
    if p.attach_type == 23:  # trace_raw_tp
        tid = find_kernel_type("btf_trace_" + target, B.TYPEDEF)
    else:
        prefix = {28: "bpf_iter_", 27: "bpf_lsm_", 43: "bpf_lsm_"}.get(p.attach_type, "")
        tid = find_kernel_type(prefix + target, B.FUNC)
    if not tid:
        log.warn(f"prog '{p.name}': failed to find kernel BTF type ID of '{target}': -3")
        raise _PrepareError(-errno.ESRCH)
    return tid


CORE_POISON_LINE = "invalid func unknown#195896080\n"


def _fixup_verifier_log(obj: Object, lk, text: str) -> str:
    """libbpf's fixup_verifier_log(): name the CO-RE relocation behind a poisoned call.

    Among the last 10 lines, ``N: (85) call unknown#195896080`` followed by
    ``invalid func unknown#195896080`` becomes ``N: <invalid CO-RE relocation>``
    and ``failed to resolve CO-RE relocation SPEC``.
    """
    import re
    import struct

    lines = text.splitlines(keepends=True)
    for i in range(len(lines) - 1, max(len(lines) - 11, -1), -1):
        if not lines[i].startswith(CORE_POISON_LINE):
            continue
        if i == 0:
            continue
        m = re.match(r"\s*([+-]?\d+): \(\s*[+-]?\d+\) call unknown#195896080\s", lines[i - 1])
        if not m:
            return text
        insn_idx = int(m.group(1))
        rec = next((r for off, r in lk.core if off // 8 == insn_idx), None)
        if rec is None or obj.btf is None:
            return text
        try:
            from . import corerelo

            _o, type_id, access_off, kind = struct.unpack_from("<IIII", rec)
            relo = corerelo.CoreRelo(insn_idx * 8, type_id, obj.btf.str_at(access_off), kind)
            spec = corerelo.format_spec(corerelo.parse_spec(obj.btf.btf, relo, lk.prog.name))
        except Exception:  # noqa: BLE001 - libbpf leaves the log as it is when the spec won't parse
            return text
        if len(spec) >= 256:
            spec = spec[:255] + "..."
        patch = f"{insn_idx}: <invalid CO-RE relocation>\nfailed to resolve CO-RE relocation {spec}\n"
        return "".join(lines[: i - 1]) + patch + "".join(lines[i + 1 :])
    return text


def _perm_msg(log: Log) -> None:
    """libbpf's pr_perm_msg(): only as root, and only when RLIMIT_MEMLOCK is finite."""
    import resource

    if os.geteuid() != 0:
        return
    cur = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    if cur == resource.RLIM_INFINITY:
        return
    if cur < 1024:
        val = f"{cur} bytes"
    elif cur < 1024 * 1024:
        val = f"{cur / 1024:.1f} KiB"
    else:
        val = f"{cur / (1024 * 1024):.1f} MiB"
    log.warn(f"permission error while running as root; try raising 'ulimit -l'? current value: {val}")
