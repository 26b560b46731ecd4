#!/usr/bin/env bash
# Install bpft: the core and every plugin in plugins/ (editable, from this checkout).
#   scripts/setup.sh          bpft itself
#   scripts/setup.sh --test   plus what the test suite needs: pytest, hypothesis,
#                             bpftool (parity tests), clang (BTF tests), setpriv
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}

args=(-e "$root/core")
for plugin in "$root"/plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && args+=(-e "$plugin")
done
"$py" -m pip install -q --disable-pip-version-check "${args[@]}"
# editable installs are not byte-compiled by pip; compile once so start-up does
# not recompile every module on every run (PYTHONDONTWRITEBYTECODE is common)
"$py" -m compileall -q "$root/core/src" "$root"/plugins/*/src >/dev/null

if [ "${1:-}" = "--test" ]; then
  # the example third-party plugin is installed too: its tests use it as a user would
  "$py" -m pip install -q --disable-pip-version-check pytest hypothesis pyelftools "$root/examples/bpft-count"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    need=()
    command -v bpftool >/dev/null || need+=(bpftool)
    command -v clang >/dev/null || need+=(clang)
    command -v llvm-objcopy >/dev/null || need+=(llvm)
    command -v objdump >/dev/null || need+=(binutils)  # dump jited tests compare with objdump
    command -v setpriv >/dev/null || need+=(util-linux)
    [ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
    if [ ${#need[@]} -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
  fi
fi
