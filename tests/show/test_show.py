"""`bpft prog show` against bpftool v7.1 on real programs, and its error paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BPF_DIR, prog_id_of, run_bpft, run_bpftool

FLAG_SETS = [[], ["-j"], ["-j", "-p"], ["-f"], ["-f", "-j"], ["-p", "-f"]]

# this interpreter (a venv's, where bpft is installed) under the name python3, which is
# the command name procfs reports for it
PYTHON3 = os.path.join(os.path.dirname(sys.executable), "python3")


def strip_pids(text: str, json_mode: bool) -> str:
    """bpftool v7.1 here cannot show pids (no skeletons); drop ours before comparing."""
    if not json_mode:
        return "".join(line for line in text.splitlines(True) if not line.startswith("\tpids "))
    data = json.loads(text)
    for obj in data if isinstance(data, list) else [data]:
        if isinstance(obj, dict):
            obj.pop("pids", None)
    return json.dumps(data)


def same(flags: list[str], *words: str) -> None:
    theirs = run_bpftool(*flags, *words)
    ours = run_bpft(*flags, *words)
    json_mode = "-j" in flags or "-p" in flags
    assert ours.returncode == theirs.returncode, (flags, words, ours.stderr_text)
    assert ours.stderr_text == theirs.stderr_text.replace("bpftool", "bpft")
    if json_mode or not ours.returncode:
        a, b = strip_pids(ours.stdout_text, json_mode), strip_pids(theirs.stdout_text, json_mode)
        assert a == b, (flags, words)
    if json_mode:
        assert "-p" in flags or ours.stdout_text.count("\n") == 1
        json.loads(ours.stdout_text)


def corpus_objects() -> list[Path]:
    """Every object of the test corpus that bpftool loads here (the README table lists them)."""
    return sorted(p for p in BPF_DIR.glob("*.o"))


@pytest.fixture
def show_progs(loaded):
    pin_dir = loaded("show_meta.o")
    pins = sorted(pin_dir.iterdir())
    assert len(pins) == 2
    return pins


@pytest.mark.parity
@pytest.mark.parametrize("obj", ["show_meta.o", "show_prog_types.o"])
def test_show_each_program_every_form(loaded, obj):
    """Every program type here (xdp, tc, socket, cgroup_skb, sk_msg, sk_skb, flow_dissector,
    tracepoint, raw_tp, tp_btf, kprobe, perf_event), by each handle, in each output form."""
    pins = sorted(loaded(obj).iterdir())
    assert len(pins) == {"show_meta.o": 2, "show_prog_types.o": 12}[obj]
    for pin in pins:
        prog_id = prog_id_of(pin)
        info = json.loads(run_bpftool("-j", "prog", "show", "id", str(prog_id), check=True).stdout_text)
        for flags in FLAG_SETS:
            same(flags, "prog", "show", "id", str(prog_id))
        for handle in (["tag", info["tag"]], ["name", info["name"]], ["pinned", str(pin)]):
            for flags in ([], ["-j"], ["-f", "-p"]):
                same(flags, "prog", "show", *handle)
        same([], "prog", "list", "id", str(prog_id))
        same([], "p", "s", "i", str(prog_id))


@pytest.mark.parity
def test_metadata_of_every_btf_kind(loaded):
    """Structs with bitfields, enums, arrays, pointers, int128, unions: bpftool's dumper output."""
    pin = loaded("show_meta_types.o") / "show_types"
    prog_id = prog_id_of(pin)
    for flags in FLAG_SETS:
        same(flags, "prog", "show", "id", str(prog_id))
    meta = json.loads(run_bpft("-j", "prog", "show", "id", str(prog_id)).stdout_text)["metadata"]
    assert meta["flags"]["col"] == "BLUE" and meta["flags"]["b"] == "0x11"
    assert meta["raw"] == [1, 97, 2, 0] and meta["ptr"] == 0 and meta["wide"] == "0x400000000000000005"


@pytest.mark.parity
def test_metadata_and_long_name(show_progs):
    ids = [prog_id_of(p) for p in show_progs]
    for prog_id in ids:
        out = run_bpft("-j", "prog", "show", "id", str(prog_id), check=True).stdout_text
        data = json.loads(out)
        assert data["metadata"] == {"name": "hello", "num": -5, "big": 1 << 40, "flag": True}
    names = {json.loads(run_bpft("-j", "prog", "show", "id", str(i)).stdout_text)["name"] for i in ids}
    assert names == {"show_xdp_with_a_long_program_name", "show_sock"}
    plain = run_bpft("prog", "show", "id", str(ids[0]), check=True).stdout_text
    assert '\tmetadata:\n\t\tname = "hello"\n\t\tnum = -5\n' in plain


