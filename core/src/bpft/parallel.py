"""Render many objects in forked worker processes, output in order.

Listing thousands of programs costs a few kernel calls and some Python per
program; Python's share dominates, and one interpreter uses one core. For
long listings, :func:`render_chunks` forks workers that each render a
contiguous slice of the items to text (the parent renders the first slice
itself) and hands the texts back over a pipe; the caller writes them in
order, so the output is byte-identical to a sequential run.

Workers inherit everything the parent computed before the fork (pin tables,
pid tables, clocks). They never write to stdout/stderr and leave with
``os._exit`` so no buffer is flushed twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from .errors import BpftError

T = TypeVar("T")

#: below this many items, forking costs more than it saves
MIN_ITEMS = 300


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


def _split(items: Sequence[T], n: int) -> list[Sequence[T]]:
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def render_items(render: Callable[[T], str | None], items: Iterable[T]) -> tuple[list[str], str | None, int]:
    texts: list[str] = []
    try:
        for item in items:
            text = render(item)
            if text is not None:
                texts.append(text)
    except BpftError as e:
        return texts, e.message, e.exit_code
    return texts, None, 0


def render_chunks(items: Sequence[T], render: Callable[[T], str | None], workers: int) -> Iterator[list[str]]:
    """Yield lists of rendered texts, in item order; ``render`` may return None to skip.

    A BpftError raised by ``render`` ends the listing: the texts rendered
    before it are yielded, then the error is raised in the parent.
    """
    slices = _split(items, max(1, workers))
    yield from render_partitions([lambda part=part: render_items(render, part) for part in slices])


def render_partitions(parts: Sequence[Callable[[], tuple[list[str], str | None, int]]]) -> Iterator[list[str]]:
    """Run each partition's renderer (the first here, the others in forked workers); yield texts in order.

    A renderer returns ``(texts, error message or None, exit code)``; after an
    error the listing stops and the error is raised here.
    """
    children: list[tuple[int, int]] = []
    try:
        if len(parts) > 1:
            import pickle

            for part in parts[1:]:
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:  # worker
                    status = 0
                    try:
                        os.close(r)
                        data = pickle.dumps(part(), protocol=pickle.HIGHEST_PROTOCOL)
                        view = memoryview(data)
                        while view:
                            view = view[os.write(w, view) :]
                    except BaseException:
                        status = 1
                    finally:
                        os._exit(status)
                os.close(w)
                children.append((pid, r))
        texts, err, code = parts[0]()
        yield texts
        if err is not None:
            raise BpftError(err, code)
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
            texts, err, code = pickle.loads(b"".join(chunks))
            yield texts
            if err is not None:
                raise BpftError(err, code)
    finally:
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
