"""The field table of `prog show`: its compiled texts against its field-by-field reference,
for every test program and for made-up infos, and tables extended with more fields."""

from __future__ import annotations

import json
import os
import string

import pytest
from conftest import BPF_DIR, prog_id_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FORMS = ("plain", "compact", "json", "table")


def _options(**kw):
    from bpft.api import Options

    return Options(**kw)


def _run_envs(table, prog_id: int) -> dict:
    """The run values of a listing without and with -f, and with processes holding the program."""
    return {
        "plain": table.run_env(_options()),
        "-f": table.run_env(_options(bpffs=True)),
        "pids": table.run_env(_options(), refs={prog_id: [(1, "init"), (4242, 'a "q" \\ b')]}),
    }


def _check_program(table, fd: int) -> dict:
    """Compiled against reference texts of program ``fd``, in every form and run; the plain text."""
    from bpft_show import show

    info = show.info_reader(table)(fd)
    prog_id = info[table.info_fields.index("id")]
    texts = {}
    for run, env in _run_envs(table, prog_id).items():
        plain = table.plain_text(env, fd, info)
        assert table.plain_renderer(env)(fd, info) == plain, (run, plain)
        compact = table.compact_text(env, fd, info)
        assert table.compact_renderer(env)(fd, info) == compact, (run, compact)
        value = table.json_value(env, fd, info)
        assert list(json.loads(compact)) == list(value)  # valid JSON (values may be RawJson: compare keys)
        # every form a Shower renders in, from the same run values
        shower = show.Shower.__new__(show.Shower)
        shower.table = table
        for form in FORMS:
            shower.start(form, env)
            record = shower.record_of(fd, info)
            got = {"plain": record.plain(), "compact": record.json, "json": record.json, "table": record.row()}[form]
            want = {"plain": plain, "compact": compact, "json": value, "table": table.row(env, fd, info)}[form]
            assert got == want, (run, form)
        texts[run] = plain
    return texts


def _loaded_fds(loaded, objects) -> list[int]:
    """Fds of every program of ``objects`` that bpftool loads here (tests/bpf/README.md lists
    those it cannot: fentry, lsm...)."""
    from bpft.kernel import syscall as sc

    fds = []
    for obj in objects:
        try:
            pin_dir = loaded(obj)
        except AssertionError:
            continue
        fds += [sc.obj_get(str(pin)) for pin in sorted(pin_dir.iterdir())]
    return fds


@pytest.mark.kernel
def test_compiled_texts_match_the_reference_for_every_test_program(loaded):
    """Plain and compact JSON come from code compiled from the table; pretty JSON and rows
    from the table read field by field. Every program of tests/bpf, in every form, with and
    without pins walked and processes holding it, gives the same texts both ways."""
    from bpft_show.progfields import PROG_FIELDS

    PROG_FIELDS.check()  # every name its expressions read is given
    fds = _loaded_fds(loaded, sorted(p.name for p in BPF_DIR.glob("*.o")))
    try:
        assert len(fds) >= 20  # the corpus loads at least this many programs here
        plains = [_check_program(PROG_FIELDS, fd) for fd in fds]
    finally:
        for fd in fds:
            os.close(fd)
    joined = "".join(text for texts in plains for text in texts.values())
    # what the corpus covers: long names, metadata, pins, pids, several program types
    for piece in ("name show_xdp_with_a_long_program_name", "\tmetadata:\n", "\n\tpinned /sys/fs/bpf/", "\n\tpids "):
        assert piece in joined


# --- made-up infos: every field, every combination --------------------------------------

_U32, _U64 = st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)


def _maybe(values):
    return st.one_of(st.just(0), values)


@st.composite
def _infos(draw):
    """A listing's info tuple (LIST_FIELDS) with any values; names the kernel would keep whole."""
    from bpft.kernel.info import LIST_FIELDS

    name = draw(st.text(string.ascii_letters + string.digits + "_.", max_size=14)).encode()
    fields = {
        "type": draw(st.integers(0, 40)),
        "id": draw(st.integers(1, 2**31 - 1)),
        "tag": draw(st.binary(min_size=8, max_size=8)),
        "jited_prog_len": draw(_maybe(_U32)),
        "xlated_prog_len": draw(_U32),
        "load_time": draw(_maybe(st.integers(0, 2**62))),
        "created_by_uid": draw(_U32),
        "nr_map_ids": draw(st.integers(0, 3)),
        "name": name.ljust(16, b"\0"),
        "ifindex": draw(_maybe(st.integers(1, 5))),
        "gpl_compatible": draw(_U32),
        "netns_dev": draw(_U64),
        "netns_ino": draw(_U64),
        "btf_id": draw(_maybe(_U32)),
        "run_time_ns": draw(_maybe(_U64)),
        "run_cnt": draw(_U64),
        "recursion_misses": draw(_maybe(_U64)),
    }
    return tuple(fields[name] for name in LIST_FIELDS)


_TEXTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def _fake_metadata(fd: int, map_ids: list) -> list | None:
    """Metadata for programs with an odd number of maps: (key, JSON value, plain text)."""
    if len(map_ids) % 2 == 0:
        return None
    return [("name", 'hel"lo', '"hel\\"lo"'), ("num", -5, "-5"), ("nested", {"a": [1, 2]}, "{...}")]


