"""Pinning objects as bpftool does: bpffs under the pin's directory, mounted if need be."""

from __future__ import annotations

from .errors import BpftError
from .kernel import fs


def mount_bpffs_for_pin(name: str, nomount: bool) -> None:
    """bpftool's mount_bpffs_for_pin(): make sure ``dirname(name)`` is on bpffs.

    Mounts bpffs there (as bpftool does) unless ``nomount`` (``-n``) forbids it.
    """
    directory = fs.c_dirname(name)
    if fs.is_bpffs(directory):
        return
    if nomount:
        raise BpftError("no BPF file system found, not mounting it due to --nomount option")
    try:
        fs.mount_fs(directory, "bpf")
    except OSError as e:
        raise BpftError(f"can't mount BPF file system to pin the object ({name}): {e.strerror}") from None


def pin_fd(fd: int, name: str, nomount: bool) -> None:
    """bpftool's do_pin_fd(): mount bpffs for ``name`` if need be, then BPF_OBJ_PIN.

    The error's exit status is libbpf's -errno, as bpftool's.
    """
    import os

    from .kernel import syscall as sc

    mount_bpffs_for_pin(name, nomount)
    try:
        sc.obj_pin(fd, name)
    except sc.BpfError as e:
        raise BpftError(f"can't pin the object ({name}): {os.strerror(e.errno)}", (-e.errno) & 0xFF) from None
