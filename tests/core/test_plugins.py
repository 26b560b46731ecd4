"""Plugin discovery and the registry built from the installed plugins."""

import importlib.metadata
import subprocess
import sys
import textwrap

from bpft.api import Command
from bpft.hookspecs import hookimpl
from bpft.plugins import GROUP, Registry, _parse_entry_points, discover


def test_fast_discovery_matches_importlib_metadata():
    ours = sorted((name, value) for name, value, _ in discover())
    theirs = sorted((ep.name, ep.value) for ep in importlib.metadata.entry_points(group=GROUP))
    assert ours == theirs
    assert ("show", "bpft_show.plugin") in ours


def test_entry_points_parser():
    text = textwrap.dedent(
        """
        [console_scripts]
        bpft = bpft.cli:run

        [bpft.plugins]
        show = bpft_show.plugin
        ; comment
        extra=pkg.mod:obj
        """
    )
    assert list(_parse_entry_points(text, GROUP)) == [("show", "bpft_show.plugin"), ("extra", "pkg.mod:obj")]


def test_discovery_on_a_synthetic_path(tmp_path):
    dist = tmp_path / "thing-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text("[bpft.plugins]\nthing = thing_mod\n")
    (tmp_path / "other-2.0.dist-info").mkdir()
    assert discover(path=[str(tmp_path)]) == [("thing", "thing_mod", "thing-1.0.dist-info")]


class _Verb:
    @hookimpl
    def bpft_commands(self):
        return [Command("prog", "zap", lambda ctx, args: 0, rank=1000, usage=("{bin} {obj} zap",))]


def test_registered_plugin_verbs_are_sorted_by_rank():
    reg = Registry(load_entry_points=False)
    reg.register(_Verb(), name="zap")
    verbs = [c.verb for c in reg.commands("prog")]
    assert verbs == ["help", "zap"]
    kinds = [k.keyword for k in reg.handle_kinds("prog")]
    assert kinds == ["id", "tag", "name", "pinned"]


def test_disabled_plugin_is_absent_and_named_for_install():
    env = {"BPFT_DISABLE_PLUGINS": "show"}
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "bpft", "prog", "show"], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert proc.returncode == 255
    assert proc.stderr == "Error: 'show' is not installed: it comes with bpft-show (pip install bpft-show)\n"
    helptext = subprocess.run(
        [sys.executable, "-m", "bpft", "prog", "help"], capture_output=True, text=True, env={**os.environ, **env}
    ).stderr
    assert "show" not in helptext and "bpft prog help" in helptext
