"""Verbs written with typer (bpft.typerverb): typer's parsing, help and errors, bpft's options around."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bpft import BpftError, Command, Context, OptionSpec, Record, hookimpl
from bpft.testing import run
from bpft.typerverb import is_bpft_handler, is_typer_target, split_words

typer = pytest.importorskip("typer", reason="typer is not installed (pip install typer)")

tally = typer.Typer(add_completion=False)


@tally.command()
def _tally(limit: int = typer.Option(3, "--limit", "-n", help="how many"), fail: bool = False) -> None:
    """Tally up to LIMIT."""
    if fail:
        raise BpftError("tally failed on purpose")
    ctx = Context.current()
    ctx.emitter.record(Record({"limit": limit, "pretty": ctx.options.pretty}, f"limit {limit}\n"))


def greet(name: str, times: int = 1) -> None:
    """A typed function as a verb."""
    Context.current().emitter.text(f"hello {name}\n" * times)


class TyperPlugin:
    @hookimpl
    def bpft_commands(self):
        return [
            Command("prog", "tally", tally, usage=("{bin} {obj} tally [--limit N]",)),
            Command("prog", "greet", greet, usage=("{bin} {obj} greet NAME [--times N]",)),
        ]


PLUGINS = [TyperPlugin()]


def test_typer_parses_the_verbs_words():
    assert run(["prog", "tally"], plugins=PLUGINS) == (0, "limit 3\n", "")
    assert run(["prog", "tally", "--limit", "7"], plugins=PLUGINS) == (0, "limit 7\n", "")
    assert run(["prog", "greet", "bob", "--times", "2"], plugins=PLUGINS) == (0, "hello bob\nhello bob\n", "")


def test_bpfts_options_work_before_and_after_the_verb():
    assert run(["-j", "prog", "tally", "-n", "2"], plugins=PLUGINS)[1] == '{"limit":2,"pretty":false}\n'
    assert run(["prog", "tally", "-n", "2", "-j"], plugins=PLUGINS)[1] == '{"limit":2,"pretty":false}\n'
    pretty = run(["prog", "tally", "--pretty", "--limit=4"], plugins=PLUGINS)[1]
    assert pretty == '{\n    "limit": 4,\n    "pretty": true\n}\n'
    assert run(["prog", "ta", "-n", "5"], plugins=PLUGINS)[1] == "limit 5\n"  # the verb by prefix, as ever


def test_the_verb_gets_typers_help_and_errors():
    status, out, _ = run(["prog", "tally", "--help"], plugins=PLUGINS)
    assert status == 0 and "Tally up to LIMIT." in out and "--limit" in out and "bpft prog tally" in out
    assert run(["prog", "tally", "-h"], plugins=PLUGINS)[1] == out  # -h is the verb's help too
    status, _, err = run(["prog", "tally", "--limit", "many"], plugins=PLUGINS)
    assert status == 2 and "Invalid value" in err
    status, _, err = run(["prog", "greet"], plugins=PLUGINS)
    assert status == 2 and "Missing argument" in err


def test_a_bpft_error_from_a_typer_verb_is_bpfts():
    assert run(["prog", "tally", "--fail"], plugins=PLUGINS) == (255, "", "Error: tally failed on purpose\n")
    assert run(["-j", "prog", "tally", "--fail"], plugins=PLUGINS)[1] == '{"error":"tally failed on purpose"}\n'


def test_prog_help_lists_typer_verbs():
    _, _, err = run(["prog", "help"], plugins=PLUGINS)
    assert "       bpft prog tally [--limit N]\n" in err and "       bpft prog greet NAME [--times N]\n" in err


def test_typer_is_imported_only_when_a_typer_verb_runs():
    code = "import sys; from bpft.cli import main; main(['prog', 'help']); print('typer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_which_targets_are_bpft_handlers():
    def native(ctx, args):
        pass

    def annotated(ctx: Context, args: "Args") -> int:  # noqa: F821
        return 0

    def typed(name: str, count: int) -> None:
        pass

    assert is_bpft_handler(native) and is_bpft_handler(annotated) and is_bpft_handler(lambda c, a: 0)
    assert not is_bpft_handler(typed) and not is_bpft_handler(greet)

    def with_optional(ctx, args, kernel=None):  # profile's run(): a test hook after (ctx, args)
        return 0

    def optional_args(ctx, args=None):
        return 0

    assert is_bpft_handler(with_optional) and not is_bpft_handler(optional_args)
    assert is_typer_target(tally) and is_typer_target(greet) and not is_typer_target(native)


SPECS = [OptionSpec("j", "json", "json"), OptionSpec("p", "pretty", "pretty"), OptionSpec("B", "base-btf", "b", True)]


@pytest.mark.parametrize(
    ("words", "ours", "theirs"),
    [
        (["-n", "2", "-j"], ["-j"], ["-n", "2"]),
        (["--js", "x"], ["--js"], ["x"]),  # bpft's long options by prefix
        (["-jp", "--limit=3"], ["-jp"], ["--limit=3"]),
        (["-B", "f", "a"], ["-B", "f"], ["a"]),  # with its value
        (["--", "-j"], [], ["--", "-j"]),  # all of it typer's after --
        (["-x"], [], ["-x"]),  # unknown to both: typer's error
        (["-h"], [], ["--help"]),
        (["-p"], [], ["-p"]),  # typer claims -p: typer's
    ],
)
def test_words_after_a_typer_verb_are_split(words, ours, theirs):
    claimed = {"-n": True, "--limit": True, "--help": False, "-p": False}
    assert split_words(words, claimed, SPECS) == (ours, theirs)
