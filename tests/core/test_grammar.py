"""bpftool's grammar: getopt permutation, prefix matching, strtoul, argument macros."""

import pytest
from bpft.errors import BpftError, UsageError
from bpft.globalopts import CORE_OPTIONS
from bpft.grammar import Args, OptionError, getopt, is_prefix, match_word, parse_uint, strtoul


def opts(*argv):
    return list(getopt(list(argv), CORE_OPTIONS))


def test_options_anywhere_and_clustered():
    assert opts("prog", "-j", "show", "-fp") == [
        (None, "prog"),
        ("json", None),
        (None, "show"),
        ("bpffs", None),
        ("pretty", None),
    ]


def test_long_option_prefix_and_ambiguity():
    assert opts("--js") == [("json", None)]
    assert opts("--pre") == [("pretty", None)]
    with pytest.raises(OptionError, match="unrecognized option '--foo'"):
        opts("--foo")


def test_unknown_short_option_names_the_whole_word():
    with pytest.raises(OptionError, match="unrecognized option '-jx'"):
        opts("-jx")


def test_double_dash_ends_options_and_lone_dash_is_a_word():
    assert opts("prog", "--", "-j") == [(None, "prog"), (None, "-j")]
    assert opts("data_in", "-") == [(None, "data_in"), (None, "-")]


def test_option_with_value():
    assert opts("-B", "/x", "--base-btf=/y") == [("base_btf", "/x"), ("base_btf", "/y")]


def test_prefix_matching_in_table_order():
    assert is_prefix("", "show")
    assert not is_prefix(None, "show")
    assert match_word("l", ["show", "list", "load"]) == "list"
    assert match_word("lo", ["show", "list", "load"]) == "load"
    assert match_word("x", ["show"]) is None


@pytest.mark.parametrize(
    "text,value,rest",
    [("10", 10, ""), ("0x1f", 31, ""), ("010", 8, ""), (" 7", 7, ""), ("12ab", 12, "ab"), ("x", 0, "x"), ("", 0, "")],
)
def test_strtoul(text, value, rest):
    assert strtoul(text) == (value, rest)


def test_parse_uint_messages_and_wrap():
    assert parse_uint("42", "ID") == 42
    assert parse_uint("-1", "ID") == 0xFFFFFFFF
    with pytest.raises(BpftError, match="can't parse 4x as ID"):
        parse_uint("4x", "ID")


def test_args_macros():
    args = Args(["id"], verb="pin")
    with pytest.raises(BpftError) as e:
        args.require(3)
    assert e.value.message == "'pin' needs at least 3 arguments, 1 found"
    assert e.value.exit_code == 234
    assert args.bad().message == "what is 'id'?"
    args.next()
    with pytest.raises(UsageError):
        args.next()
