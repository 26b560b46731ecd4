"""bpft-top's model without a kernel: intervals from samples, sorting, columns, sparklines, JSON."""

from __future__ import annotations

import json

from bpft.output import Record
from bpft_top import columns, headless
from bpft_top.rates import ProgRate, SortKey, interval, sort_rows
from bpft_top.sample import ProgCounters, Sample
from bpft_top.sparkline import BLOCKS, sparkline
from hypothesis import given
from hypothesis import strategies as st

SEC = 1_000_000_000


def sample(at_s: float, *progs: ProgCounters, boot_offset: int = 10 * SEC) -> Sample:
    mono = int(at_s * SEC)
    return Sample(mono, mono + boot_offset, 1_700_000_000 + at_s, {p.id: p for p in progs})


def prog(pid: int, run_cnt: int, run_time_ns: int, load_time: int = 0, name: str = "p", ptype: str = "xdp"):
    return ProgCounters(pid, ptype, name or f"p{pid}", run_cnt, run_time_ns, load_time)


def test_rates_over_one_interval():
    before = sample(1.0, prog(1, 100, 10_000))
    after = sample(1.5, prog(1, 1100, 60_000))
    iv = interval(before, after, cpus=2)
    (row,) = iv.rows
    assert iv.seconds == 0.5
    assert row.events == 1000
    assert row.events_per_s == 2000.0
    assert row.avg_ns == 50.0
    # 50,000 ns of run time in 0.5 s on 2 CPUs: 50e3 / 1e9 * 100 %
    assert row.cpu_pct == 50_000 * 100 / (0.5 * SEC * 2)
    assert (row.run_cnt, row.run_time_ns) == (1100, 60_000)


def test_idle_program_has_no_average():
    iv = interval(sample(0, prog(1, 5, 50)), sample(1, prog(1, 5, 50)), cpus=1)
    assert iv.rows[0].events == 0 and iv.rows[0].avg_ns is None and iv.rows[0].cpu_pct == 0.0


def test_programs_that_appear_and_vanish():
    boot_prev = 10 * SEC + 1 * SEC  # the previous sample's boot time
    before = sample(1.0, prog(1, 10, 100), prog(2, 7, 70))
    loaded_between = prog(3, 40, 400, load_time=boot_prev + 1)  # loaded after the previous pass
    missed = prog(4, 90, 900, load_time=boot_prev - 1)  # there before, missed by the previous pass
    after = sample(2.0, prog(1, 10, 100), loaded_between, missed)
    iv = interval(before, after, cpus=1)
    by_id = {r.id: r for r in iv.rows}
    assert set(by_id) == {1, 3, 4}  # 2 vanished: no row
    assert (iv.appeared, iv.vanished) == (2, 1)
    assert by_id[3].events == 40 and by_id[3].avg_ns == 10.0  # all its runs are in this interval
    assert by_id[4].events == 0  # no baseline: measured from the next interval on


def rate(pid, cpu=0.0, run_time=0, eps=0.0, avg=None, name="n"):
    return ProgRate(pid, "xdp", name, 0, eps, avg, cpu, 0, run_time, ())


def test_sort_orders():
    rows = [rate(1, cpu=1.0, run_time=5, eps=3, avg=9, name="b"), rate(2, cpu=3.0, run_time=1, eps=1, name="a"),
            rate(3, cpu=3.0, run_time=9, eps=2, avg=1, name="c")]  # fmt: skip
    ids = lambda key, rev=False: [r.id for r in sort_rows(rows, key, rev)]  # noqa: E731
    assert ids(SortKey.CPU) == [2, 3, 1]  # ties: lower id first
    assert ids(SortKey.RUNTIME) == [3, 1, 2]
    assert ids(SortKey.EVENTS) == [1, 3, 2]
    assert ids(SortKey.AVG) == [1, 3, 2]  # no average sorts last
    assert ids(SortKey.ID) == [1, 2, 3]
    assert ids(SortKey.NAME) == [2, 1, 3]
    assert ids(SortKey.ID, True) == [3, 2, 1]


rows_strategy = st.lists(
    st.builds(
        ProgRate,
        st.integers(1, 10**9),
        st.sampled_from(["xdp", "socket_filter", "cgroup_sock_addr", "raw_tracepoint_writable"]),
        st.text('abcdefghijklmnopqrstuvwxyz_."\\\n\té', max_size=40),
        st.integers(0, 10**12),
        st.floats(0, 1e9),
        st.one_of(st.none(), st.floats(0, 1e9)),
        st.floats(0, 100),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**64 - 1),
        st.lists(st.tuples(st.integers(1, 4_000_000), st.text('abc "\\\x01é', max_size=15)), max_size=4).map(tuple),
    ),
    max_size=6,
)


