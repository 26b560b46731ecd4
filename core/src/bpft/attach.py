"""Attaching and detaching programs at :mod:`bpft.targets`, pinning their links, and autoattach.

Every step that can fail runs before the next one changes anything, and what
a failed step made is undone: a bad link path is refused before attaching; a
link that cannot be pinned is closed (which detaches it); a failed autoattach
removes the links and program pins it was given.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

from .errors import BpftError
from .kernel import fs, links
from .kernel import info as kinfo
from .kernel import syscall as sc
from .targets import Attached, BtfTarget, Kprobe, RawTracepoint, Target, Tracepoint, Uprobe


def check_link_path(path: str) -> None:
    """Refuse a ``link FILE`` that is not a free name on bpffs, before anything is attached."""
    directory = fs.c_dirname(path)
    if not fs.is_bpffs(directory):
        raise BpftError(f"can't pin the link at {path}: {directory} is not on a BPF file system")
    if os.path.lexists(path):
        raise BpftError(f"can't pin the link at {path}: the name is taken")


def _prog_info(prog_fd: int) -> kinfo.ProgInfoRec:
    try:
        return kinfo.prog_info(prog_fd)
    except OSError as e:
        raise BpftError(f"can't get prog info: {e.strerror}") from None


def attach_program(prog_fd: int, target: Target) -> Attached:
    """Check the program's type against the target, then attach it."""
    info = _prog_info(prog_fd)
    target.check_program(info)
    return target.attach(prog_fd, info)


class Part(NamedTuple):
    """One attachment of :func:`attach_parts`: its pin name in a ``link DIR`` (None: the
    only one, pinned at ``link FILE``), its place, and what attaching made."""

    name: str | None
    target: Target
    attached: Attached


def attach_parts(prog_fd: int, target: Target) -> list[Part]:
    """Attach at every part of ``target`` (:meth:`Target.parts`: one place for most, one per
    online CPU for a perf event on no CPU), all or nothing: a failure closes the links made."""
    info = _prog_info(prog_fd)
    target.check_program(info)
    made: list[Part] = []
    try:
        for name, part in target.parts():
            made.append(Part(name, part, part.attach(prog_fd, info)))
    except BaseException:
        close_links(made)
        raise
    return made


def close_links(made: Sequence[Part]) -> None:
    """Close the links of :func:`attach_parts` (each goes with its last fd or pin)."""
    for part in made:
        if part.attached.link_fd is not None:
            os.close(part.attached.link_fd)


def pin_link(link_fd: int, path: str) -> None:
    try:
        sc.obj_pin(link_fd, path)
    except OSError as e:
        raise BpftError(f"can't pin the link at {path}: {e.strerror}") from None


def pin_parts(made: Sequence[Part], path: str) -> None:
    """Pin :func:`attach_parts`' links at ``path`` (checked by :func:`check_link_path`), then
    close them: one link at ``path`` itself, several in the new directory ``path`` by their
    part names. A failure removes what was pinned (and the directory): nothing stays."""
    try:
        if len(made) == 1 and made[0].name is None:
            pin_link(made[0].attached.link_fd, path)  # type: ignore[arg-type]
            return
        try:
            os.mkdir(path)
        except OSError as e:
            raise BpftError(f"can't make the link directory {path}: {e.strerror}") from None
        pinned: list[str] = []
        try:
            for part in made:
                pin_link(part.attached.link_fd, f"{path}/{part.name}")  # type: ignore[arg-type]
                pinned.append(f"{path}/{part.name}")
        except BaseException:
            for pin in pinned:
                os.unlink(pin)
            os.rmdir(path)
            raise
    finally:
        close_links(made)


def detach_program(prog_fd: int, target: Target) -> list[str]:
    """Undo every attachment of the program at ``target``: its links (detached, or unpinned
    where the link type cannot be detached) and legacy attachments. Returns notes for the user.
    """
    from .kernel.procfs import obj_refs
    from .progs import pinned_paths

    info = _prog_info(prog_fd)
    target.check_program(info)
    target.check_detach()
    prog_id = info.id
    mine = [link for link in links.all_links() if link.prog_id == prog_id and target.owns(link)]
    notes: list[str] = []
    pins = pinned_paths("link") if mine else {}
    for link in mine:
        detached = _detach_link(link.id)
        for path in pins.get(link.id, ()):
            _unpin(path, target)
        if not detached:
            holders = obj_refs("link").get(link.id)
            if holders:
                who = ", ".join(f"{comm}({pid})" for pid, comm in holders)
                raise BpftError(
                    f"link {link.id} ({target.describe()}) cannot be detached, only closed, and {who} holds it: "
                    "stop that process (Ctrl-C for a `bpft prog attach` in the foreground)"
                )
        notes.append(f"link {link.id} {'detached' if detached else 'closed'}")
    try:
        legacy = target.detach_legacy(prog_fd, prog_id)
    except OSError as e:
        raise BpftError(f"failed to detach from {target.describe()}: {e.strerror}") from None
    if not mine and not legacy:
        raise BpftError(f"program {prog_id} is not attached to {target.describe()}")
    return notes


