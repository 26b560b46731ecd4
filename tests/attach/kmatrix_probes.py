"""kprobe, kretprobe, fentry, fexit and their autoattach, in one process, for a kernel-matrix
guest (where spawning a bpft per step would cost minutes under TCG)::

    /work/shared/kmatrix/run-on-kernel.sh 6.12 -- .venv/bin/python tests/attach/kmatrix_probes.py

Each step runs ``bpft`` in-process (``bpft.cli.main``), makes the attached program run, and
prints what it saw; the exit status is the number of failed checks. Every pin goes under
/sys/fs/bpf/bpft_kmatrix and is removed at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

from bpft.cli import main

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from attach_helpers import count  # noqa: E402

BPF_DIR = Path(__file__).resolve().parent.parent / "bpf"
ROOT = Path("/sys/fs/bpf/bpft_kmatrix")
failures = 0


def bpft(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def check(what: str, ok: bool, detail: str = "") -> None:
    global failures
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)


def opens(n: int = 5) -> None:
    for _ in range(n):
        os.close(os.open("/dev/null", os.O_RDONLY))


def attached(pin: Path) -> list:
    rc, out, _ = bpft("-j", "--detail", "prog", "show", "pinned", str(pin))
    return json.loads(out)["attached"] if rc == 0 else []


KERNEL = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
PERF_LINKS = KERNEL >= (5, 15)  # BPF_LINK_CREATE with BPF_PERF_EVENT
PERF_LINK_INFO = KERNEL >= (6, 6)  # a perf-event link's info names its event
OLD_PERF_TEXT = "perf_event (this kernel does not say which event: before 6.6)"


def one(prog: Path, words: list[str], slot: int, target: str) -> None:
    link = ROOT / f"{prog.name}_link"
    rc, out, err = bpft("prog", "attach", "pinned", str(prog), *words, "link", str(link))
    if words[0] != "tracing" and not PERF_LINKS:
        refused = rc != 0 and "kernels before 5.15 have none" in err and not link.exists()
        check(f"{words[0]} refused without perf-event links", refused, err.strip())
        return
    check(f"attach {' '.join(words)}", rc == 0 and link.exists(), err.strip())
    if rc:
        return
    if words[0] != "tracing" and not PERF_LINK_INFO:
        target = OLD_PERF_TEXT
    before = count(prog, slot)
    opens()
    after = count(prog, slot)
    check(f"{words[0]} runs", after >= before + 5, f"count {before} -> {after}")
    places = attached(prog)
    targets = [p["target"] for p in places]
    if words[0] == "tracing" and KERNEL < (6, 0) and targets and "does not say" in targets[0]:
        target = targets[0]  # the link info of older kernels has no target function
    check(f"{words[0]} --detail", targets == [target], json.dumps(places))
    rc, _, err = bpft("prog", "detach", "pinned", str(prog), *words)
    check(f"detach {words[0]}", rc == 0 and not link.exists() and attached(prog) == [], err.strip())


def main_script() -> int:
    print(f"kernel {os.uname().release}", flush=True)
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir()
    try:
        rc, _, err = bpft("prog", "loadall", str(BPF_DIR / "attach_probes.o"), str(ROOT / "probes"))
        check("load attach_probes.o", rc == 0, err.strip())
        if rc == 0:
            one(ROOT / "probes/probe_kprobe", ["kprobe", "do_sys_openat2"], 0, "kprobe do_sys_openat2")
            one(ROOT / "probes/probe_kretprobe", ["kretprobe", "do_sys_openat2"], 1, "kretprobe do_sys_openat2")
            rc, _, err = bpft("prog", "attach", "pinned", str(ROOT / "probes/probe_kprobe"), "kprobe", "no_such_fn_bpft")
            check("kprobe on a missing function is refused", rc != 0 and "no_such_fn_bpft" in err, err.strip())
        rc, _, err = bpft("prog", "loadall", str(BPF_DIR / "attach_fentry.o"), str(ROOT / "fentry"))
        check("load attach_fentry.o", rc == 0, err.strip().splitlines()[-1] if err.strip() else "")
        if rc == 0:
            one(ROOT / "fentry/fentry_open", ["tracing"], 0, "trace_fentry do_sys_openat2")
            one(ROOT / "fentry/fexit_open", ["tracing"], 1, "trace_fexit do_sys_openat2")
        # autoattach: the kretprobe's link must be pinned and fire (bpftool#160)
        auto = ROOT / "auto"
        rc, _, err = bpft("prog", "loadall", str(BPF_DIR / "attach_probes.o"), str(auto), "autoattach")
        names = sorted(p.name for p in auto.iterdir()) if auto.exists() else []
        if not PERF_LINKS:  # all or nothing: the kretprobe is not left with an unpinnable attachment
            check("autoattach refused, nothing left", rc != 0 and names == [], f"{names} {err.strip()}")
        else:
            check("autoattach attach_probes.o", rc == 0 and "probe_kretprobe_link" in names, f"{names} {err.strip()}")
        if rc == 0:
            before = [count(auto / "probe_kprobe", 0), count(auto / "probe_kretprobe", 1)]
            opens()
            after = [count(auto / "probe_kprobe", 0), count(auto / "probe_kretprobe", 1)]
            check("autoattached kprobe and kretprobe run", all(a >= b + 5 for a, b in zip(after, before)), f"{before} -> {after}")
            _, out, _ = bpft("link", "show", "pinned", str(auto / "probe_kretprobe_link"))
            print(out, end="", flush=True)
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
    print(f"{failures} failed", flush=True)
    return failures


if __name__ == "__main__":
    sys.exit(main_script())
