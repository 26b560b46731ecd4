"""The load step "load programs": BPF_PROG_LOAD of one linked program, as libbpf 1.1's
bpf_object_load_prog does it: the load attributes from the section definition, the
attach target of BTF-attached programs, func_info/line_info with the object's BTF,
and the verifier's log (retried with a log on failure, with a bigger buffer when it
did not fit). A refusal raises :class:`~.errors.LoadError` with the errno and the
verifier's whole log.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from bpft import btf as B
from bpft.kernel import syscall as sc
from bpft.kernel.uapi import AttachType, ProgType

from . import sections
from .errors import LoadError
from .log import Log
from .model import ObjectModel

LOG_BUF_SIZE = (1 << 32) >> 8  # libbpf's BPF_LOG_BUF_SIZE (16 MiB)
BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS = 1 << 4, 1 << 5

# the kernel function behind a BTF-attached program: its name's prefix, by attach type
_ATTACH_TARGET_PREFIX: dict[int, str] = {
    AttachType.TRACE_ITER: "bpf_iter_",
    AttachType.LSM_MAC: "bpf_lsm_",
    AttachType.LSM_CGROUP: "bpf_lsm_",
}


def load_program(obj: ObjectModel, linked, btf_fd: int, log: Log, kernel_log_level: int, ifindex: int) -> int:
    """Load one linked program (a :class:`~.link.Linked`); returns its fd."""
    prog = linked.prog
    if prog.prog_type == ProgType.UNSPEC:
        log.warn(f"prog '{prog.name}': missing BPF prog type, check ELF section name '{prog.sec_name}'")
        raise log.load_error(f"prog '{prog.name}': failed to load: -22", program=prog.name, errno=errno.EINVAL)
    insns = bytes(linked.insns)
    insns_buf = ctypes.create_string_buffer(insns, len(insns))
    license_buf = ctypes.create_string_buffer(obj.license.encode())
    attr = sc.ProgLoadAttr(
        prog_type=prog.prog_type,
        insn_cnt=len(insns) // 8,
        insns=ctypes.addressof(insns_buf),
        license=ctypes.addressof(license_buf),
        kern_version=obj.kern_version,
        prog_name=prog.name.encode()[:15],
        prog_ifindex=ifindex,
        expected_attach_type=prog.attach_type,
    )
    keep_alive = [insns_buf, license_buf]
    if prog.attach_btf_id:  # struct_ops: the kernel struct's id, its member index as attach type
        attr.attach_btf_id = prog.attach_btf_id
    flags, attach_btf = load_flags(prog)
    attr.prog_flags |= flags
    if attach_btf:
        attr.attach_btf_id = _attach_btf_id(prog, log)
    if btf_fd >= 0:
        attr.prog_btf_fd = btf_fd
        for kind, records in (("func_info", linked.func_info), ("line_info", linked.line_info)):
            if records:
                raw = b"".join(records)
                buf = ctypes.create_string_buffer(raw, len(raw))
                keep_alive.append(buf)
                setattr(attr, f"{kind}_rec_size", getattr(obj.btf_ext, kind).rec_size)
                setattr(attr, kind, ctypes.addressof(buf))
                setattr(attr, f"{kind}_cnt", len(records))
    level = kernel_log_level
    log_size = LOG_BUF_SIZE
    while True:
        try:
            fd, verifier_log = _prog_load(attr, level, log_size)
        except sc.BpfError as e:
            if level == 0:
                level = 1  # libbpf: retry with a log, to say why
                continue
            if e.errno == errno.ENOSPC and log_size <= 0xFFFFFFFF // 2:
                log_size *= 2  # libbpf: the log did not fit, retry with a buffer twice as big
                continue
            verifier_log = _fixup_verifier_log(obj, linked, e.log) if e.log else e.log
            failure = f"prog '{prog.name}': BPF program load failed: {e.strerror}"
            log.warn(failure)
            if e.errno == errno.EPERM:
                _perm_msg(log)
            if verifier_log:
                log.warn(f"prog '{prog.name}': -- BEGIN PROG LOAD LOG --\n{verifier_log}-- END PROG LOAD LOG --")
            log.warn(f"prog '{prog.name}': failed to load: {-e.errno}")
            raise LoadError(
                failure,
                program=prog.name,
                errno=e.errno,
                verifier_log=verifier_log or None,
                hint=_missing_prog_type_hint(prog.prog_type, e.errno, verifier_log),
            ) from None
        del keep_alive
        if kernel_log_level:
            # libbpf prints the log of a successful load at debug level
            log.debug(f"prog '{prog.name}': -- BEGIN PROG LOAD LOG --\n{verifier_log}-- END PROG LOAD LOG --")
        return fd


def load_flags(prog) -> tuple[int, bool]:
    """libbpf_prepare_prog_load's part of the load attributes that the section decides:
    the program flags (sleepable, XDP frags), and whether the program attaches to a
    kernel function named by BTF (its target then follows the section's ``/``)."""
    sec_flags = prog.sec_def.flags if prog.sec_def else 0
    flags = 0
    if sec_flags & sections.SLEEPABLE:
        flags |= BPF_F_SLEEPABLE
    if prog.prog_type == ProgType.XDP and sec_flags & sections.XDP_FRAGS:
        flags |= BPF_F_XDP_HAS_FRAGS
    return flags, bool(sec_flags & sections.ATTACH_BTF)


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


def _attach_btf_id(prog, log: Log) -> int:
    """libbpf's libbpf_prepare_prog_load / find_attach_btf_id() in vmlinux: the target after
    the section's ``/``, with its btf_trace_ / bpf_iter_ / bpf_lsm_ prefix."""
    from .vmlinux import find_kernel_type  # only BTF-attached programs read the kernel's BTF

    target = attach_target_name(prog, log)
    type_id = find_kernel_type(*kernel_target(prog.attach_type, target))
    if not type_id:
        log.warn(f"prog '{prog.name}': failed to find kernel BTF type ID of '{target}': -3")
        _prepare_failed(prog, log, errno.ESRCH)
    return type_id


def kernel_target(attach_type: int, target: str) -> tuple[str, int]:
    """libbpf's btf_get_kernel_prefix_kind(): the name and BTF kind under which the
    kernel's BTF holds a BTF-attached program's ``target`` (a raw tracepoint's
    ``btf_trace_`` typedef, an iterator's or LSM hook's prefixed function)."""
    if attach_type == AttachType.TRACE_RAW_TP:
        return "btf_trace_" + target, B.TYPEDEF
    return _ATTACH_TARGET_PREFIX.get(attach_type, "") + target, B.FUNC


def attach_target_name(prog, log: Log) -> str:
    """The kernel function (or tracepoint) a BTF-attached program names after its
    section's ``/``; libbpf's refusals when there is none, or when the program is an
    freplace (whose target program bpftool cannot give). Raises :class:`LoadError`."""
    _, slash, target = prog.sec_name.partition("/")
    if not slash:
        log.warn(f"prog '{prog.name}': no BTF-based attach target is specified, use bpf_program__set_attach_target()")
        _prepare_failed(prog, log, errno.EINVAL)
    if prog.prog_type == ProgType.EXT:
        log.warn(f"prog '{prog.name}': attach program FD is not set")
        _prepare_failed(prog, log, errno.EINVAL)
    return target


def _prepare_failed(prog, log: Log, err: int) -> None:
    log.warn(f"prog '{prog.name}': failed to prepare load attributes: {-err}")
    raise log.load_error(f"prog '{prog.name}': failed to load: {-err}", program=prog.name, errno=err)


CORE_POISON_LINE = "invalid func unknown#195896080\n"
POISONED_CALL_PATTERN = r"\s*([+-]?\d+): \(\s*[+-]?\d+\) call unknown#195896080\s"


def _fixup_verifier_log(obj: ObjectModel, linked, text: str) -> str:
    """libbpf's fixup_verifier_log(): name the CO-RE relocation behind a poisoned call.

    Among the last 10 lines, ``N: (85) call unknown#195896080`` followed by
    ``invalid func unknown#195896080`` becomes ``N: <invalid CO-RE relocation>``
    and ``failed to resolve CO-RE relocation SPEC``.
    """
    lines = text.splitlines(keepends=True)
    for i in range(len(lines) - 1, max(len(lines) - 11, -1), -1):
        if not lines[i].startswith(CORE_POISON_LINE):
            continue
        if i == 0:
            continue
        import re  # (only a refused program's log is read)

        m = re.match(POISONED_CALL_PATTERN, lines[i - 1])
        if not m:
            return text
        insn_idx = int(m.group(1))
        record = next((r for off, r in linked.core if off // 8 == insn_idx), None)
        if record is None or obj.btf is None:
            return text
        from . import corerelo

        try:
            _off, type_id, access_off, kind = struct.unpack_from("<IIII", record)
            relo = corerelo.CoreRelo(insn_idx * 8, type_id, obj.btf.str_at(access_off), kind)
            spec = corerelo.format_spec(corerelo.parse_spec(obj.btf.btf, relo, linked.prog.name))
        except (corerelo.CoreReloError, B.BTFError, struct.error, ValueError, LookupError):
            return text  # libbpf leaves the log as it is when the spec won't parse
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
    limit = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    if limit == resource.RLIM_INFINITY:
        return
    if limit < 1024:
        value = f"{limit} bytes"
    elif limit < 1024 * 1024:
        value = f"{limit / 1024:.1f} KiB"
    else:
        value = f"{limit / (1024 * 1024):.1f} MiB"
    log.warn(f"permission error while running as root; try raising 'ulimit -l'? current value: {value}")


def _missing_prog_type_hint(prog_type: int, err: int, verifier_log: str) -> str | None:
    """bpft's addition to libbpf's lines: an EINVAL with no verifier log, for a program
    type this kernel is older than, names the type and the kernel it needs."""
    if err != errno.EINVAL or verifier_log.strip():
        return None
    from .features import missing_prog_type

    return missing_prog_type(prog_type)