@pytest.mark.parity
@pytest.mark.parametrize("workers", ["", "3"], ids=["own-choice", "3-workers"])
def test_full_listing_matches(show_progs, loaded, monkeypatch, workers):
    """The whole listing, every flag set; "3-workers" splits it over forked workers (BPFT_WORKERS)
    however few programs there are, so the joined pieces are compared with bpftool too."""
    monkeypatch.setenv("BPFT_WORKERS", workers)
    for obj in corpus_objects():
        if obj.name == "show_meta.o":
            continue
        try:
            loaded(obj.name)
        except AssertionError:
            continue  # objects bpftool cannot load here (fentry, lsm) are listed in tests/bpf/README.md
    for flags in FLAG_SETS:
        for _attempt in range(3):  # other processes may load or unload programs meanwhile
            theirs = run_bpftool(*flags, "prog", "show")
            ours = run_bpft(*flags, "prog", "show")
            json_mode = "-j" in flags or "-p" in flags
            if strip_pids(ours.stdout_text, json_mode) == strip_pids(theirs.stdout_text, json_mode):
                break
        else:
            pytest.fail(f"prog show {flags} differs from bpftool")
        assert ours.returncode == 0 and ours.stderr_text == ""


@pytest.mark.parity
def test_several_matches_by_tag_are_a_json_array(loaded):
    pin_dir = loaded("show_meta.o")
    loaded("show_meta.o")
    pin = sorted(pin_dir.iterdir())[0]
    tag = json.loads(run_bpft("-j", "prog", "show", "pinned", str(pin), check=True).stdout_text)["tag"]
    for flags in ([], ["-j"], ["-j", "-p"]):
        same(flags, "prog", "show", "tag", tag)
    data = json.loads(run_bpft("-j", "prog", "show", "tag", tag).stdout_text)
    assert isinstance(data, list) and len(data) >= 2


BAD_INPUTS = [
    ["prog", "show", "id"],
    ["prog", "show", "id", "x"],
    ["prog", "show", "id", "4294967295"],
    ["prog", "show", "id", "1", "x"],
    ["prog", "show", "foo", "1"],
    ["prog", "show", "tag", "zz"],
    ["prog", "show", "tag", "0000000000000000"],
    ["prog", "show", "name", "n" * 200],
    ["prog", "show", "name", "no_such_program"],
    ["prog", "show", "pinned", "/nonexistent/pin"],
    ["prog", "show", "pinned", "/tmp"],
    ["prog", "show", "pinned", "/sys/fs/bpf"],
    ["prog", "list", "x", "y", "z"],
]


USAGE_INPUTS = [
    ["prog", "frobnicate"],
    ["prog", "show", "--frob"],
    ["-x", "prog", "show"],
    ["frob"],
]


@pytest.mark.parity
@pytest.mark.parametrize("words", BAD_INPUTS, ids=lambda w: " ".join(w)[:40])
@pytest.mark.parametrize("flags", [[], ["-j"]], ids=["plain", "json"])
def test_bad_input_like_bpftool(words, flags):
    theirs = run_bpftool(*flags, *words)
    ours = run_bpft(*flags, *words)
    assert ours.returncode == theirs.returncode != 0
    assert "Traceback" not in ours.stderr_text
    assert ours.stderr_text == theirs.stderr_text.replace("bpftool", "bpft")
    assert ours.stdout_text == theirs.stdout_text
    if flags:
        json.loads(ours.stdout_text.strip() or "null")


@pytest.mark.parity
@pytest.mark.parametrize("words", USAGE_INPUTS, ids=lambda w: " ".join(w)[:40])
@pytest.mark.parametrize("flags", [[], ["-j"]], ids=["plain", "json"])
def test_usage_errors_like_bpftool(words, flags):
    """Same status, error line and JSON; the usage text lists bpft's own objects and verbs."""
    theirs = run_bpftool(*flags, *words)
    ours = run_bpft(*flags, *words)
    assert ours.returncode == theirs.returncode != 0
    assert ours.stdout_text == theirs.stdout_text
    assert "Traceback" not in ours.stderr_text
    if flags:
        assert ours.stderr_text == theirs.stderr_text == ""
    else:
        first = theirs.stderr_text.splitlines()[0].replace("bpftool", "bpft")
        assert ours.stderr_text.splitlines()[0] == first
        assert "Usage: bpft " in ours.stderr_text


