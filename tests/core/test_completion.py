"""Shell completion: the query bpft answers, and the scripts in real shells."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import bpft_cmd, run_bpft
from platform_plugins import PositionPlugin, loaded_program

from bpft.completion.usage import complete, tokens
from bpft.plugins import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry(use_cache=False, plugins=[PositionPlugin()])


def words(registry, *typed):
    return complete(registry, list(typed))


def test_usage_lines_read_as_tokens():
    toks = tokens("{bin} {obj} dump jited  PROG [{ file FILE | opcodes }]")
    assert [(t.text, t.optional, bool(t.group)) for t in toks] == [
        ("dump", False, False),
        ("jited", False, False),
        ("PROG", False, False),
        ("file", True, True),
        ("FILE", True, True),
        ("opcodes", True, True),
    ]
    (metrics,) = tokens("METRICs")
    assert (metrics.placeholder, metrics.repeats) == ("METRIC", True)


def test_objects_verbs_and_keywords(registry):
    kind, top = words(registry, "")
    assert kind == "words" and top[0] == "help" and top[-2:] == ["version", "completion"] and "prog" in top
    assert words(registry, "prog", "sh") == ("words", ["show"])
    assert words(registry, "p", "") [1][:3] == ["show", "list", "help"]
    assert words(registry, "prog", "show", "") == ("words", ["id", "tag", "name", "pinned"])
    assert words(registry, "prog", "dump", "") == ("words", ["xlated", "jited"])
    assert words(registry, "prog", "dump", "xlated", "id", "3", "") == ("words", ["file", "opcodes", "visual", "linum"])
    assert words(registry, "prog", "run", "id", "3", "") == ("words", ["data_in"])
    assert words(registry, "completion", "") == ("words", ["bash", "zsh", "fish"])
    assert words(registry, "-j", "prog", "show", "na") == ("words", ["name"])  # global options are skipped
    assert words(registry, "prog", "show", "--js") == ("words", ["--json"])


def test_grammar_words_from_help_lines(registry):
    kind, attach = words(registry, "prog", "attach", "id", "4", "")
    # bpftool's ATTACH_TYPE words first, then the first word of each TARGET (bpft-attach);
    # no placeholders (IFACE, cgroup_ATTACH) and no brackets
    bpftool_types = ["sk_msg_verdict", "sk_skb_verdict", "sk_skb_stream_verdict", "sk_skb_stream_parser", "flow_dissector"]
    assert kind == "words" and attach[:5] == bpftool_types
    assert {"xdp", "tcx_ingress", "tc_egress", "kprobe", "uprobe", "tracepoint", "raw_tp"} <= set(attach)
    assert not any(w in ("[", "]", "dev", "skb", "IFACE") or any(c.isupper() for c in w) for w in attach)
    assert len(attach) == len(set(attach))
    kind, metrics = words(registry, "prog", "profile", "id", "4", "")
    assert metrics == ["duration", "cycles", "instructions", "l1d_loads", "llc_misses", "itlb_misses", "dtlb_misses"]
    assert "xdp" in words(registry, "prog", "load", "a.o", "/sys/fs/bpf/a", "type", "")[1]


def test_files_where_a_file_goes(registry):
    assert words(registry, "prog", "load", "") == ("files", [])
    assert words(registry, "prog", "pin", "id", "3", "") == ("files", [])
    assert words(registry, "prog", "dump", "jited", "id", "3", "file", "") == ("files", [])


def test_pinned_paths_under_bpffs(registry, bpffs_dir):
    (bpffs_dir / "sub").mkdir()
    assert words(registry, "prog", "show", "pinned", "/sy") == ("paths", ["/sys/fs/bpf/"])
    kind, found = words(registry, "prog", "show", "pinned", f"{bpffs_dir}/")
    assert (kind, found) == ("paths", [f"{bpffs_dir}/sub/"])


@pytest.mark.kernel
def test_live_ids_names_and_tags(registry):
    with loaded_program("complete_me") as prog_id:
        assert str(prog_id) in words(registry, "prog", "show", "id", "")[1]
        assert words(registry, "prog", "show", "id", str(prog_id))[1][0] == str(prog_id)
        assert "complete_me" in words(registry, "prog", "dump", "xlated", "name", "complete_")[1]
        import bpft

        (prog,) = bpft.open_progs(["id", str(prog_id)])
        assert prog.tag in words(registry, "prog", "show", "tag", prog.tag[:4])[1]


def test_scripts_are_printed_for_each_shell():
    for shell, marker in (("bash", "complete -F _bpft_complete bpft"), ("zsh", "compdef _bpft_complete bpft"), ("fish", "complete -c bpft")):
        proc = run_bpft("completion", shell)
        assert proc.returncode == 0 and marker in proc.stdout_text
    bad = run_bpft("completion", "tcsh")
    assert bad.returncode == 255 and bad.stderr_text.startswith("Error: no completion for 'tcsh': choose one of bash, zsh, fish\n")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_scripts_parse_in_their_shell(shell):
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")
    proc = subprocess.run([exe, "-n"], input=run_bpft("completion", shell).stdout, capture_output=True)
    assert proc.returncode == 0, proc.stderr


def _bash_complete(*typed: str) -> list[str]:
    """COMPREPLY of the bash script for ``bpft TYPED...`` (the last word being typed)."""
    exe = shutil.which("bash")
    if exe is None:
        pytest.skip("bash is not installed")
    bpft = " ".join(bpft_cmd())
    line = " ".join(f"'{w}'" for w in (bpft, *typed))
    script = (
        f"source <({bpft} completion bash)\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(typed)}\n"
        "_bpft_complete\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run([exe, "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_bash_completes_a_verb():
    assert _bash_complete("prog", "sh") == ["show"]
    assert _bash_complete("prog", "dump", "") == ["xlated", "jited"]


@pytest.mark.kernel
def test_bash_offers_the_loaded_programs_ids():
    with loaded_program("bash_complete") as prog_id:
        assert str(prog_id) in _bash_complete("prog", "show", "id", "")


def test_fish_completes_a_verb_and_files(tmp_path):
    exe = shutil.which("fish")
    if exe is None:
        pytest.skip("fish is not installed")
    (tmp_path / "prog.o").write_bytes(b"")
    bpft = " ".join(bpft_cmd())
    script = (
        f"{bpft} completion fish | source\n"
        f"function bpft; {bpft} $argv; end\n"
        'complete -C"bpft prog sh"\n'
        f'complete -C"bpft prog load {tmp_path}/pr"\n'
    )
    proc = subprocess.run([exe, "--no-config", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == ["show", f"{tmp_path}/prog.o"], proc.stderr
