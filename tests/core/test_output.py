"""The JSON writer reproduces bpftool's json_writer; emitters render records."""

import io
import json

from bpft.output import JsonEmitter, JsonWriter, PlainEmitter, RawJson, Record, TableEmitter, json_quote


def test_compact_object_in_array():
    w = JsonWriter()
    w.start_array()
    w.value({"id": 1, "ok": True, "ids": [1, 2]})
    w.value({"id": 2, "none": None})
    w.end_array()
    assert w.take() == '[{"id":1,"ok":true,"ids":[1,2]},{"id":2,"none":null}]'


def test_pretty_layout_matches_bpftool():
    # bpftool -p: names on new lines indented by 4, array items inline,
    # a non-empty container closes on its own line.
    w = JsonWriter(pretty=True)
    w.start_array()
    w.value({"id": 10, "map_ids": [10], "pids": [{"pid": 1, "comm": "systemd"}]})
    w.end_array()
    assert w.take() == (
        "[{\n"
        '        "id": 10,\n'
        '        "map_ids": [10\n'
        "        ],\n"
        '        "pids": [{\n'
        '                "pid": 1,\n'
        '                "comm": "systemd"\n'
        "            }\n"
        "        ]\n"
        "    }\n"
        "]"
    )


def test_streaming_and_one_pass_rendering_agree():
    value = {"a": [1, {"b": "x"}], "c": {}, "d": [], "e": RawJson("123")}
    for pretty in (False, True):
        w1 = JsonWriter(pretty)
        w1.value(value)
        w2 = JsonWriter(pretty)
        w2.start_object()
        w2.name("a")
        w2.start_array()
        w2.raw("1")
        w2.start_object()
        w2.name("b")
        w2.string("x")
        w2.end_object()
        w2.end_array()
        w2.name("c")
        w2.start_object()
        w2.end_object()
        w2.name("d")
        w2.start_array()
        w2.end_array()
        w2.name("e")
        w2.raw("123")
        w2.end_object()
        assert w1.take() == w2.take()


def test_raw_values_write_what_raw_writes_one_by_one():
    for pretty in (False, True):
        for texts in ([], ["1"], ["1", '{"a":2}', "[]"]):
            for before in (0, 1):  # first values of the array, and values after one
                one, many = JsonWriter(pretty), JsonWriter(pretty)
                for w in (one, many):
                    w.start_array()
                    if before:
                        w.raw("0")
                for t in texts:
                    one.raw(t)
                many.raw_values(texts)
                one.end_array()
                many.end_array()
                assert one.take() == many.take()


def test_strings_are_valid_json():
    for text in ['a"b', "back\\slash", "tab\tnl\n", "quote'", "\x01ctl"]:
        assert json.loads(json_quote(text)) == text


def test_json_emitter_error_inside_open_array_is_closed():
    out = io.StringIO()
    em = JsonEmitter(out=out, err=io.StringIO())
    em.begin_list()
    em.record(Record({"id": 1}))
    em.error("can't get prog info: No such file or directory")
    em.close()
    assert out.getvalue() == '[{"id":1},{"error":"can\'t get prog info: No such file or directory"}]\n'
    assert json.loads(out.getvalue())


def test_json_help_is_null():
    out = io.StringIO()
    em = JsonEmitter(out=out)
    em.help("Usage: ...")
    em.close()
    assert out.getvalue() == "null\n"


def test_plain_and_prerender_agree():
    rec = Record({"id": 3}, lambda: "3: xdp\n")
    for em_cls in (PlainEmitter, JsonEmitter):
        a, b = io.StringIO(), io.StringIO()
        e1, e2 = em_cls(out=a), em_cls(out=b)
        for e in (e1, e2):
            e.begin_list()
        e1.record(rec)
        e1.record(rec)
        e2.emit_rendered([e2.render(rec), e2.render(rec)])
        for e in (e1, e2):
            e.end_list()
            e.close()
        assert a.getvalue() == b.getvalue()


def test_table_emitter_rows():
    out = io.StringIO()
    em = TableEmitter(out=out)
    em.record(Record({}, "", {"id": 1, "type": "xdp"}))
    em.record(Record({}, "", {"id": 22, "type": "sched_cls"}))
    em.close()
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["id", "type"]
    assert lines[2].split() == ["1", "xdp"]
    assert lines[3].split() == ["22", "sched_cls"]
