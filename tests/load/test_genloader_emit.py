"""The loader program's shape, without a kernel: what holds for every generated loader
(byte equality with bpftool's is test_use_loader.py's, which needs the kernel)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from bpft import insn as I
from bpft_load.elfopen import open_object
from bpft_load.errors import LoadError
from bpft_load.genloader import generate_loader
from bpft_load.genloader.emitter import LoaderEmitter
from bpft_load.genloader.layout import MAX_FD_ARRAY_SZ, Reg
from bpft_load.log import Log

BPF_DIR = Path(__file__).resolve().parents[1] / "bpf"
PROLOGUE = 6  # save ctx, zero the stack (5), then the jump over the cleanup code
CLEANUP = PROLOGUE + 1


def _loaders():
    for path in sorted(BPF_DIR.glob("*.o")):
        try:
            yield path.name, generate_loader(open_object(str(path), log=Log()), Log())
        except LoadError:
            continue


LOADERS = dict(_loaders())


def test_most_objects_generate():
    assert len(LOADERS) >= 20


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_jumps_land_inside_and_errors_reach_cleanup(name):
    loader = LOADERS[name]
    insns = I.decode_all(loader.insns)
    n = len(insns)
    assert insns[-1] == I.exit_insn()[0] and insns[-2] == I.mov64_imm(0, 0)[0]  # return 0
    skip = insns[PROLOGUE]
    assert skip.code == I.BPF_JMP | I.BPF_JA
    cleanup_end = PROLOGUE + skip.off  # the cleanup code's exit, just before the first step
    assert insns[cleanup_end] == I.exit_insn()[0] and insns[cleanup_end - 1] == I.mov64_reg(0, Reg.RESULT)[0]
    i = 0
    while i < n:
        x = insns[i]
        if x.is_ld_imm64:
            if x.src_reg == I.BPF_PSEUDO_MAP_IDX_VALUE:
                assert x.imm == 0 and 0 <= insns[i + 1].imm < len(loader.data), (name, i)
            i += 2
            continue
        if x.cls == I.BPF_JMP and x.code & 0xF0 not in (I.BPF_CALL, I.BPF_EXIT):
            assert 0 <= i + 1 + x.off < n, (name, i)
            if x.code == I.BPF_JMP | I.BPF_JSLT | I.BPF_K and x.dst_reg == Reg.RESULT:
                assert i + 1 + x.off == CLEANUP, (name, i)  # a failed step closes everything
        i += 1


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_blob_starts_with_an_empty_fd_array(name):
    data = LOADERS[name].data
    assert data[: MAX_FD_ARRAY_SZ * 4] == bytes(MAX_FD_ARRAY_SZ * 4)
    assert len(data) % 8 == 0


def test_a_cleanup_out_of_jump_range_is_an_error():
    gen = LoaderEmitter(Log())
    gen.init(1, 0)
    gen._emit(I.mov64_imm(0, 0) * 40000)
    gen._check_err()
    assert gen.error == -errno.ERANGE
    assert I.decode(gen.insns, len(gen.insns) - 8) == I.ja(-1)[0]


def test_finish_checks_what_was_emitted():
    lines = []
    gen = LoaderEmitter(Log(True, lambda level, text: lines.append(text)))
    gen.init(1, 1)
    assert gen.finish(1, 1) == -errno.EFAULT  # one map announced, none created
    assert lines == ["nr_progs 1/0 nr_maps 1/0 mismatch"]
