"""What bpft says about its plugins: `bpft version`, broken plugins, help positions, plugin options."""

from __future__ import annotations

import json
import os

import pytest
from bpft import Command, hookimpl
from bpft.testing import run
from conftest import run_bpft
from platform_plugins import OptionsPlugin, PositionPlugin, install


@pytest.fixture
def broken_site(tmp_path):
    """PYTHONPATH with one plugin that fails to import (the installed ones stay)."""
    install(tmp_path, "bpft-broken", "0.4", "diag_broken", "import diag_missing_dependency\n")
    return {"PYTHONPATH": str(tmp_path), "BPFT_CACHE_DIR": str(tmp_path / "cache")}


def test_version_lists_each_plugin_with_its_distribution():
    proc = run_bpft("version")
    assert proc.returncode == 0
    lines = proc.stdout_text.splitlines()
    assert lines[:3] == ["bpft v0.1.0", "using no libbpf", "plugins:"]
    assert ["show", "bpft-show", "0.1.0"] in [line.split() for line in lines[3:]]
    plugins = json.loads(run_bpft("-j", "version").stdout_text)["plugins"]
    assert {"name": "show", "distribution": "bpft-show", "version": "0.1.0"} in plugins


def test_a_broken_plugin_is_reported_and_the_rest_works(broken_site):
    proc = run_bpft("version", env=broken_site)
    assert proc.returncode == 0
    (line,) = [x for x in proc.stdout_text.splitlines() if "broken" in x]
    assert line.split() == [
        "bpft-broken",
        "bpft-broken",
        "0.4",
        "failed:",
        "ModuleNotFoundError:",
        "No",
        "module",
        "named",
        "'diag_missing_dependency'",
    ]
    assert "Traceback" not in proc.stderr_text
    debug = run_bpft("-d", "version", env=broken_site)
    assert "plugin 'bpft-broken' (diag_broken):\nTraceback" in debug.stderr_text
    assert "ModuleNotFoundError: No module named 'diag_missing_dependency'" in debug.stderr_text
    plugins = json.loads(run_bpft("-j", "version", env=broken_site).stdout_text)["plugins"]
    assert {
        "name": "bpft-broken",
        "distribution": "bpft-broken",
        "version": "0.4",
        "error": "ModuleNotFoundError: No module named 'diag_missing_dependency'",
    } in plugins
    helptext = run_bpft("prog", "help", env=broken_site)
    assert helptext.returncode == 0 and "bpft prog { show | list } [PROG]" in helptext.stderr_text


@pytest.mark.kernel
def test_other_verbs_run_beside_a_broken_plugin(broken_site):
    assert run_bpft("-j", "prog", "show", env=broken_site).returncode == 0


def test_usage_lines_take_a_position():
    status, _, err = run(["prog", "help"], plugins=[PositionPlugin()])
    assert status == 0
    lines = err.splitlines()
    load = next(i for i, line in enumerate(lines) if "{ load | loadall }" in line)
    placed = lines.index("       bpft prog placed")
    assert placed == load + 4  # after load's four lines, before attach
    assert "attach" in lines[placed + 1]
    unplaced = lines.index("       bpft prog unplaced")
    assert lines[unplaced + 1] == "       bpft prog help"  # by default: last, before help
    assert "       COLOR := { red | green | blue }" in lines


def test_a_plugin_adds_global_options_every_verb_sees():
    plugins = [OptionsPlugin()]
    assert run(["prog", "echo", "a"], plugins=plugins) == (0, "zap=None color=None words=a\n", "")
    assert run(["-Z", "prog", "echo", "a", "--color", "red"], plugins=plugins) == (
        0,
        "zap=True color=red words=a\n",
        "",
    )
    assert run(["prog", "echo", "--col=blue", "-jZ"], plugins=plugins)[1] == '{"zap":true,"color":"blue","words":[]}\n'
    status, _, err = run(["prog", "help"], plugins=plugins)
    assert "PLUGIN_OPTIONS := { {-Z|--zap} | --color COLOR }" in err  # the clashing -j/--jolly is left out
    assert run(["prog", "echo", "--jolly"], plugins=plugins)[0] == 255


def test_without_the_plugin_its_option_is_unknown():
    status, _, err = run(["prog", "help", "--color", "red"])
    assert status == 255 and err.startswith("Error: unrecognized option '--color'\n")


def test_a_failed_verb_plugin_says_so_instead_of_not_installed(tmp_path):
    env = {"BPFT_DISABLE_PLUGINS": "dump", "PYTHONPATH": str(tmp_path), "BPFT_CACHE_DIR": str(tmp_path / "c")}
    install(
        tmp_path, "bpft-dump", "9.9", "diag_dump_broken", "raise ImportError('capstone is missing')\n", entry="dump2"
    )
    proc = run_bpft("prog", "dump", "xlated", "id", "1", env={**os.environ, **env})
    assert proc.returncode == 255
    assert proc.stderr_text == (
        "Error: 'dump' is installed but failed to load: ImportError: capstone is missing (see bpft version)\n"
    )


class _UnloadableVerb:
    @hookimpl
    def bpft_commands(self):
        return [Command("prog", "ghost", "diag_no_such_module:run", distribution="bpft-ghost")]


def test_a_verb_whose_module_cannot_load_is_a_clear_error():
    status, _, err = run(["prog", "ghost"], plugins=[_UnloadableVerb()])
    assert status == 255
    assert (
        err
        == "Error: 'ghost' failed to load: ModuleNotFoundError: No module named 'diag_no_such_module' (bpft-ghost)\n"
    )
