"""The public API: bpft.__all__, its cheap import, and the program walks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bpft
import pytest
from bpft.records import NamedTuple
from conftest import run_bpftool
from platform_plugins import loaded_program, open_fds


def test_every_public_name_resolves_and_is_listed():
    for name in bpft.__all__:
        assert getattr(bpft, name) is not None, name
        assert name in dir(bpft)
    with pytest.raises(AttributeError):
        bpft.not_a_name  # noqa: B018
    assert bpft.Command is __import__("bpft.api").api.Command
    assert bpft.BpftError is __import__("bpft.errors").errors.BpftError


def test_the_package_is_typed():
    assert (Path(bpft.__file__).parent / "py.typed").exists()


def test_importing_bpft_and_its_command_imports_nothing_heavy():
    code = (
        "import sys, bpft, bpft.cli;"
        "print(sorted(m for m in ('typing', 'pluggy', 'inspect', 'typer', 'tabulate', 'bpft.api') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['bpft.api']"  # the CLI needs the API, and nothing of typing or pluggy


def test_records_are_namedtuples_without_typing():
    class Point(NamedTuple):
        """A point."""

        x: int
        y: int = 2

        def total(self) -> int:
            return self.x + self.y

    p = Point(1)
    assert (p, p.total(), p._replace(y=5), Point.__doc__) == ((1, 2), 3, (1, 5), "A point.")
    assert Point._fields == ("x", "y")
    with pytest.raises(TypeError):

        class Bad(NamedTuple):
            a: int = 1
            b: int


@pytest.mark.kernel
@pytest.mark.parity
def test_iter_progs_describes_a_program_as_bpftool_does():
    with loaded_program("api_walk") as prog_id:
        ours = next(p for p in bpft.iter_progs() if p.id == prog_id)
        theirs = json.loads(run_bpftool("-j", "prog", "show", "id", str(prog_id), check=True).stdout)
    assert ours.type == theirs["type"] == "socket_filter"
    assert (ours.name, ours.tag, ours.gpl_compatible) == (theirs["name"], theirs["tag"], theirs["gpl_compatible"])
    assert (ours.bytes_xlated, ours.bytes_jited, ours.uid) == (
        theirs["bytes_xlated"],
        theirs["bytes_jited"],
        theirs["uid"],
    )
    assert ours.map_ids == tuple(theirs.get("map_ids", ()))
    assert ours.btf_id == theirs.get("btf_id", 0)


@pytest.mark.kernel
def test_iter_progs_holds_nothing_open_when_left_early():
    with loaded_program("api_a"), loaded_program("api_b"):
        before = open_fds()
        walk = bpft.iter_progs()
        next(walk)
        assert open_fds() == before  # suspended at a yield: nothing open
        walk.close()
        assert open_fds() == before


@pytest.mark.kernel
def test_open_progs_by_id_name_and_tag():
    with loaded_program("api_open_me") as prog_id:
        (by_id,) = bpft.open_progs(["id", str(prog_id)])
        assert by_id.id == prog_id and by_id.name == "api_open_me"
        assert prog_id in [p.id for p in bpft.open_progs(["name", "api_open_me"])]
        assert prog_id in [p.id for p in bpft.open_progs(["t", by_id.tag])]  # keywords match by prefix
        before = open_fds()
        bpft.open_progs(["id", str(prog_id)])
        assert open_fds() == before


def test_open_progs_errors_are_bpftools():
    with pytest.raises(bpft.BpftError, match="^can't parse nope as ID$"):
        bpft.open_progs(["id", "nope"])
    with pytest.raises(bpft.BpftError, match="^expected 'id', 'tag', 'name' or 'pinned', got: 'size'\\?$"):
        bpft.open_progs(["size", "3"])


@pytest.mark.kernel
def test_open_progs_refuses_words_after_the_handle_and_closes_what_it_opened():
    with loaded_program("api_extra") as prog_id:
        before = open_fds()
        with pytest.raises(bpft.BpftError, match="^what is 'more'\\?$"):
            bpft.open_progs(["id", str(prog_id), "more"])
        assert open_fds() == before


def test_dependencies_of_core_are_pluggy_and_tabulate():
    import tomllib

    root = Path(__file__).resolve().parents[2]
    deps = tomllib.loads((root / "core" / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(d.split(">")[0].split("=")[0] for d in deps) == ["pluggy", "tabulate"]
    assert os.path.exists(root / "core" / "src" / "bpft" / "py.typed")
