"""CO-RE relocation engine: bpft's results against libbpf's on the same objects.

The reference is libbpf itself, through bpftool: ``bpftool -d prog loadall``
prints libbpf's debug lines for every relocation (the local spec, each
candidate, the patched value or the poisoning). We run our engine over the same
object with the same logging and compare line for line; then we load our
relocated instructions into the kernel and compare the kernel's translated
program with the one bpftool loaded, instruction for instruction.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import struct
from pathlib import Path

import pytest
from bpft.btf import Btf
from conftest import BPF_DIR, run_bpftool

corerelo = pytest.importorskip("bpft_load.corerelo")
vmlinux = pytest.importorskip("bpft_load.vmlinux")
elffile = pytest.importorskip("elftools.elf.elffile")

CORE_OBJECTS = ["core_fields.o", "core_kinds.o", "core_btf.o"]
_RELO_LINE = re.compile(r"^libbpf: ((?:prog '[^']*': relo #\d+: .*)|(?:CO-RE relocating .*))$")


# --- reading the object (the loader's job; kept minimal here) -----------------------


class Obj:
    def __init__(self, path: Path):
        self.path = path
        with open(path, "rb") as f:
            elf = elffile.ELFFile(f)
            self.sections = {s.name: s.data() for s in elf.iter_sections() if s.header.sh_type != "SHT_NOBITS"}
            self.ext_offset = elf.get_section_by_name(".BTF.ext").header.sh_offset
            self.progs: dict[str, str] = {}
            sym = elf.get_section_by_name(".symtab")
            for s in sym.iter_symbols():
                if s.entry.st_info.type == "STT_FUNC" and s.entry.st_info.bind == "STB_GLOBAL":
                    self.progs[elf.get_section(s.entry.st_shndx).name] = s.name
        self.btf = Btf(self.sections[".BTF"])
        self.relos = corerelo.parse_core_relos(self.sections[".BTF.ext"], self.btf)


def relocate(obj: Obj, target) -> tuple[list[str], dict[str, bytearray]]:
    """Our debug lines and relocated instructions, per program (one per section)."""
    lines: list[str] = []
    insns = {}
    for sec, relos in obj.relos.items():
        name = obj.progs[sec]
        buf = bytearray(obj.sections[sec])
        corerelo.apply_core_relos(buf, relos, obj.btf, target, prog_name=name, log=lines.append, warn=lines.append)
        insns[name] = buf
    return lines, insns


def libbpf_lines(obj_path: Path, pin_dir: Path) -> list[str]:
    proc = run_bpftool("-d", "prog", "loadall", str(obj_path), str(pin_dir))
    assert proc.returncode == 0, proc.stderr_text[-3000:]
    out = []
    for line in proc.stderr_text.splitlines():
        m = _RELO_LINE.match(line)
        if m:
            out.append(m.group(1))
    return in_current_poison_order(out)


_POISON_LINE = re.compile(r"(prog '.*': relo #\d+: )substituting insn #(\d+) w/ invalid insn$")


def in_current_poison_order(lines: list[str]) -> list[str]:
    """``lines`` with each ld_imm64's two poison lines in today's Debian bpftool order.

    Debian's bpftool 7.1 builds before 7.1.0+6.1.190 log the second half of a poisoned
    ld_imm64 first (``#N+1`` then ``#N``); later ones, like bpft, the first half first.
    Whichever build is installed, the test then holds bpft to the current order.
    """
    out = list(lines)
    for i in range(len(out) - 1):
        a, b = _POISON_LINE.match(out[i]), _POISON_LINE.match(out[i + 1])
        if a and b and a.group(1) == b.group(1) and int(a.group(2)) == int(b.group(2)) + 1:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def test_poison_order_normalised():
    old = ["prog 'p': relo #6: substituting insn #19 w/ invalid insn", "prog 'p': relo #6: substituting insn #18 w/ invalid insn"]
    assert in_current_poison_order(old) == old[::-1]
    assert in_current_poison_order(old[::-1]) == old[::-1]


# --- unit tests (no kernel) ----------------------------------------------------------


@pytest.mark.parametrize(
    "name, ess",
    [
        ("task_struct", "task_struct"),
        ("task_struct___old", "task_struct"),
        ("a___b___c", "a___b"),
        ("___GFP_DMA_BIT", "___GFP_DMA_BIT"),
        ("foo____bar", "foo____bar"),
        ("foo___", "foo___"),
        ("x___y", "x"),
    ],
)
def test_essential_name(name, ess):
    assert corerelo.essential_name(name) == ess


def test_parse_core_relos_reads_every_record():
    obj = Obj(BPF_DIR / "core_fields.o")
    assert set(obj.relos) == {"kprobe/offsets", "kprobe/sizes", "kprobe/exists", "kprobe/bitfields", "kprobe/nested"}
    for sec, relos in obj.relos.items():
        assert relos, sec
        for r in relos:
            assert r.insn_off % 8 == 0 and r.insn_off < len(obj.sections[sec])
            assert obj.btf.type(r.type_id).name_off
            assert re.fullmatch(r"\d+(:\d+)*", r.access_str)


def test_parse_core_relos_malformed_never_crashes():
    obj = Obj(BPF_DIR / "core_fields.o")
    ext = obj.sections[".BTF.ext"]
    for cut in range(0, len(ext), 7):
        try:
            corerelo.parse_core_relos(ext[:cut], obj.btf)
        except corerelo.CoreReloError:
            pass
    with pytest.raises(corerelo.CoreReloError):
        corerelo.parse_core_relos(b"\x00\x01" + ext[2:], obj.btf)
    flipped = bytearray(ext)
    for pos in range(32, len(flipped), 5):
        flipped[pos] ^= 0xFF
        try:
            corerelo.parse_core_relos(bytes(flipped), obj.btf)
        except corerelo.CoreReloError:
            pass
        flipped[pos] ^= 0xFF


def _self_target(obj: Obj):
    """The object's own BTF as target: every local type is its own candidate."""
    return corerelo.TargetBtf(obj.btf)


@pytest.mark.parametrize(
    "relo, message",
    [
        (corerelo.CoreRelo(0, 99999, "0:1", corerelo.FIELD_BYTE_OFFSET), "failed to relocate"),
        (corerelo.CoreRelo(0, None, "0:1", corerelo.FIELD_BYTE_OFFSET), "relo #0"),
        (corerelo.CoreRelo(3, 5, "0:1", corerelo.FIELD_BYTE_OFFSET), "out of range"),
        (corerelo.CoreRelo(1 << 20, 5, "0:1", corerelo.FIELD_BYTE_OFFSET), "out of range"),
        (corerelo.CoreRelo(0, 5, "0:x", corerelo.FIELD_BYTE_OFFSET), "failed to relocate"),
        (corerelo.CoreRelo(0, 5, ":1", corerelo.FIELD_BYTE_OFFSET), "failed to relocate"),
        (corerelo.CoreRelo(0, 5, "", corerelo.FIELD_BYTE_OFFSET), "failed to relocate"),
        (corerelo.CoreRelo(0, 5, "0:9999", corerelo.FIELD_BYTE_OFFSET), "failed to relocate"),
        (corerelo.CoreRelo(0, 5, "0:-1", corerelo.FIELD_BYTE_OFFSET), "failed to relocate"),
        (corerelo.CoreRelo(0, 5, "1", corerelo.TYPE_EXISTS), "failed to relocate"),
        (corerelo.CoreRelo(0, 5, "0", 77), "failed to relocate"),
        (corerelo.CoreRelo(-8, 5, "0", corerelo.TYPE_EXISTS), "failed to patch"),  # the exit insn
    ],
)
def test_malformed_relocations_are_errors(relo, message):
    obj = Obj(BPF_DIR / "core_fields.o")
    insns = bytearray(obj.sections["kprobe/offsets"])
    if relo.insn_off == -8:
        relo = relo._replace(insn_off=len(insns) - 8)
        assert insns[-8] == 0x95
    assert obj.btf.name(obj.btf.type(5).name_off) == "task_struct"
    with pytest.raises(corerelo.CoreReloError, match=message):
        corerelo.apply_core_relos(insns, [relo], obj.btf, _self_target(obj), prog_name="offsets")


def test_ambiguous_candidates_fail_as_in_libbpf():
    """Two target flavors that put the field at different offsets: libbpf refuses."""
    obj = Obj(BPF_DIR / "core_ambig.o")
    sec = "kprobe/ambig"
    warns: list[str] = []
    with pytest.raises(corerelo.CoreReloError, match="failed to relocate: -22"):
        corerelo.apply_core_relos(
            bytearray(obj.sections[sec]),
            obj.relos[sec],
            obj.btf,
            _self_target(obj),
            prog_name="ambig",
            warn=warns.append,
        )
    assert any("field offset ambiguity" in w for w in warns), warns


# --- against libbpf and the kernel ---------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("name", CORE_OBJECTS)
def test_debug_lines_match_libbpf(name, bpffs_dir):
    obj = Obj(BPF_DIR / name)
    expected = libbpf_lines(BPF_DIR / name, bpffs_dir / "p")
    got, _ = relocate(obj, corerelo.kernel_target())
    assert expected, "bpftool printed no relocation lines"
    assert got == expected


def _with_kind(src: Path, dst: Path, old: int, new: int) -> int:
    """Copy an object, turning its CO-RE records of kind ``old`` into ``new``."""
    obj = Obj(src)
    data = bytearray(src.read_bytes())
    ext = obj.sections[".BTF.ext"]
    hdr_len = struct.unpack_from("<I", ext, 4)[0]
    off, length = struct.unpack_from("<II", ext, 24)
    pos, end = hdr_len + off + 4, hdr_len + off + length
    rec_size = struct.unpack_from("<I", ext, hdr_len + off)[0]
    changed = 0
    while pos < end:
        _, num = struct.unpack_from("<II", ext, pos)
        pos += 8
        for _ in range(num):
            if struct.unpack_from("<I", ext, pos + 12)[0] == old:
                struct.pack_into("<I", data, obj.ext_offset + pos + 12, new)
                changed += 1
            pos += rec_size
    dst.write_bytes(bytes(data))
    return changed


@pytest.mark.parity
def test_type_matches_matches_libbpf(bpffs_dir, tmp_path):
    """clang 14 cannot emit TYPE_MATCHES; turn the TYPE_EXISTS records into it."""
    path = tmp_path / "core_matches.o"
    assert _with_kind(BPF_DIR / "core_kinds.o", path, corerelo.TYPE_EXISTS, corerelo.TYPE_MATCHES) == 4
    expected = libbpf_lines(path, bpffs_dir / "p")
    got, _ = relocate(Obj(path), corerelo.kernel_target())
    assert any("<type_matches>" in line for line in expected)
    assert got == expected


def _load_ours(name: str, sec: str, insns: bytes) -> int:
    from bpft.kernel import syscall as sc

    if sec.startswith("kprobe/"):
        return sc.prog_load_simple(2, bytes(insns), name=name, log_size=1 << 20)
    assert sec.startswith("tp_btf/")
    target = corerelo.kernel_target()
    (tid,) = [i for i in target.candidates("btf_trace_" + sec.split("/", 1)[1]) if target.type(i).kind == 8]
    ins = ctypes.create_string_buffer(bytes(insns), len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = sc.ProgLoadAttr(
        prog_type=26,  # BPF_PROG_TYPE_TRACING
        insn_cnt=len(insns) // 8,
        insns=ctypes.addressof(ins),
        license=ctypes.addressof(lic),
        prog_name=name.encode()[:15],
        expected_attach_type=23,  # BPF_TRACE_RAW_TP
        attach_btf_id=tid,
    )
    return sc.prog_load(attr, log_size=1 << 20)


def _xlated(fd: int) -> bytes:
    from bpft.kernel import info

    base = info.prog_info(fd)
    return info.prog_arrays(fd, base, xlated=True).xlated


@pytest.mark.parity
@pytest.mark.parametrize("name", CORE_OBJECTS)
def test_kernel_sees_the_same_program(name, loaded):
    """Our relocated instructions, loaded, translate exactly as libbpf's do."""
    from bpft.kernel import syscall as sc

    pins = loaded(name)
    obj = Obj(BPF_DIR / name)
    _, insns = relocate(obj, corerelo.kernel_target())
    for sec, prog in obj.progs.items():
        if sec not in obj.relos:
            continue
        theirs = sc.obj_get(str(pins / prog))
        try:
            ours = _load_ours(prog, sec, insns[prog])
        except OSError as e:
            pytest.fail(f"{prog}: kernel refused our relocation: {e}\n{getattr(e, 'log', '')[-2000:]}")
        try:
            a, b = _xlated(ours), _xlated(theirs)
            assert a and len(a) == len(b)
            assert [a[i : i + 8] for i in range(0, len(a), 8)] == [b[i : i + 8] for i in range(0, len(b), 8)], prog
        finally:
            os.close(ours)
            os.close(theirs)


@pytest.mark.kernel
def test_kernel_index_agrees_with_full_parse():
    """The lazy vmlinux index decodes the same types as core's full parser."""
    from bpft import btf as core_btf

    k = vmlinux.kernel_btf()
    assert corerelo.kernel_target() is k
    full = core_btf.vmlinux()
    assert k.nr_types == len(full.types)
    step = max(1, len(full.types) // 5000)
    for tid in list(range(1, len(full.types) + 1, step)) + [len(full.types)]:
        assert k.type(tid) == full.type(tid), tid
    for name in ("task_struct", "sk_buff", "pid_t", "bpf_map_type", "perf_callchain_context"):
        want = [
            i
            for i, t in enumerate(full.types, 1)
            if t.name_off and corerelo.essential_name(full.name(t.name_off)) == name
        ]
        assert k.candidates(name) == want, name
        assert want


@pytest.mark.kernel
def test_kernel_index_without_cache(monkeypatch, tmp_path):
    """Scan and cache give the same answers; a stale or corrupt cache is ignored."""
    monkeypatch.setenv("BPFT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BPFT_NO_CACHE", raising=False)
    first = vmlinux.KernelBtf()
    assert first.index_source == "scan"
    second = vmlinux.KernelBtf()
    assert second.index_source == "cache"
    monkeypatch.setenv("BPFT_NO_CACHE", "1")
    bare = vmlinux.KernelBtf()
    assert bare.index_source == "scan"
    for name in ("task_struct", "cgroup", "pid_t", "nonexistent_struct_zz"):
        assert first.candidates(name) == second.candidates(name) == bare.candidates(name)
    monkeypatch.delenv("BPFT_NO_CACHE")
    idx = tmp_path / vmlinux.CACHE_NAME
    good = idx.read_bytes()
    data = bytearray(good)
    data[200:260] = b"\xff" * 60
    idx.write_bytes(bytes(data))
    third = vmlinux.KernelBtf()
    assert third.index_source == "scan"
    assert third.candidates("task_struct") == bare.candidates("task_struct")
    for cut in (0, 10, len(good) // 2, len(good) - 1):
        idx.write_bytes(good[:cut])
        assert vmlinux.KernelBtf().index_source == "scan", cut
        assert vmlinux.KernelBtf().index_source == "cache", cut
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.kernel
def test_kernel_index_never_reused_for_other_btf(monkeypatch, tmp_path):
    """The cache is keyed by the BTF file: a copy (or another kernel's BTF) rebuilds it."""
    monkeypatch.setenv("BPFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BPFT_NO_CACHE", raising=False)
    assert vmlinux.KernelBtf().index_source in ("scan", "cache")
    assert vmlinux.KernelBtf().index_source == "cache"
    # the same bytes elsewhere, then a different BTF of the same size and ends
    other = tmp_path / "vmlinux"
    data = bytearray(Path(vmlinux.VMLINUX).read_bytes())
    other.write_bytes(data)
    k = vmlinux.KernelBtf(str(other))
    assert k.index_source == "scan"
    assert vmlinux.KernelBtf(str(other)).index_source == "cache"
    ref = vmlinux.KernelBtf()
    assert ref.index_source == "scan"  # the copy's index was not taken for the kernel's
    # the file rewritten in place with a type renamed (same size, same first and last 64 KiB)
    tid = ref.find("task_struct", 4)
    pos = ref.ss + ref.type(tid).name_off
    assert data[pos : pos + 11] == b"task_struct"
    data[pos : pos + 11] = b"task_strucz"
    other.write_bytes(data)
    changed = vmlinux.KernelBtf(str(other))
    assert changed.index_source == "scan"
    assert changed.find("task_struct", 4) == 0
    assert changed.find("task_strucz", 4) == tid
    # the same file after a reboot (another kernel, or the same one again)
    assert vmlinux.KernelBtf().index_source == "scan"
    assert vmlinux.KernelBtf().index_source == "cache"
    monkeypatch.setattr(vmlinux, "_boot_id", lambda: b"0" * 36)
    assert vmlinux.KernelBtf().index_source == "scan"


@pytest.mark.kernel
def test_kernel_index_unusable_cache_dir(monkeypatch, tmp_path):
    """A cache dir that cannot be created, or a cache file someone else could have written, is not used."""
    monkeypatch.delenv("BPFT_NO_CACHE", raising=False)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("BPFT_CACHE_DIR", str(tmp_path / "file" / "sub"))
    k = vmlinux.KernelBtf()
    assert k.index_source == "scan"
    assert k._hash is None  # not built for nothing
    monkeypatch.setenv("BPFT_NO_CACHE", "1")
    bare = vmlinux.KernelBtf()
    for name in ("task_struct", "sk_buff", "nonexistent_struct_zz"):
        assert k.candidates(name) == bare.candidates(name)
    monkeypatch.delenv("BPFT_NO_CACHE")
    cdir = tmp_path / "c"
    monkeypatch.setenv("BPFT_CACHE_DIR", str(cdir))
    vmlinux.KernelBtf()
    idx = cdir / vmlinux.CACHE_NAME
    assert vmlinux.KernelBtf().index_source == "cache"
    idx.chmod(0o666)
    assert vmlinux.KernelBtf().index_source == "scan"  # group/world-writable: rewritten
    assert vmlinux.KernelBtf().index_source == "cache"
    os.chown(idx, 12345, 12345)
    assert vmlinux.KernelBtf().index_source == "scan"  # another user's file: replaced
    assert idx.stat().st_uid == os.geteuid()


@pytest.mark.kernel
def test_find_kernel_type():
    """Exact name and kind, the first id as libbpf's btf__find_by_name_kind, flavored names too."""
    from bpft import btf as core_btf

    full = core_btf.vmlinux()
    first: dict = {}
    for i, t in enumerate(full.types, 1):
        if t.name_off:
            first.setdefault((full.name(t.name_off), t.kind), i)
    k = vmlinux.kernel_btf()
    flavored = [key for key in first if "___" in key[0]]
    step = max(1, len(first) // 3000)
    for key in list(first)[::step] + flavored:
        assert k.find(*key) == first[key], key
        assert vmlinux.find_kernel_type(*key) == first[key], key
    for name, kind in (("task_struct", core_btf.FUNC), ("nonexistent_zz", core_btf.FUNC), ("", core_btf.INT)):
        assert vmlinux.find_kernel_type(name, kind) == 0


@pytest.mark.kernel
@pytest.mark.parametrize("name", CORE_OBJECTS + ["core_ambig.o"])
def test_cold_and_uncached_index_relocate_alike(name, monkeypatch, tmp_path):
    """The first load after boot (index scanned and written), a load without any cache and a
    load from the cache relocate every object to the same instructions and messages."""
    obj = Obj(BPF_DIR / name)
    monkeypatch.delenv("BPFT_NO_CACHE", raising=False)
    monkeypatch.setenv("BPFT_CACHE_DIR", str(tmp_path))
    results = []
    for expect in ("scan", "cache", "nocache"):
        if expect == "nocache":
            monkeypatch.setenv("BPFT_NO_CACHE", "1")
        target = vmlinux.KernelBtf()
        assert target.index_source == ("scan" if expect == "nocache" else expect)
        try:
            results.append(relocate(obj, target))
        except corerelo.CoreReloError as e:
            results.append(str(e))
    assert results[0] == results[1] == results[2]
