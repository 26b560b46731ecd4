"""The program walk of a listing, against the kernel's own answers."""

from __future__ import annotations

import errno
import os

import pytest
from hypothesis import example, given
from hypothesis import strategies as st


def _load_filters(count: int, prefix: str) -> list[int]:
    """``count`` socket filters (r0 = 0; exit), as open fds: they live while the fds do."""
    from bpft.kernel import syscall as sc

    code = bytes.fromhex("b7000000000000009500000000000000")
    return [sc.prog_load_simple(1, code, name=f"{prefix}{i}") for i in range(count)]


@pytest.fixture
def filters():
    fds = _load_filters(3, "walk_")
    yield fds
    for fd in fds:
        os.close(fd)


@pytest.mark.parametrize(("first", "last", "count"), [(1, 1, 1), (5, 24, 3), (100, 101, 16), (7, 1006, 32)])
def test_id_ranges_cover_the_span_once(first, last, count):
    from bpft.progs import id_ranges

    ranges = id_ranges(first, last, count)
    assert len(ranges) == count
    covered = [i for start, stop in ranges for i in range(start + 1, stop + 1)]
    assert covered == list(range(first, last + 1))


@pytest.mark.kernel
def test_id_opener_opens_by_id_and_reports_a_gap(filters):
    from bpft.kernel import info as kinfo
    from bpft.kernel import syscall as sc

    open_id = sc.id_opener(sc.PROG_GET_FD_BY_ID)
    want = kinfo.prog_info(filters[0]).id
    fd = open_id(want)
    assert fd >= 0
    try:
        assert kinfo.prog_info(fd).id == want
    finally:
        os.close(fd)
    assert open_id(0x7FFFFFFF) == -errno.ENOENT  # ids never reach that far here


@pytest.mark.kernel
def test_list_info_is_the_full_info_in_short(filters):
    """prog_list_info's tuple holds what prog_info reads, field by field."""
    from bpft.kernel import info as kinfo

    for fd in filters:
        full = kinfo.prog_info(fd)
        short = dict(zip(kinfo.LIST_FIELDS, kinfo.prog_list_info(fd), strict=True))
        assert short.pop("name").split(b"\0", 1)[0] == full.name
        assert short.pop("gpl_compatible") & 1 == full.gpl_compatible
        assert short == {name: getattr(full, name) for name in short}
        assert full.name.startswith(b"walk_") and full.load_time > 0


@pytest.mark.kernel
def test_walk_yields_each_program_of_its_range_once(filters):
    from bpft.kernel import info as kinfo
    from bpft.progs import prog_id_span, render_prog_infos

    ids = [kinfo.prog_info(fd).id for fd in filters]
    first, last = prog_id_span()
    assert first <= min(ids) and max(ids) <= last
    for full in (False, True):
        seen: list = []
        render_prog_infos(lambda fd, info, full=full: info.id if full else info[1], seen, min(ids) - 1, max(ids), full)
        assert set(ids) <= set(seen) and seen == sorted(set(seen))
        assert all(min(ids) <= i <= max(ids) for i in seen)


@pytest.mark.kernel
def test_walk_closes_each_fd_once_rendered(filters):
    from bpft.progs import render_prog_infos

    fds: list = []
    render_prog_infos(lambda fd, info: (os.fstat(fd), fd)[1], fds)  # open while rendered
    assert fds
    for fd in set(fds):
        with pytest.raises(OSError):
            os.fstat(fd)


def test_fdinfo_value_finds_a_line_by_its_key():
    """bpftool's get_fdinfo(): the value after the tab of the first line starting with the key."""
    from bpft.kernel import fs

    r, w = os.pipe()
    try:
        with open(f"/proc/self/fdinfo/{w}") as f:
            lines = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        for key in ("pos", "flags", "mnt_id"):  # the first line, and later ones
            assert fs.fdinfo_value(w, key) == lines[key]
        assert fs.fdinfo_value(w, "lags") == lines["flags"]  # anywhere in the line, as bpftool's strstr()
        assert fs.fdinfo_value(w, "_id") == lines["mnt_id"]  # the first line that has it
        assert fs.fdinfo_value(w, "no_such_key") is None
        assert fs.fdinfo_reader("flags")(w) == lines["flags"].encode()
    finally:
        os.close(r)
        os.close(w)


def _get_fdinfo_model(data: bytes, key: bytes) -> bytes | None:
    """bpftool's get_fdinfo(), line by line as its C reads: getline(), strstr(), strchr('\\t'),
    the `!value[1]` test, and the last character of the value dropped (the newline, or a real
    character on a last line without one)."""
    lines = [line + b"\n" for line in data.split(b"\n")]
    lines[-1] = lines[-1][:-1]  # what follows the last newline: a line without one, or nothing
    for line in lines:
        if key not in line:
            continue
        tab = line.find(b"\t")
        if tab < 0 or tab + 1 == len(line):
            return None
        return line[tab + 1 : -1]
    return None


@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["memlock", "xmemlock", "memlock:", "mem", "a\tmemlock", "\tmemlock", "flags"]),
            st.sampled_from([":\t", ":", "\t", ": ", ""]),
            st.text(alphabet="0123\t:memlock", max_size=8),
        ),
        max_size=6,
    ),
    last_newline=st.booleans(),
    key=st.sampled_from(["memlock", "mem", "lock", "flags", "\t"]),
)
@example(lines=[("pos", ":\t", "0"), ("memlock", ":\t", "4096")], last_newline=True, key="memlock")  # the kernel's
@example(lines=[("\tmemlock", ":\t", "1")], last_newline=True, key="memlock")  # a tab first in the text
@example(lines=[("memlock", ":\t", "4096")], last_newline=False, key="memlock")  # no last newline
@example(lines=[("flags", ":\t", "02"), ("memlock", ":\t", "")], last_newline=False, key="memlock")
def test_fdinfo_reader_matches_bpftool_get_fdinfo(lines, last_newline, key):
    """The reader's fast path (a line "key:\\tvalue") and its general one agree with bpftool's
    get_fdinfo() on any text, keys inside lines, tabs before keys and a last line without newline."""
    from bpft.kernel import fs

    data = "\n".join(k + sep + v for k, sep, v in lines).encode()
    if data and last_newline:
        data += b"\n"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fs, "_fdinfo_text", lambda fd: data)
        mp.setattr(fs, "_fdinfo_files", {})  # no kept file: the text comes from _fdinfo_text
        assert fs.fdinfo_reader(key)(12345) == _get_fdinfo_model(data, key.encode())


def test_fdinfo_text_is_whole_beyond_the_first_read():
    """An fdinfo longer than the first short read (an epoll fd lists each fd it watches) is
    read whole, on the first read and through the kept file after it."""
    import select

    from bpft.kernel import fs

    ep = select.epoll()
    pipes = [os.pipe() for _ in range(40)]
    try:
        for r, _w in pipes:
            ep.register(r, select.EPOLLIN)
        with open(f"/proc/self/fdinfo/{ep.fileno()}", "rb") as f:
            whole = f.read()
        assert len(whole) > 2 * fs._FIRST_READ
        assert fs._fdinfo_text(ep.fileno()) == whole
        assert fs._fdinfo_text(ep.fileno()) == whole  # kept, then re-read
    finally:
        ep.close()
        for r, w in pipes:
            os.close(r)
            os.close(w)
