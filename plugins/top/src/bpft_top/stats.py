"""Turning the kernel's BPF run-time statistics on for one session, and off again after it.

The kernel counts ``run_cnt``/``run_time_ns`` per program only while statistics
are enabled. Two switches enable them, each a reference on one static key:

* ``BPF_ENABLE_STATS`` returns an fd; statistics stay on while any such fd is
  open. The kernel closes it when the process ends however it ends (exit,
  SIGTERM, SIGKILL, a crash), so nothing needs restoring. This is the way.
* the sysctl ``kernel.bpf_stats_enabled`` (kernels before 5.8, or where the
  command is refused): a global switch that stays as it is left. bpft sets it
  to 1 only if it was 0, and puts it back on exit, including on SIGTERM,
  SIGINT and SIGHUP (``bpft_top.top`` turns them into an orderly exit). A
  forked guardian process covers SIGKILL and crashes: it waits on a pipe from
  bpft and, when the pipe closes without bpft's "restored" byte, writes the
  old value back. Only a SIGKILL of the guardian too (``kill -9`` of the whole
  process group) leaves the sysctl on; then ``sysctl kernel.bpf_stats_enabled=0``
  turns it off. Two sessions that both set the sysctl share it: the first to end
  turns it off for both (the sysctl has no reference count).

The two switches are independent: the sysctl reads 0 while fds hold statistics on.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal

from bpft.errors import BpftError
from bpft.kernel import syscall as sc

SYSCTL_PATH = "/proc/sys/kernel/bpf_stats_enabled"
_RESTORED = b"r"  # what bpft tells its guardian before it exits in order


class StatsSource(enum.Enum):
    """How a session turned statistics on; its value is the name reports use."""

    ENABLE_STATS_FD = "bpf_enable_stats"
    SYSCTL = "sysctl"
    ALREADY_ON = "sysctl_already_on"


def read_sysctl(path: str = SYSCTL_PATH) -> int | None:
    """The sysctl's value, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return int(f.read().strip() or b"0")
    except (OSError, ValueError):
        return None


def write_sysctl(value: int, path: str = SYSCTL_PATH) -> None:
    with open(path, "wb") as f:
        f.write(b"%d\n" % value)


def _guard(read_fd: int, old_value: int, path: str) -> None:
    """The guardian's life (in the forked child): wait for bpft to end, restore unless it did."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)  # Ctrl-C on the terminal is for bpft, which then ends in order
    try:
        os.setsid()  # no controlling terminal: a closing terminal's SIGHUP does not reach it
    except OSError:
        pass
    os.closerange(0, read_fd)
    os.closerange(read_fd + 1, 1 << 16)
    got = b""
    while True:
        try:
            chunk = os.read(read_fd, 1)
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    if _RESTORED not in got and read_sysctl(path) == 1:
        with contextlib.suppress(OSError):
            write_sysctl(old_value, path)


class StatsSession:
    """Statistics on from :meth:`start` until :meth:`close` (or the end of the process).

    ``enable_stats`` and ``sysctl_path`` are the kernel's by default; tests
    replace them to exercise the fallback.
    """

    def __init__(self, sysctl_path: str = SYSCTL_PATH):
        self.sysctl_path = sysctl_path
        self.source: StatsSource | None = None
        self.stats_fd = -1
        self.old_value: int | None = None
        self.guard_pid = 0
        self.guard_pipe = -1
        self.refusal = ""  # why BPF_ENABLE_STATS was refused, when the sysctl stands in

    def start(self) -> StatsSource:
        try:
            self.stats_fd = sc.enable_stats(sc.STATS_RUN_TIME)
        except OSError as e:
            self.refusal = f"BPF_ENABLE_STATS: {e.strerror}"
        else:
            self.source = StatsSource.ENABLE_STATS_FD
            return self.source
        return self._start_sysctl()

    def _start_sysctl(self) -> StatsSource:
        old = read_sysctl(self.sysctl_path)
        if old is None:
            raise BpftError(f"cannot enable BPF statistics: {self.refusal}, and {self.sysctl_path} cannot be read")
        if old:
            self.source = StatsSource.ALREADY_ON
            return self.source
        self.old_value = old
        read_fd, write_fd = os.pipe()  # both close-on-exec
        pid = os.fork()
        if pid == 0:  # the guardian
            try:
                _guard(read_fd, old, self.sysctl_path)
            finally:
                os._exit(0)
        os.close(read_fd)
        self.guard_pid, self.guard_pipe = pid, write_fd
        try:
            write_sysctl(1, self.sysctl_path)
        except OSError as e:
            self._release_guard()
            self.old_value = None
            raise BpftError(
                f"cannot enable BPF statistics: {self.refusal}, and writing {self.sysctl_path}: {e.strerror}"
            ) from None
        self.source = StatsSource.SYSCTL
        return self.source

    def _release_guard(self) -> None:
        """Tell the guardian that all is restored, and reap it."""
        if self.guard_pipe >= 0:
            with contextlib.suppress(OSError):
                os.write(self.guard_pipe, _RESTORED)
            os.close(self.guard_pipe)
            self.guard_pipe = -1
        if self.guard_pid:
            with contextlib.suppress(ChildProcessError, InterruptedError):
                os.waitpid(self.guard_pid, 0)
            self.guard_pid = 0

    def close(self) -> None:
        """Statistics as they were before :meth:`start` (idempotent)."""
        if self.stats_fd >= 0:
            os.close(self.stats_fd)
            self.stats_fd = -1
        if self.old_value is not None:
            try:
                if read_sysctl(self.sysctl_path) == 1:
                    write_sysctl(self.old_value, self.sysctl_path)
            except OSError:
                pass  # the guardian tries again once we are gone
            else:
                self.old_value = None
                self._release_guard()

    def __enter__(self) -> StatsSession:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
