#!/usr/bin/env bash
# Install bpft into a virtual environment of its own and put `bpft` on PATH.
#
#   bash scripts/setup.sh          bpft: the core and every plugin in plugins/, editable
#                                  from this checkout, in $BPFT_VENV (default: .venv in
#                                  this checkout), linked as /usr/local/bin/bpft
#   bash scripts/setup.sh --test   plus what the test suite needs, in the same venv
#                                  (pytest, hypothesis, pyelftools, mypy, virtme-ng, the
#                                  example plugin) and on the machine (bpftool, clang,
#                                  objdump, QEMU for the kernel matrix, ...)
#
# A venv keeps a distribution's own Python untouched: Debian 12 and Ubuntu 23.04+ mark
# theirs externally managed (PEP 668), so `pip install` into it is refused. Running this
# again upgrades in place. To remove everything: `rm -rf .venv /usr/local/bin/bpft`.
#
# Environment: PYTHON=/path/to/python3 picks the interpreter (3.11 or newer; default: the
# first of python3, python3.13, python3.12, python3.11 on PATH that is new enough),
# BPFT_VENV=DIR the venv, BPFT_BIN_DIR=DIR where the `bpft` link goes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${BPFT_VENV:-$root/.venv}
want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() { [ "$(id -u)" = 0 ]; }
apt_install() {  # apt_install PKG...: Debian/Ubuntu packages, as root only
  as_root && command -v apt-get >/dev/null || return 1
  if [ -z "${_apt_updated:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- the interpreter: 3.11 or newer ---------------------------------------------------------
new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  py=$PYTHON
  new_enough "$py" || { say "PYTHON=$py is not Python 3.11 or newer"; exit 1; }
else
  py=
  for cand in python3 python3.13 python3.12 python3.11; do
    if command -v "$cand" >/dev/null && new_enough "$cand"; then py=$(command -v "$cand"); break; fi
  done
  [ -n "$py" ] || { say "no Python 3.11 or newer on PATH (set PYTHON=/path/to/python3)"; exit 1; }
fi

# --- the venv ----------------------------------------------------------------------------------
# a venv whose interpreter is gone (the Python it was made with was removed) is made anew
if [ -e "$venv/bin/python" ] && ! "$venv/bin/python" -c pass 2>/dev/null; then
  say "the venv at $venv no longer runs: making it anew"
  rm -rf "$venv"
fi
if [ ! -e "$venv/bin/python" ]; then
  if ! "$py" -m venv "$venv" 2>/dev/null; then
    # Debian and Ubuntu ship venv's ensurepip separately (python3-venv)
    rm -rf "$venv"
    ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    apt_install "python$ver-venv" || apt_install python3-venv || {
      say "$py cannot make a venv: install your distribution's venv package (python3-venv)"; exit 1; }
    "$py" -m venv "$venv"
  fi
  say "made a venv at $venv with $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])')"
fi
vpy=$venv/bin/python
pip=("$vpy" -m pip install -q --disable-pip-version-check --upgrade)

args=(-e "$root/core")
for plugin in "$root"/plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && args+=(-e "$plugin")
done
"${pip[@]}" "${args[@]}"
# editable installs are not byte-compiled by pip; compile once so start-up does
# not recompile every module on every run (PYTHONDONTWRITEBYTECODE is common)
"$vpy" -m compileall -q "$root/core/src" "$root"/plugins/*/src >/dev/null

# --- `bpft` on PATH ----------------------------------------------------------------------------
if [ -n "${BPFT_BIN_DIR:-}" ]; then
  bin_dir=$BPFT_BIN_DIR
elif as_root; then
  bin_dir=/usr/local/bin   # on root's PATH, and on sudo's secure_path
else
  bin_dir=$HOME/.local/bin
fi
mkdir -p "$bin_dir"
ln -sfn "$venv/bin/bpft" "$bin_dir/bpft"
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) say "$bin_dir is not on PATH: add it, or run $venv/bin/bpft" ;;
esac

# --- test tools ------------------------------------------------------------------------------
if [ "$want_test" = 1 ]; then
  # the example third-party plugin is installed too (not editable, as a user would):
  # its tests run it through the installed `bpft`
  "${pip[@]}" pytest hypothesis pyelftools mypy typer virtme-ng "$root/examples/bpft-count"
  need=()
  command -v bpftool >/dev/null || need+=(bpftool)
  command -v clang >/dev/null || need+=(clang)
  command -v llvm-objcopy >/dev/null || need+=(llvm)
  command -v objdump >/dev/null || need+=(binutils)  # dump jited tests compare with objdump
  command -v setpriv >/dev/null || need+=(util-linux)
  command -v ip >/dev/null || need+=(iproute2)       # attach tests: veth pairs in netns
  command -v tmux >/dev/null || need+=(tmux)         # top's interactive view, completion
  [ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
  [ -f /usr/include/dlfcn.h ] || need+=(libc6-dev)  # -L tests build an LD_PRELOAD shim for bpftool
  # the kernel matrix boots Debian kernels under QEMU with virtme-ng
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  [ -x /bin/busybox ] || need+=(busybox-static)
  command -v depmod >/dev/null || need+=(kmod)
  command -v udevadm >/dev/null || need+=(udev)
  if [ ${#need[@]} -gt 0 ]; then
    apt_install "${need[@]}" || say "could not install ${need[*]} (needs root and apt-get): tests that need them skip"
  fi
fi
say "done: $(command -v bpft || echo "$bin_dir/bpft") -> $venv/bin/bpft"
