"""Render many objects in forked worker processes, output in order.

Listing thousands of programs costs a few kernel calls and some Python per
program; Python's share dominates, and one interpreter uses one core. For
long listings the work is cut into parts (contiguous slices of the items, or
of the id space), more parts than processes, and :func:`render_partitions`
forks workers that, like the parent, take the next part from a shared queue
as soon as they finish one: a process that runs slower (a forked child pays
copy-on-write faults; a busy machine takes CPU from one process more than
another) simply renders fewer parts. The queue is a pipe holding the parts'
numbers, two bytes each; a read of two bytes from a pipe is atomic, so every
part is taken exactly once. Workers send their texts back over a pipe, and
the caller gets them in part order, so the output is byte-identical to a
sequential run.

Workers inherit everything the parent computed before the fork (pin tables,
pid tables, clocks). They never write to stdout/stderr and leave with
``os._exit`` so no buffer is flushed twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from .errors import BpftError

#: below this many items, forking costs more than it saves
MIN_ITEMS = 300

#: parts per process: enough for the queue to even out unequal speeds
PARTS_PER_WORKER = 16

Rendered = tuple[list[str], "str | None", int]  # texts, error message or None, exit code

#: the queue's part numbers are written before any worker reads: they must fit in a pipe
#: (64 KiB by default, two bytes a part)
_MAX_PARTS = 16384


def forced_workers() -> int | None:
    """The worker count ``BPFT_WORKERS`` asks for, or None when bpft chooses."""
    forced = os.environ.get("BPFT_WORKERS", "")
    return int(forced) if forced.isdigit() and int(forced) > 0 else None


def worker_count(n_items: int, min_items: int = MIN_ITEMS) -> int:
    """How many processes should render ``n_items`` items (1: no fork), when forking pays
    from ``min_items`` items on.

    ``BPFT_WORKERS=N`` in the environment overrides the choice (``1`` never
    forks; tests set it to split even short listings).
    """
    forced = forced_workers()
    if forced:
        return max(1, min(forced, n_items))
    if n_items < min_items:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4, n_items // (min_items // 2)))


def render_partitions(parts: Sequence[Callable[[], Rendered]], workers: int | None = None) -> Iterator[list[str]]:
    """Run the parts' renderers over ``workers`` processes (the parent and forked children, one
    per part by default), each taking the next part from a shared queue; yield texts in part order.

    A renderer returns ``(texts, error message or None, exit code)``; after an
    error the listing stops (the texts of the parts before it, and its own,
    are yielded) and the error is raised here.
    """
    workers = len(parts) if workers is None else max(1, min(workers, len(parts)))
    if workers <= 1:
        for part in parts:
            texts, err, code = part()
            yield texts
            if err is not None:
                raise BpftError(err, code)
        return
    if len(parts) > _MAX_PARTS:
        raise ValueError(f"{len(parts)} parts: the queue holds {_MAX_PARTS}")
    import pickle

    queue_r, queue_w = os.pipe()
    children: list[tuple[int, int]] = []
    try:
        os.write(queue_w, b"".join(i.to_bytes(2, "little") for i in range(len(parts))))
        os.close(queue_w)
        queue_w = -1
        for _ in range(workers - 1):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # worker
                status = 0
                try:
                    os.close(r)
                    data = pickle.dumps(_take_parts(parts, queue_r), protocol=pickle.HIGHEST_PROTOCOL)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(w, view) :]
                except BaseException:
                    status = 1
                finally:
                    os._exit(status)
            os.close(w)
            children.append((pid, r))
        done = _take_parts(parts, queue_r)
        while children:
            pid, r = children.pop(0)
            chunks = []
            with os.fdopen(r, "rb") as f:
                while True:
                    buf = f.read(1 << 20)
                    if not buf:
                        break
                    chunks.append(buf)
            _, status = os.waitpid(pid, 0)
            if status != 0 or not chunks:
                raise BpftError("a worker process failed while rendering")
            done.update(pickle.loads(b"".join(chunks)))
        for i in range(len(parts)):
            texts, err, code = done[i]
            yield texts
            if err is not None:
                raise BpftError(err, code)
    finally:
        for fd in (queue_r, queue_w):
            if fd >= 0:
                os.close(fd)
        for pid, r in children:
            try:
                os.close(r)
            except OSError:
                pass
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass


def _take_parts(parts: Sequence[Callable[[], Rendered]], queue: int) -> dict[int, Rendered]:
    """Render parts taken from the queue until it is empty (or a part fails: the others are
    left to the processes still taking). Returns what was rendered, by part number."""
    done: dict[int, Rendered] = {}
    while True:
        token = os.read(queue, 2)
        if len(token) < 2:
            return done
        i = int.from_bytes(token, "little")
        done[i] = parts[i]()
        if done[i][1] is not None:
            return done