@pytest.fixture(scope="module")
def fake_maps_table():
    """The program table with made-up map ids and metadata, so fd -1 can have them."""
    from bpft_show.progfields import PROG_FIELDS

    return PROG_FIELDS.extended(
        helpers={"prog_map_ids": lambda fd, count: list(range(10, 10 + count)), "prog_metadata": _fake_metadata}
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    info=_infos(),
    pinned=st.one_of(st.none(), st.dictionaries(st.integers(1, 2**31 - 1), st.lists(_TEXTS, max_size=3))),
    holders=st.lists(st.tuples(st.integers(1, 2**22), _TEXTS), max_size=3),
    memlock=st.sampled_from([None, b"4096", b" -12abc", b"", b"x"]),
)
def test_compiled_texts_match_the_reference_for_made_up_infos(fake_maps_table, info, pinned, holders, memlock):
    """Fields no test program has (offload, unknown types, run stats, misses, odd memlock
    texts, pins and process names with quotes and backslashes): both ways give one text."""
    from bpft.kernel.info import LIST_FIELDS

    table = fake_maps_table
    prog_id = info[LIST_FIELDS.index("id")]
    env = table.run_env(
        _options(), pinned=pinned, refs={prog_id: holders} if holders else {}, memlock_of=lambda fd: memlock
    )
    plain = table.plain_text(env, -1, info)
    assert table.plain_renderer(env)(-1, info) == plain
    compact = table.compact_text(env, -1, info)
    assert table.compact_renderer(env)(-1, info) == compact
    assert json.loads(compact) == json.loads(json.dumps(table.json_value(env, -1, info)))
    assert plain.endswith("\n") and ("\tmetadata:\n\t\tname = " in plain) == (info[7] % 2 == 1)


# --- extending the table -------------------------------------------------------------------


def _detail_table():
    """The example of bpft_show.fieldtable's docstring: one more info field, a run value."""
    from bpft_show.fieldtable import Field, RunValue
    from bpft_show.progfields import PROG_FIELDS

    return PROG_FIELDS.extended(
        Field(
            "verified_insns",
            when="verified_insns",
            plain=r"\n\tverified_insns {verified_insns}",
            json_text="{verified_insns}",
            column="verified",
        ),
        Field(
            "attached",
            value="attach_points.get(id, [])",
            when="id in attach_points",
            plain=r"\n\tattached {', '.join(attach_points[id])}",
        ),
        after="pids",
        info=("verified_insns",),
        run_values=(RunValue("attach_points", lambda options, env: {}),),
    )


def test_extended_table_places_its_fields():
    from bpft.kernel.info import LIST_FIELDS
    from bpft_show.progfields import PROG_FIELDS

    table = _detail_table()
    assert list(table.info_fields) == [*LIST_FIELDS, "verified_insns"]  # the kernel's order
    assert table.json_order[-4:] == ("pids", "verified_insns", "attached", "metadata")
    assert table.plain_order[-5:] == ("btf_id", "pids", "verified_insns", "attached", "metadata")
    assert table.columns == (*PROG_FIELDS.columns, "verified")
    assert PROG_FIELDS.json_order[-1] == "metadata"  # the base table is left as it was


@pytest.mark.kernel
def test_extended_table_shows_its_fields(loaded):
    """Fields added by another module: in plain, JSON and the table, compiled like the base
    ones, and through the listing loop with the extended info reader."""
    import io

    from bpft.api import Context
    from bpft.kernel import info as kinfo
    from bpft.kernel import syscall as sc
    from bpft.output import PlainEmitter
    from bpft.plugins import Registry
    from bpft_show import show
    from bpft_show.progfields import PROG_FIELDS

    table = _detail_table()
    table.check()
    pin = sorted(loaded("show_meta.o").iterdir())[0]
    prog_id = prog_id_of(pin)
    fd = sc.obj_get(str(pin))
    try:
        verified = kinfo.prog_info(fd).verified_insns
        assert verified > 0
        texts = _check_program(table, fd)
        line = f"\n\tverified_insns {verified}"
        assert line in texts["plain"] and texts["plain"].index(line) < texts["plain"].index("\tmetadata:")
        base = PROG_FIELDS.plain_text(PROG_FIELDS.run_env(_options()), fd, show.info_reader(PROG_FIELDS)(fd))
        assert texts["plain"].replace(line, "") == base
        env = table.run_env(_options(), attach_points={prog_id: ["xdp lo", "xdp eth0"]})
        info = show.info_reader(table)(fd)
        assert "\n\tattached xdp lo, xdp eth0\n" in table.plain_renderer(env)(fd, info)
        value = table.json_value(env, fd, info)
        assert value["verified_insns"] == verified and value["attached"] == ["xdp lo", "xdp eth0"]
        assert table.row(env, fd, info)["verified"] == verified
        # the listing loop reads the extended info through the table's reader
        shower = show.Shower(Context(_options(), PlainEmitter(out=io.StringIO()), Registry()), table)
        listed, err, _ = shower.render_range(prog_id - 1, prog_id)
        assert err is None and listed == [table.plain_text(shower.env, fd, info)]
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"plain": "{no_such_name}"}, "unknown names no_such_name"),
        ({"plain": "{id"}, "unclosed"),
        ({"plain": "x}"}, "single"),
        ({"plain": "{id +}"}, "not a Python expression"),
        ({"plain": r"\x41"}, "escape other than"),
        ({"name": "id"}, "two fields named 'id'"),
        ({"plain_after": "nowhere"}, "not placed yet"),
    ],
)
def test_a_broken_field_fails_when_the_table_is_made(fields, message):
    from bpft_show.fieldtable import Field
    from bpft_show.progfields import PROG_FIELDS
    from bpft_show.template import TemplateError

    with pytest.raises(TemplateError, match=message):
        PROG_FIELDS.extended(Field(**{"name": "extra", "value": "0", **fields})).check()


def test_the_first_json_field_takes_no_condition():
    from bpft_show.fieldtable import Field, FieldTable
    from bpft_show.template import TemplateError

    with pytest.raises(TemplateError, match="first JSON field"):
        FieldTable([Field("a", when="a")], info_fields=["a"])