def test_pinned_object_of_the_wrong_type(bpffs_dir):
    from bpft.kernel import syscall as sc

    fd = sc.map_create(2, 4, 4, 1, name="wrongtype")
    try:
        sc.obj_pin(fd, str(bpffs_dir / "m"))
    finally:
        os.close(fd)
    proc = run_bpft("prog", "show", "pinned", str(bpffs_dir / "m"))
    assert proc.returncode == 255
    assert proc.stderr_text == "Error: incorrect object type: map\n"


@pytest.mark.kernel
@pytest.mark.parametrize("flags", [[], ["-j"]], ids=["plain", "json"])
def test_without_privileges_gets_bpftool_error(flags):
    """No capabilities (setpriv drops them all, so the interpreter stays readable): bpftool's error."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("setpriv not installed")
    from conftest import bpft_cmd

    drop = [setpriv, "--bounding-set=-all", "--inh-caps=-all"]
    proc = subprocess.run([*drop, *bpft_cmd(), *flags, "prog", "show"], capture_output=True, text=True)
    assert proc.returncode == 255
    assert "Traceback" not in proc.stderr
    if flags:
        assert json.loads(proc.stdout) == [{"error": "can't get next program: Operation not permitted"}]
    else:
        assert proc.stderr == "Error: can't get next program: Operation not permitted\n"
    if shutil.which("bpftool"):
        ref = subprocess.run([*drop, "bpftool", *flags, "prog", "show"], capture_output=True, text=True)
        assert (proc.stdout, proc.stderr, proc.returncode) == (ref.stdout, ref.stderr, ref.returncode)


def _pin_socket_filters(count: int, pin_dir: Path, prefix: str) -> list[Path]:
    from bpft.kernel import syscall as sc

    code = bytes.fromhex("b7000000000000009500000000000000")
    pins = []
    for i in range(count):
        fd = sc.prog_load_simple(1, code, name=f"{prefix}{i}")
        try:
            path = pin_dir / f"{prefix}{i}"
            sc.obj_pin(fd, str(path))
            pins.append(path)
        finally:
            os.close(fd)
    return pins


@pytest.mark.kernel
@pytest.mark.parametrize("flags", [[], ["-j"]], ids=["plain", "json"])
def test_programs_unloaded_while_listing(bpffs_dir, flags):
    """Programs vanish while bpft walks them: no crash, whole records, valid JSON."""
    from conftest import bpft_cmd

    pins = _pin_socket_filters(600, bpffs_dir, "vanish_")
    proc = subprocess.Popen([*bpft_cmd(), *flags, "prog", "show"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for pin in pins:
        pin.unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and err == b""
    if flags:
        for obj in json.loads(out):
            assert {"id", "type", "tag", "bytes_xlated"} <= set(obj)
    else:
        heads = [line for line in out.decode().splitlines() if not line.startswith("\t")]
        assert all(": " in line and " tag " in line for line in heads)


@pytest.mark.kernel
def test_table_output_has_a_row_per_program(show_progs):
    ids = sorted(prog_id_of(p) for p in show_progs)
    out = run_bpft("--table", "prog", "show", check=True).stdout_text.splitlines()
    assert out[0].split()[:4] == ["id", "type", "name", "tag"]
    rows = {int(line.split()[0]): line.split() for line in out[2:]}
    listed = {p["id"]: p for p in json.loads(run_bpft("-j", "prog", "show").stdout_text)}
    # other processes may load or unload programs between the two listings:
    # every program present in both must agree, and ours must be in both
    assert set(ids) <= set(rows) & set(listed)
    for prog_id in set(rows) & set(listed):
        assert rows[prog_id][1] == listed[prog_id]["type"]
        assert rows[prog_id][3 if listed[prog_id].get("name") else 2] == listed[prog_id]["tag"]
    for prog_id in ids:
        assert rows[prog_id][2].startswith("show_")


@pytest.mark.kernel
def test_pids_from_procfs(show_progs):
    """A process holding an fd on a program is listed as upstream bpftool lists it."""
    holder = subprocess.Popen(
        [
            PYTHON3,
            "-c",
            "import os,sys; from bpft.kernel import syscall as s;"
            f" fd=s.obj_get({str(show_progs[0])!r}); sys.stdout.write('ok\\n'); sys.stdout.flush(); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "ok\n"
        prog_id = prog_id_of(show_progs[0])
        plain = run_bpft("prog", "show", "id", str(prog_id), check=True).stdout_text
        assert f"\n\tpids python3({holder.pid})\n" in plain
        data = json.loads(run_bpft("-j", "prog", "show", "id", str(prog_id)).stdout_text)
        assert data["pids"] == [{"pid": holder.pid, "comm": "python3"}]
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_show_does_not_import_heavy_modules():
    """Nor, once the plugin cache is warm (the first run fills it), pluggy or typing."""
    code = (
        "import sys; from bpft import cli; rc = cli.main(['prog', 'show']);"
        "bad = [m for m in ('capstone', 'elftools', 'typer', 'click', 'pluggy', 'typing') if m in sys.modules];"
        "print(bad)"
    )
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr


@pytest.mark.parity
def test_run_stats_shown_like_bpftool(bpffs_dir):
    """With BPF stats on, run_time_ns and run_cnt appear, as bpftool prints them."""
    from bpft.kernel import syscall as sc

    code = bytes.fromhex("b7000000000000009500000000000000")
    fd = sc.prog_load_simple(1, code, name="stats_prog")
    stats = sc.enable_stats()
    try:
        data = sc.ctypes.create_string_buffer(64)
        attr = sc.TestRunAttr(prog_fd=fd, data_size_in=64, data_in=sc.addr(data), repeat=50)
        sc.prog_test_run(attr)
        pin = bpffs_dir / "stats"
        sc.obj_pin(fd, str(pin))
        prog_id = prog_id_of(pin)
        for flags in ([], ["-j"], ["-j", "-p"]):
            same(flags, "prog", "show", "id", str(prog_id))
        shown = json.loads(run_bpft("-j", "prog", "show", "id", str(prog_id)).stdout_text)
        assert shown["run_cnt"] == 50 and shown["run_time_ns"] > 0
    finally:
        os.close(stats)
        os.close(fd)


def _info(**kw):
    from bpft.kernel.info import ProgInfoRec

    base = dict.fromkeys(ProgInfoRec._fields, 0)
    base.update(tag=bytes.fromhex("005a3d2123620c8b"), name=b"")
    base.update(kw)
    return ProgInfoRec(**base)


def _list_info(info) -> tuple:
    """``info``'s fields as the listing reads them (bpft.kernel.info.prog_list_info)."""
    from bpft.kernel.info import BPF_OBJ_NAME_LEN, LIST_FIELDS

    raw = info._replace(name=info.name.ljust(BPF_OBJ_NAME_LEN, b"\0"))
    return tuple(getattr(raw, f) for f in LIST_FIELDS)


