"""Kernel-free golden tests of the open phase: ``bpft_load.open_object`` on every test
object, the README example and libxdp1's objects gives a spec whose summary (programs,
sections, types, instructions, relocations, maps, externs, BTF records) matches the
file checked in under tests/load/golden/.

Opening makes no kernel call, so these run anywhere, without root, and the goldens
hold nothing of the kernel they were made on. After a deliberate change to the open
phase, rewrite them with ``BPFT_UPDATE_GOLDEN=1 python -m pytest tests/load/test_golden.py``
and review the diff. libxdp1's objects are compared when the package can be had
(``$BPFT_LIBXDP_DIR``, or ``apt-get download``), and only for the build the goldens
were made from (its sha256 is in the golden).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BPF_DIR, ROOT

sys.path.insert(0, str(Path(__file__).parent))
from libxdp import libxdp_dir  # noqa: E402, F401 - a fixture

bpft_load = pytest.importorskip("bpft_load")
from bpft.kernel.uapi import attach_type_name, map_type_name, prog_type_name  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("BPFT_UPDATE_GOLDEN"))
TEST_OBJECTS = sorted(BPF_DIR.glob("*.o")) + [ROOT / "examples/hello.bpf.o"]


def _type(name: str | None, value: int) -> str:
    return name or f"type {value}"


def _relocation(spec, r) -> str:
    kind = r.kind.name.lower()
    if r.kind.name in ("LD64", "DATA"):
        target = spec.map_list[r.map_idx].name
    elif r.ext is not None:
        target = r.ext.name
    else:
        target = r.sym_name
    return f"{r.insn_idx}: {kind} {target}" + (f" +{r.sym_off}" if r.sym_off else "")


def _map(m) -> dict:
    out = {
        "name": m.name,
        "kind": str(m.kind),
        "type": _type(map_type_name(m.map_type), m.map_type),
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "flags": hex(m.flags),
        "key_type_id": m.key_type_id,
        "value_type_id": m.value_type_id,
    }
    if m.pin_path:
        out["pin_path"] = m.pin_path
    if m.inner is not None:
        out["inner"] = _map(m.inner)
    if m.init_slots:
        out["slots"] = [t.name if t is not None else None for t in m.init_slots]
    if m.struct_name:
        out["struct_ops"] = {"struct": m.struct_name, "members": {i: p.name for i, p in m.struct_progs.items()}}
    if m.data is not None and any(m.data):
        out["data_sha256"] = hashlib.sha256(bytes(m.data)).hexdigest()[:16]
    return out


def summarize(path: Path) -> dict:
    """What open_object says about ``path``, as plain data (or the error it raises)."""
    try:
        spec = bpft_load.open_object(str(path))
    except bpft_load.OpenError as e:
        return {"error": str(e), "step": e.step}
    ext = spec.btf_ext
    return {
        "license": spec.license,
        "kern_version": spec.kern_version,
        "functions": [
            {
                "name": p.name,
                "section": p.section,
                "subprogram": p.is_sub,
                "prog_type": _type(prog_type_name(p.prog_type), p.prog_type),
                "attach_type": _type(attach_type_name(p.attach_type), p.attach_type) if p.attach_type else None,
                "insns": len(p.insns) // 8,
                "insns_sha256": hashlib.sha256(bytes(p.insns)).hexdigest()[:16],
                "relocations": [_relocation(spec, r) for r in p.relos],
            }
            for p in spec.functions
        ],
        "maps": [_map(m) for m in spec.map_list],
        "externs": [
            {
                "name": e.name,
                "kind": str(e.kind),
                "weak": e.weak,
                "func": e.is_func,
                "offset": e.data_off,
                "size": e.size,
            }
            for e in spec.externs
        ],
        "btf": None if spec.btf is None else {"types": spec.btf.count()},
        "btf_ext": None
        if ext is None
        else {
            kind: {sec: len(recs) for sec, recs in sorted(getattr(ext, kind).by_sec.items())}
            for kind in ("func_info", "line_info", "core_relo")
        },
    }


def _check(path: Path, golden: Path, extra: dict | None = None) -> None:
    got = {**(extra or {}), **summarize(path)}
    text = json.dumps(got, indent=1, sort_keys=False) + "\n"
    if UPDATE:
        golden.write_text(text)
    if not golden.exists():
        pytest.fail(f"no golden file {golden.name}: run with BPFT_UPDATE_GOLDEN=1")
    assert text == golden.read_text()


@pytest.mark.parametrize("path", TEST_OBJECTS, ids=lambda p: p.name)
def test_open_matches_golden(path: Path):
    _check(path, GOLDEN / f"{path.name}.json")


LIBXDP_GOLDEN = sorted(GOLDEN.glob("libxdp1_*.json"))


@pytest.mark.parametrize("golden", LIBXDP_GOLDEN, ids=lambda p: p.stem)
def test_libxdp_open_matches_golden(golden: Path, libxdp_dir: Path):  # noqa: F811 - the fixture
    name = golden.stem.removeprefix("libxdp1_")
    found = sorted(libxdp_dir.rglob(name))
    if not found:
        pytest.skip(f"{name} is not in this libxdp1")
    digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
    want = json.loads(golden.read_text()).get("sha256")
    if want != digest and not UPDATE:
        pytest.skip(f"{name}: another build of libxdp1 than the golden's")
    _check(found[0], golden, {"sha256": digest})


def test_golden_files_are_kernel_free():
    """Opening reads only the file: the goldens hold no kernel BTF ids or addresses. A
    guard: a summary made with the open phase's kernel modules unimportable is the same."""
    code = (
        "import sys, json\n"
        "sys.modules['bpft.kernel.syscall'] = None\n"
        "sys.modules['bpft_load.vmlinux'] = None\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "import test_golden\n"
        f"print(json.dumps(test_golden.summarize(__import__('pathlib').Path({str(BPF_DIR / 'load_kernel.o')!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == summarize(BPF_DIR / "load_kernel.o")
