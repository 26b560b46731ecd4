"""The target model: what every kind of attach target knows, and the helpers they share."""

from __future__ import annotations

import errno
from typing import NamedTuple

from ..errors import BpftError
from ..kernel import info as kinfo
from ..kernel import syscall as sc
from ..kernel import uapi
from ..kernel.links import LinkInfo

PROG_TYPE = uapi.PROG_TYPE  # program type numbers by libbpf name


class Attached(NamedTuple):
    """What an attach made: a link fd (None for a legacy attachment) and a note for the user."""

    link_fd: int | None
    note: str = ""


class Target:
    """A place to attach programs. Subclasses set ``prog_types`` and implement the rest."""

    prog_types: tuple[int, ...] = ()
    legacy = False  # attached without a link: it stays until detached, nothing to pin or hold

    def describe(self) -> str:
        raise NotImplementedError

    def check_program(self, info: kinfo.ProgInfoRec) -> None:
        """Refuse a program of the wrong type before anything is attached."""
        if info.type in self.prog_types:
            return
        have = uapi.prog_type_name(info.type) or f"type {info.type}"
        want = " or ".join(uapi.prog_type_name(t) or str(t) for t in self.prog_types)
        raise BpftError(f"{self.describe()} takes a {want} program; program {info.id} is {have}")

    def attach(self, prog_fd: int, info: kinfo.ProgInfoRec) -> Attached:
        raise NotImplementedError

    def owns(self, link: LinkInfo) -> bool:
        """Whether ``link`` attaches a program here."""
        return False

    def detach_legacy(self, prog_fd: int, prog_id: int) -> bool:
        """Undo legacy attachments of the program here; whether there were any."""
        return False


def create_link(prog_fd: int, target_fd: int, attach_type: int, what: str, flags: int = 0) -> int:
    """BPF_LINK_CREATE; a refusal becomes a BpftError naming ``what`` was being attached."""
    try:
        return sc.link_create(prog_fd, target_fd, attach_type, flags)
    except OSError as e:
        raise refused(e, what) from None


def refused(e: OSError, what: str) -> BpftError:
    """The user's message for the kernel refusing to attach ``what``."""
    if e.errno == errno.EEXIST or e.errno == errno.EBUSY:
        return BpftError(f"{what}: something is attached there already ({e.strerror})")
    if e.errno == errno.EINVAL:
        return BpftError(f"the kernel refused {what}: {e.strerror} (a kernel without this link type says so too)")
    return BpftError(f"the kernel refused {what}: {e.strerror}")
