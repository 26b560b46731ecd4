"""Finding (and mounting) tracefs as bpftool's tracelog does.

Order: the well-known mount points, checked by file system magic; then the
first ``tracefs`` line of /proc/mounts; then, unless mounting is blocked
(``-n``), a fresh tracefs mount at /sys/kernel/tracing.
"""

from __future__ import annotations

from . import fs

KNOWN_MOUNTS = ("/sys/kernel/debug/tracing", "/sys/kernel/tracing", "/tracing", "/trace")
PIPE_NAME = "trace_pipe"


class TracefsError(OSError):
    """tracefs could not be found or mounted; ``str(e)`` is a message for the user."""


def is_tracefs(path: str) -> bool:
    return fs.fs_magic(path) == fs.TRACEFS_MAGIC


def find_tracefs() -> str | None:
    """The tracefs mount point bpftool would use, or None if there is none."""
    for mnt in KNOWN_MOUNTS:
        if is_tracefs(mnt):
            return mnt
    try:
        with open("/proc/mounts", "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == b"tracefs":
                    mnt = fs._unescape_mount(parts[1].decode(errors="surrogateescape"))
                    return mnt if is_tracefs(mnt) else None
    except OSError:
        pass
    return None


def mount_point(nomount: bool = False, info=None) -> str:
    """The tracefs mount point, mounting tracefs at /sys/kernel/tracing if needed.

    ``info(message)`` receives bpftool's note before mounting. Raises
    TracefsError when tracefs is absent and ``nomount``, or the mount fails.
    """
    mnt = find_tracefs()
    if mnt is None:
        if nomount:
            raise TracefsError("could not find tracefs, not mounting it due to --nomount option")
        if info is not None:
            info("could not find tracefs, attempting to mount it now")
        mnt = KNOWN_MOUNTS[1]
        try:
            fs.mount_fs(mnt, "tracefs")
        except OSError as e:
            raise TracefsError(f"can't mount tracefs: {e.strerror}") from None
    return mnt


def trace_pipe_path(nomount: bool = False, info=None) -> str:
    """The path of trace_pipe (see :func:`mount_point`)."""
    return f"{mount_point(nomount, info)}/{PIPE_NAME}"
