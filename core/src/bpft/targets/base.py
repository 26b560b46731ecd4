"""The target model: what every kind of attach target knows, and the helpers they share."""

from __future__ import annotations

import errno
import os
from typing import NamedTuple

from ..errors import BpftError
from ..kernel import info as kinfo
from ..kernel import syscall as sc
from ..kernel import uapi
from ..kernel.links import LinkInfo, PerfEventType
from ..kernel.uapi import AttachType, LinkType

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

    def parts(self) -> list[tuple[str | None, Target]]:
        """The places one attach makes a link at, each with the name of its pin in a
        ``link DIR`` (None: a single link, pinned at ``link FILE`` itself)."""
        return [(None, self)]

    def is_part_pin(self, name: str) -> bool:
        """Whether ``name`` is the pin name of one of :meth:`parts` (its directory is ours)."""
        return False

    def check_detach(self) -> None:
        """Refuse words that ``detach`` cannot honour (the kernel does not report them)."""


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


def perf_link(prog_fd: int, event_fd: int, what: str) -> int:
    """A perf-event link (kernel 5.15+); an older kernel's legacy attachment could not be pinned."""
    try:
        return sc.link_create(prog_fd, event_fd, AttachType.PERF_EVENT)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise BpftError(
                f"the kernel refused a perf-event link for {what}: {e.strerror} "
                "(kernels before 5.15 have none; bpft does not fall back to an attachment it cannot pin)"
            ) from None
        raise refused(e, what) from None
    finally:
        os.close(event_fd)


def perf_event_is(link: LinkInfo, event_type: int, **want) -> bool:
    """Whether a perf-event link is on this event. Kernels before 6.6 do not say what a
    perf-event link's event is (its event type reads UNSPEC): then any of the program's
    perf-event links is taken as this one."""
    if link.type != LinkType.PERF_EVENT:
        return False
    got = link.fields.get("event_type")
    if got == PerfEventType.UNSPEC:
        return True
    return got == event_type and all(link.fields.get(key) == value for key, value in want.items())