def _unpin(path: str, target: Target) -> None:
    """Remove a link's pin, and the ``link DIR`` of a target's parts once it is empty."""
    try:
        os.unlink(path)
    except OSError:
        return
    directory, _, name = path.rpartition("/")
    if target.is_part_pin(name):
        try:
            os.rmdir(directory)
        except OSError:
            pass  # other pins still there


def _detach_link(link_id: int) -> bool:
    """LINK_DETACH; False when the link type has none (it goes with its last pin or fd)."""
    try:
        fd = sc.link_get_fd_by_id(link_id)
    except OSError:
        return True  # gone meanwhile
    try:
        links.link_detach(fd)
    except OSError as e:
        if links.cannot_detach(e):
            return False
        raise BpftError(f"failed to detach link {link_id}: {e.strerror}") from None
    finally:
        os.close(fd)
    return True


# --- autoattach ------------------------------------------------------------------------------

_BTF_SECTIONS = {
    "tp_btf": "tracing",
    "fentry": "tracing",
    "fexit": "tracing",
    "fmod_ret": "tracing",
    "fentry.s": "tracing",
    "fexit.s": "tracing",
    "fmod_ret.s": "tracing",
    "lsm": "lsm",
    "lsm.s": "lsm",
    "iter": "iter",
    "iter.s": "iter",
}


def section_target(sec_name: str, nomount: bool = False) -> Target | None:
    """The target libbpf's auto-attach derives from an ELF section name; None if it has none
    (xdp, tc, cgroup programs, and probes whose section names no place)."""
    kind, _, rest = sec_name.partition("/")
    if kind in ("kprobe", "kretprobe") and rest:
        return Kprobe(rest, kind == "kretprobe")
    if kind in ("uprobe", "uretprobe", "uprobe.s", "uretprobe.s") and rest:
        return Uprobe(rest, kind.startswith("uret"))
    if kind in ("tracepoint", "tp") and "/" in rest:
        return Tracepoint(rest, nomount)
    if kind in ("raw_tracepoint", "raw_tp", "raw_tracepoint.w", "raw_tp.w") and rest:
        return RawTracepoint(rest)
    if kind in _BTF_SECTIONS and rest:
        return BtfTarget(_BTF_SECTIONS[kind])
    return None


LINK_PIN_SUFFIX = "_link"


def autoattach(
    programs: Sequence[tuple[str, str, int]],
    prog_pins: Sequence[str],
    info: Callable[[str], None],
    nomount: bool = False,
) -> list[str]:
    """``loadall ... autoattach``: attach each program (name, section, fd) by its section and
    pin its link beside the program's pin (``prog_pins``, same order) with the suffix ``_link``.

    A program whose section names no target stays pinned as a program only (``info`` says
    so, as bpftool does). Any failure removes the links pinned so far and ``prog_pins``, and
    raises BpftError: nothing stays attached or pinned. Returns the link pins.
    """
    made: list[str] = []
    try:
        for (name, sec_name, fd), prog_pin in zip(programs, prog_pins, strict=True):
            target = section_target(sec_name, nomount)
            if target is None:
                info(f"Program {name} does not support autoattach, pinned as a program only")
                continue
            path = prog_pin + LINK_PIN_SUFFIX
            check_link_path(path)
            try:
                attached = attach_program(fd, target)
            except BpftError as e:
                raise BpftError(f"can't autoattach program {name} (section {sec_name}): {e.message}") from None
            if attached.link_fd is None:  # no section names a legacy target; kept for safety
                raise BpftError(f"can't autoattach program {name}: {target.describe()} makes no link to pin")
            try:
                pin_link(attached.link_fd, path)
            finally:
                os.close(attached.link_fd)
            made.append(path)
    except BaseException:
        for path in [*reversed(made), *reversed(prog_pins)]:
            try:
                os.unlink(path)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
        raise
    return made