def _env(**given):
    """Run values with no pins walked and no processes holding programs, unless given."""
    from bpft.api import Options
    from bpft_show.progfields import PROG_FIELDS

    return PROG_FIELDS.run_env(Options(), **{"pinned": None, "refs": {}, **given})


def test_rendering_of_fields_no_program_here_has():
    """Unknown type, no name, not jited, recursion misses, an offload device not in our netns."""
    from bpft_show.progfields import PROG_FIELDS

    info = _info(
        id=7,
        type=99,
        run_time_ns=5,
        run_cnt=2,
        recursion_misses=3,
        ifindex=4,
        netns_dev=1,
        netns_ino=2,
        xlated_prog_len=16,
        gpl_compatible=0,
    )
    env = _env()
    plain = PROG_FIELDS.plain_renderer(env)(-1, _list_info(info))  # fd -1: no fdinfo, so no memlock
    assert plain == (
        "7: type 99  tag 005a3d2123620c8b  offloaded_to ifindex 4 ns_dev 1 ns_ino 2"
        " run_time_ns 5 run_cnt 2 recursion_misses 3\n"
        "\txlated 16B  not jited\n"
    )
    assert PROG_FIELDS.plain_text(env, -1, _list_info(info)) == plain
    j = PROG_FIELDS.json_value(env, -1, _list_info(info))
    assert list(j) == [
        "id",
        "type",
        "tag",
        "gpl_compatible",
        "run_time_ns",
        "run_cnt",
        "recursion_misses",
        "dev",
        "bytes_xlated",
        "jited",
    ]
    assert j["type"] == 99 and j["jited"] is False
    assert j["dev"] == {"ifindex": 4, "ns_dev": 1, "ns_inode": 2}
    compact = PROG_FIELDS.compact_renderer(env)(-1, _list_info(info))
    assert compact == PROG_FIELDS.compact_text(env, -1, _list_info(info))


