"""BPF objects compiled by others, from Debian's archive: bpft loads each one exactly when
bpftool does, with the same programs, the same xlated code and the same maps.

The objects are the BPF ELF files (``e_machine`` 247) the packages ship, and the ones
embedded in their binaries (libbpf skeletons: libbpf-tools' CO-RE tracers, xdp-tools'
XDP programs), deduplicated by content. libxdp1's files are tested in test_load.py.
Packages are downloaded with ``apt-get download`` once per session (or taken from
``$BPFT_ARCHIVE_DIR``, a directory of .deb files, for repeated runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import byname_pin_names, byname_pins_removed, run_bpft, run_bpftool  # noqa: E402
from parity import show, xlated  # noqa: E402

PACKAGES = ["libbpf-tools", "xdp-tools", "xdp-tests", "golang-github-cilium-ebpf-dev"]
EM_BPF = 247
# bpftool's own reminder, printed after every failed load; not libbpf's
_BPFTOOL_ONLY = ("Warning: bpftool is now running in libbpf strict mode", "If it used to work for this object")
_KADDR = re.compile(r"\b0x[0-9a-f]{8,16}\b")


def _download(dest: Path) -> list[Path]:
    cached = os.environ.get("BPFT_ARCHIVE_DIR")
    if cached:
        debs = sorted(Path(cached).glob("*.deb"))
        if debs:
            return debs
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        pytest.skip("apt-get/dpkg not available")

    def get():
        try:
            return subprocess.run(["apt-get", "download", *PACKAGES], cwd=dest, capture_output=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip("apt unreachable (timeout)")

    r = get()
    if r.returncode and os.geteuid() == 0 and b"Unable to locate" in r.stderr:
        # a machine whose package lists were never fetched
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        r = get()
    debs = sorted(dest.glob("*.deb"))
    if r.returncode or len(debs) < len(PACKAGES):
        pytest.skip(f"apt unreachable: {r.stderr.decode(errors='replace').strip()[-300:]}")
    return debs


def bpf_objects_in(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, object) for every little- or big-endian ELF64 BPF object in ``data``: the
    file itself, or the ones embedded in a binary, each cut at the end of its section
    header table."""
    out = []
    pos = 0
    while (pos := data.find(b"\x7fELF\x02", pos)) >= 0:
        hdr = data[pos : pos + 64]
        if len(hdr) == 64 and hdr[5] in (1, 2):
            e = "<" if hdr[5] == 1 else ">"
            (machine,) = struct.unpack_from(e + "H", hdr, 18)
            (shoff,) = struct.unpack_from(e + "Q", hdr, 40)
            shentsize, shnum = struct.unpack_from(e + "HH", hdr, 58)
            end = shoff + shentsize * shnum
            if machine == EM_BPF and 0 < end <= len(data) - pos:
                out.append((pos, data[pos : pos + end]))
                pos += end
                continue
        pos += 4
    return out


@pytest.fixture(scope="session")
def archive_objects(tmp_path_factory) -> dict[str, Path]:
    """{"package:path[@offset]": object file} for every distinct BPF object in PACKAGES."""
    root = tmp_path_factory.mktemp("archive")
    debs = _download(root)
    objs: dict[str, Path] = {}
    seen: set[str] = set()
    store = root / "objs"
    store.mkdir()
    for deb in debs:
        pkg = deb.name.split("_")[0]
        tree = root / pkg
        subprocess.run(["dpkg", "-x", str(deb), str(tree)], check=True)
        for path in sorted(tree.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            data = path.read_bytes()
            for off, blob in bpf_objects_in(data):
                digest = hashlib.sha256(blob).hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                name = f"{pkg}:{path.relative_to(tree)}" + (f"@{off:#x}" if off else "")
                dest = store / f"{len(objs):03d}_{path.name}.o"
                dest.write_bytes(blob)
                objs[name] = dest
    return objs


def _stderr(text: str, obj: Path) -> list[str]:
    """The libbpf/Error lines, kernel addresses in verifier logs masked."""
    return [_KADDR.sub("0xADDR", ln) for ln in text.splitlines() if ln.strip() and not ln.startswith(_BPFTOOL_ONLY)]


def _maps_of(pin_dir: Path) -> list[dict]:
    """Definitions of the maps the pinned programs use (ids, memlock, BTF ids aside)."""
    maps = {}
    for pin in sorted(pin_dir.iterdir()) if pin_dir.is_dir() else ():
        info = json.loads(run_bpftool("-j", "prog", "show", "pinned", str(pin), check=True).stdout_text)
        for mid in info.get("map_ids", []):
            m = json.loads(run_bpftool("-j", "map", "show", "id", str(mid), check=True).stdout_text)
            for k in ("id", "btf_id", "pids", "bytes_memlock", "btf_vmlinux_value_type_id"):
                m.pop(k, None)
            maps[m["name"]] = m
    return [maps[k] for k in sorted(maps)]


def _compare(obj: Path, base: Path) -> list[str]:
    a, b = base / "bpftool", base / "bpft"
    with byname_pins_removed(byname_pin_names(obj)):
        rt = run_bpftool("prog", "loadall", str(obj), str(a))
        rf = run_bpft("prog", "loadall", str(obj), str(b))
        diffs = []
        if "Traceback" in rf.stderr_text:
            return [f"traceback: {rf.stderr_text[-1500:]}"]
        if rt.returncode != rf.returncode:
            diffs.append(f"exit status: bpftool {rt.returncode}, bpft {rf.returncode}")
        et, ef = _stderr(rt.stderr_text, obj), _stderr(rf.stderr_text, obj)
        if et != ef:
            first = next(i for i in range(min(len(et), len(ef)) + 1) if i >= len(et) or i >= len(ef) or et[i] != ef[i])
            diffs.append(f"stderr differs at line {first}: {et[first : first + 3]} vs {ef[first : first + 3]}")
        pt = sorted(os.listdir(a)) if a.is_dir() else []
        pf = sorted(os.listdir(b)) if b.is_dir() else []
        if pt != pf:
            diffs.append(f"pins: bpftool {pt}, bpft {pf}")
        if rt.returncode == 0:
            for p in set(pt) & set(pf):
                xt, xf = xlated(str(a / p)), xlated(str(b / p))
                if not xt.strip():
                    diffs.append(f"{p}: empty xlated dump")
                elif xt != xf:
                    diffs.append(f"{p}: xlated differs")
                st, sf = show(str(a / p)), show(str(b / p))
                if st != sf:
                    diffs.append(f"{p}: show differs: {st} vs {sf}")
            if not diffs and _maps_of(a) != _maps_of(b):
                diffs.append(f"maps differ: {_maps_of(a)} vs {_maps_of(b)}")
        return diffs


@pytest.mark.parity
@pytest.mark.parametrize("package", PACKAGES)
def test_archive_objects_as_bpftool(package, archive_objects, bpffs_dir):
    objs = {name: path for name, path in archive_objects.items() if name.startswith(package + ":")}
    assert objs, f"no BPF objects found in {package}"
    bad = {}
    for i, (name, obj) in enumerate(sorted(objs.items())):
        base = bpffs_dir / f"a{i}"
        base.mkdir()
        diffs = _compare(obj, base)
        if diffs:
            bad[name] = diffs
        shutil.rmtree(base, ignore_errors=True)
    assert not bad, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in bad.items())
