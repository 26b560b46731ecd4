"""The registry's cache of hook answers (bpft.plugincache) and what the registry reports."""

from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest
from bpft import plugincache
from bpft.plugins import Registry
from bpft.testing import run
from platform_plugins import install, verb_source


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("BPFT_CACHE_DIR", str(path))
    monkeypatch.delenv("BPFT_NO_CACHE", raising=False)
    return path


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory of distributions at the front of sys.path; its modules forgotten afterwards."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    before = set(sys.modules)
    yield path
    for name in set(sys.modules) - before:
        if name.startswith("cachetest_"):
            del sys.modules[name]


def _summary(reg: Registry):
    return (
        [
            (c.verb, c.handler if isinstance(c.handler, str) else c.handler.__name__, c.usage, c.distribution)
            for c in reg.commands()
        ],
        [h.text for h in reg.help_lines("prog")],
        [k.keyword for k in reg.handle_kinds("prog")],
        [f.name for f in reg.output_formats()],
        reg.plugins,
    )


def test_a_second_registry_comes_from_the_cache_without_pluggy(cache_dir):
    first = Registry()
    assert first._pm is not None  # asked the hooks
    assert list(cache_dir.iterdir()) == [cache_dir / os.path.basename(plugincache.cache_file())]
    second = Registry()
    assert second._pm is None  # no plugin manager, no hook module imported
    assert _summary(second) == _summary(first)
    status, _, err = run(["prog", "help"])  # in-process runs never use the cache...
    assert status == 0 and "bpft prog { show | list } [PROG]" in err
    from bpft import cli

    kinds = second.handle_kinds("prog")
    assert kinds[0].keyword == "id" and callable(kinds[0].resolve)  # ...a cached resolver is a lazy reference
    assert cli.object_help(_ctx(second), "prog") == cli.object_help(_ctx(first), "prog")


def _ctx(reg):
    from bpft.api import Context, Options
    from bpft.output import PlainEmitter

    return Context(Options(), PlainEmitter(), reg)


def test_an_edited_plugin_module_invalidates_the_cache(cache_dir, site):
    module = install(site, "cachetest-one", "1.0", "cachetest_one", verb_source("alpha", "cachetest_one"))
    assert "alpha" in [c.verb for c in Registry().commands()]
    cached = Registry()
    assert cached._pm is None and "alpha" in [c.verb for c in cached.commands()]
    (alpha,) = [c for c in cached.commands() if c.verb == "alpha"]
    (info,) = [p for p in cached.plugins if p.name == "cachetest-one"]
    assert (alpha.distribution, info.distribution, info.version) == ("cachetest-one", "cachetest-one", "1.0")
    del sys.modules["cachetest_one"]
    module.write_text(textwrap.dedent(verb_source("beta", "cachetest_one")))
    os.utime(module, ns=(time.time_ns() + 10**9,) * 2)
    edited = Registry()
    assert edited._pm is not None
    verbs = [c.verb for c in edited.commands()]
    assert "beta" in verbs and "alpha" not in verbs


def test_an_install_invalidates_the_cache(cache_dir, site):
    Registry()
    os.utime(site, ns=(time.time_ns() + 10**9,) * 2)  # what an install does to site-packages
    install(site, "cachetest-two", "2.0", "cachetest_two", verb_source("gamma", "cachetest_two"))
    assert "gamma" in [c.verb for c in Registry().commands()]


def test_a_plugin_with_a_lambda_is_asked_on_every_run(cache_dir, site):
    source = """
        import bpft

        @bpft.hookimpl
        def bpft_commands():
            return [bpft.Command("prog", "lam", lambda ctx, args: 0, usage=("{bin} {obj} lam",))]
    """
    install(site, "cachetest-live", "1.0", "cachetest_live", source)
    Registry()
    cached = Registry()
    assert cached._pm is not None and cached._pm.has_plugin("cachetest-live")
    assert not cached._pm.has_plugin("show")  # the others came from the cache
    assert "lam" in [c.verb for c in cached.commands()]


def test_a_broken_plugin_is_listed_with_its_error_and_not_cached(cache_dir, site):
    install(site, "cachetest-broken", "0.3", "cachetest_broken", "import cachetest_missing_module\n")
    reg = Registry()
    (broken,) = [p for p in reg.plugins if p.error]
    assert (broken.name, broken.distribution, broken.version) == ("cachetest-broken", "cachetest-broken", "0.3")
    assert broken.error == "ModuleNotFoundError: No module named 'cachetest_missing_module'"
    assert "Traceback" in broken.details
    assert reg.failed == [("cachetest-broken", broken.error)]
    assert "show" in [c.verb for c in reg.commands()]  # the others still work
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_no_cache_when_asked(cache_dir, monkeypatch):
    monkeypatch.setenv("BPFT_NO_CACHE", "1")
    Registry()
    assert plugincache.cache_file() is None and not cache_dir.exists()


def test_a_cache_file_of_another_owner_is_ignored(cache_dir):
    Registry()
    path = plugincache.cache_file()
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file away")
    os.chown(path, 65534, 65534)
    assert plugincache.load() is None


def test_distribution_is_filled_in_from_the_entry_point():
    reg = Registry(use_cache=False)
    by_verb = {c.verb: c.distribution for c in reg.commands("prog")}
    assert by_verb["show"] == "bpft-show" and by_verb["help"] == "bpft-core"
    core = [p for p in reg.plugins if p.name == "core"][0]
    assert core.distribution == "bpft-core"