def test_pinned_key_present_whenever_pins_were_walked():
    """bpftool -f prints "pinned": [] for an unpinned program once any pin exists."""
    from bpft_show.progfields import PROG_FIELDS

    info = _info(id=8, type=6, xlated_prog_len=16, jited_prog_len=20, gpl_compatible=1, name=b"x")
    env = _env(pinned={9: ["/sys/fs/bpf/other"]}, memlock_of=lambda fd: b"4096")
    j = PROG_FIELDS.json_value(env, -1, _list_info(info))
    assert j["pinned"] == [] and j["bytes_memlock"] == 4096
    compact = PROG_FIELDS.compact_renderer(env)(-1, _list_info(info))
    assert compact.endswith(',"bytes_memlock":4096,"pinned":[]}')


@pytest.mark.kernel
@pytest.mark.parametrize("json_mode", [False, True])
def test_vanishing_program_is_skipped_deterministically(bpffs_dir, monkeypatch, json_mode):
    """One program disappears before GET_FD_BY_ID (after GET_NEXT_ID named it), another before GET_INFO."""
    import errno
    import io

    import bpft_show.show as show
    from bpft.api import Context, Options
    from bpft.grammar import Args
    from bpft.output import JsonEmitter, PlainEmitter
    from bpft.plugins import Registry

    pins = _pin_socket_filters(3, bpffs_dir, "gone_")
    ids = [prog_id_of(p) for p in pins]
    import bpft.progs as progs
    from bpft.kernel import syscall as sc

    real_open, real_open_id = sc.prog_get_fd_by_id, progs._open_prog_id
    real_info, real_list_info = show.kinfo.prog_info, show.kinfo.prog_list_info

    def fake_open(prog_id):  # the walk's slow path, after GET_NEXT_ID
        if prog_id == ids[0]:  # unloaded before we could open it
            raise OSError(errno.ENOENT, "No such file or directory")
        return real_open(prog_id)

    def fake_open_id(prog_id):  # the walk's fast path: the id after the last one
        return -errno.ENOENT if prog_id == ids[0] else real_open_id(prog_id)

    def vanishing(read, id_of):
        def fake_info(fd):
            info = read(fd)
            if id_of(info) == ids[1]:  # unloaded between GET_FD_BY_ID and GET_INFO
                raise OSError(errno.ENOENT, "No such file or directory")
            return info

        return fake_info

    monkeypatch.setattr(sc, "prog_get_fd_by_id", fake_open)
    monkeypatch.setattr(progs, "_open_prog_id", fake_open_id)
    monkeypatch.setattr(show.kinfo, "prog_info", vanishing(real_info, lambda info: info.id))
    monkeypatch.setattr(show.kinfo, "prog_list_info", vanishing(real_list_info, lambda info: info[1]))
    out = io.StringIO()
    em = JsonEmitter(out=out) if json_mode else PlainEmitter(out=out)
    ctx = Context(Options(json=json_mode), em, Registry())
    assert show.run(ctx, Args([])) == 0
    em.close()
    text = out.getvalue()
    listed = (
        [p["id"] for p in json.loads(text)]
        if json_mode
        else [int(line.split(":")[0]) for line in text.splitlines() if not line.startswith("\t")]
    )
    assert ids[0] not in listed and ids[1] not in listed and ids[2] in listed


@pytest.mark.parametrize(
    ("span", "env", "forks", "cut"),
    [
        (None, "", False, False),
        ((10, 20), "", False, False),  # a short listing: one walk, one process
        ((1, 2000), "", False, True),  # cut so its texts are written as they come, on one process
        ((1, 50_000), "", True, True),  # long enough to pay for forked workers (given two CPUs)
        ((10, 20), "3", True, True),  # BPFT_WORKERS forces workers even for a few ids
        ((1, 50_000), "1", False, True),
    ],
)
def test_listing_parts_by_id_span(monkeypatch, span, env, forks, cut):
    import bpft_show.show as show

    monkeypatch.setenv("BPFT_WORKERS", env)
    monkeypatch.setattr(show, "prog_id_span", lambda: span)
    if forks and not env and len(os.sched_getaffinity(0)) < 2:
        forks = False  # one CPU: bpft never forks on its own
    ranges, workers = show._listing_parts()
    assert (workers > 1) == forks
    assert (len(ranges) > 1) == cut
    if span:
        ids = [i for start, stop in ranges for i in range(start + 1, stop + 1)]
        assert ids == list(range(span[0] if cut else 1, span[1] + 1))  # every id once, up to the last


@pytest.mark.parametrize(
    ("text", "value"),
    [(b"4096", 4096), (b" -12abc", -12), (b"+5", 5), (b"-", 0), (b"", 0), (b"abc", 0), (b"\t 7 ", 7), (b"+-5", 0)],
)
def test_memlock_text_read_as_atoll_does(text, value):
    from bpft_show.progfields import atoll

    assert atoll(text) == value