@given(rows_strategy, st.integers(10, 250))
def test_lines_fit_the_width(rows, width):
    texts = [columns.cells(r) for r in rows]
    placed = columns.layout([columns.titles(), *texts], width)
    assert placed and placed[0][0] == 0  # the id always stays
    for cells in [columns.titles(), *texts]:
        assert len(columns.line(cells, placed)) <= max(width, placed[0][1])


def test_narrow_terminals_drop_the_least_important_columns_first():
    row = rate(12345, cpu=1.5, run_time=10**12, eps=10**6, avg=33.3, name="a_long_program_name")
    texts = [columns.titles(), columns.cells(row)]
    titles = lambda width: [columns.COLUMNS[i].title for i, _ in columns.layout(texts, width)]  # noqa: E731
    assert titles(None) == columns.titles()
    assert "PIDS" not in titles(70) and "CPU%" in titles(70) and "NAME" in titles(70)
    assert titles(20) == ["ID", "CPU%"]


def test_unlimited_width_cuts_nothing():
    row = rate(1, name="x" * 100)._replace(pids=((1, "systemd"), (2, "kthreadd")))
    placed = columns.layout([columns.titles(), columns.cells(row)], None)
    text = columns.line(columns.cells(row), placed)
    assert "x" * 100 in text and text.endswith("systemd(1), kthreadd(2)")


def test_sparkline():
    assert sparkline([0, 0, 0], 10) == BLOCKS[0] * 3
    assert sparkline([0, 1, 2, 4], 10) == BLOCKS[0] + BLOCKS[2] + BLOCKS[4] + BLOCKS[7]
    assert sparkline(range(100), 5) == sparkline(range(95, 100), 5)  # the most recent values
    assert sparkline([1, 2], 0) == ""


def test_interval_json_has_the_issue_keys_in_order(capsys):
    iv = interval(sample(1.0, prog(7, 0, 0, name="a")), sample(1.25, prog(7, 3, 30, name="a")), cpus=4)
    rows = [iv.rows[0]._replace(pids=((42, "loader"),))]
    em = headless.JsonLinesEmitter()
    em.record(Record(headless.interval_json(iv, rows)))
    em.record(Record(headless.interval_json(iv, [])))
    em.error("bad")
    lines = capsys.readouterr().out.splitlines()
    first = json.loads(lines[0])
    assert list(first) == ["time", "interval_s", "programs"]
    assert first["interval_s"] == 0.25 and first["time"] == 1_700_000_001.25
    assert first["programs"] == [
        {
            "id": 7,
            "type": "xdp",
            "name": "a",
            "events": 3,
            "events_per_s": 12.0,
            "avg_ns": 10.0,
            "cpu_pct": 30 * 100 / (0.25 * SEC * 4),  # 30 ns over 0.25 s x 4 CPUs
            "run_cnt": 3,
            "run_time_ns": 30,
            "pids": [{"pid": 42, "comm": "loader"}],
        }
    ]
    assert json.loads(lines[1])["programs"] == []
    assert json.loads(lines[2]) == {"error": "bad"}
    assert len(lines) == 3


def test_plain_and_table_blocks():
    iv = interval(sample(1.0, prog(7, 0, 0, name="a")), sample(2.0, prog(7, 3, 30, name="a")), cpus=1)
    plain = headless.plain_block(iv, iv.rows, None).splitlines()
    assert "interval 1.000s  programs 1  cpus 1" in plain[0]
    assert plain[1].split() == columns.titles()
    assert plain[2].split() == ["7", "xdp", "a", "3.0", "10", "0.00", "3", "30", "-"]
    assert plain[3:] == [""]  # a blank line between intervals
    table = headless.table_block(iv, iv.rows).splitlines()
    assert table[1].split() == [c.title.lower() for c in columns.COLUMNS]
    assert set(table[2]) <= {"-", " "} and table[3].split()[:3] == ["7", "xdp", "a"]


@given(rows_strategy, st.floats(0, 2e9), st.floats(0.001, 100))
def test_compact_json_text_is_the_general_renderers(rows, wall, seconds):
    from bpft.output import render_json

    iv = interval(sample(0.0), sample(seconds), cpus=2)._replace(sample=sample(seconds)._replace(wall=wall))
    text = headless.interval_json_text(iv, rows)
    assert text == render_json(headless.interval_json(iv, rows))
    assert json.loads(text)["programs"] == json.loads(render_json([headless.program_json(r) for r in rows]))
