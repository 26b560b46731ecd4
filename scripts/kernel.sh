#!/usr/bin/env bash
# The kernel matrix: fetch Debian kernels and run commands inside them.
#
#   scripts/kernel.sh fetch [SERIES...|all] download and unpack the newest kernel of each
#                                           series (default: all of $SERIES_ALL) into the cache
#   scripts/kernel.sh list                  the kernels in the cache, one release a line
#   scripts/kernel.sh SERIES -- CMD [ARG...]
#                                           boot that kernel (virtme-ng, this machine's root
#                                           filesystem shared read-only), mount bpffs, run
#                                           CMD as root in the current directory; exit with
#                                           CMD's status
#
# SERIES is 5.10, 6.1, 6.12, 6.18 or 7.2 (or a full release from `list`).
#
# Environment:
#   BPFT_KERNELS   the cache (default ${XDG_CACHE_HOME:-~/.cache}/bpft/kernels); each kernel in
#                  BPFT_KERNELS/RELEASE/{vmlinuz,config,lib/modules/RELEASE}, apt state in .apt,
#                  libxdp1's objects in objects/libxdp1 (BPFT_LIBXDP_DIR in the guest)
#   BPFT_VNG       the vng command (default: vng on PATH, else the one beside $PYTHON)
#   KMATRIX_ACCEL  kvm | tcg | auto (default: kvm where /dev/kvm is ordinary KVM, tcg on a
#                  PVM host, where stock kernels do not boot under KVM)
#   KMATRIX_CPUS (1), KMATRIX_MEM (1G), KMATRIX_TIMEOUT (seconds, 1800)
#   KMATRIX_RW     a directory the guest may write (kept); the rest of the guest's writes are
#                  thrown away with it
#   KMATRIX_VERBOSE=1  the guest kernel's console on stderr
#
# Host packages: qemu-system-x86 busybox-static kmod udev (apt) and virtme-ng (pip).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${BPFT_KERNELS:-${XDG_CACHE_HOME:-$HOME/.cache}/bpft/kernels}
SERIES_ALL=(5.10 6.1 6.12 6.18 7.2)

die() { echo "kernel.sh: $*" >&2; exit 2; }

# --- fetch --------------------------------------------------------------------------------

apt_opts() {
  local st=$cache/.apt
  echo -o "Dir::Etc::sourcelist=$st/sources.list" -o Dir::Etc::sourceparts=- \
    -o "Dir::State::Lists=$st/lists" -o "Dir::Cache=$st/cache" -o "Dir::State::status=$st/status" -o APT::Sandbox::User=root
}

apt_init() {
  # a private apt state: the machine's own sources, lists and status stay untouched
  local st=$cache/.apt key='[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]'
  mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$st/debs"
  : >>"$st/status"
  {
    for s in bullseye bookworm trixie trixie-backports sid; do
      echo "deb $key http://deb.debian.org/debian $s main"
    done
    for s in bullseye-security bookworm-security trixie-security; do
      echo "deb $key http://deb.debian.org/debian-security $s main"
    done
  } >"$st/sources.list"
  # refresh lists older than a day: versions move, and old .debs leave the archive
  if [ -z "$(find "$st/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    # shellcheck disable=SC2046
    apt-get $(apt_opts) -qq update
  fi
}

# The packages of the newest kernel of SERIES the archive offers (generic amd64 flavour;
# the -cloud- one has no 9p and cannot mount the root).
packages_for() {
  local series=$1 re names best
  local s=${series//./\\.}
  # 5.10 and 6.1: linux-image-5.10.0-N-amd64-unsigned; 6.12/6.18: linux-image-6.12.N+deb13-amd64
  # [-unsigned]; 7.x: the image split into linux-binary-, linux-modules- and linux-base-
  re="^(linux-image-${s}(\\.0-[0-9]+|\\.[0-9]+\\+deb[0-9]+)-amd64(-unsigned)?|linux-binary-${s}\\.[0-9]+\\+deb[0-9]+-amd64)\$"
  # shellcheck disable=SC2046
  names=$(apt-cache $(apt_opts) search --names-only "$re" | awk '{print $1}')
  [ -n "$names" ] || die "no kernel of series $series in the archive"
  # newest release; for one release prefer -unsigned (the same image, no signing shim deps)
  best=$(echo "$names" | sed -E 's/^linux-(image|binary)-//; s/-amd64(-unsigned)?$//' | sort -uV | tail -1)
  if echo "$names" | grep -qx "linux-binary-$best-amd64"; then
    echo "linux-binary-$best-amd64 linux-modules-$best-amd64 linux-base-$best-amd64"
  elif echo "$names" | grep -qx "linux-image-$best-amd64-unsigned"; then
    echo "linux-image-$best-amd64-unsigned"
  else
    echo "linux-image-$best-amd64"
  fi
}

unpack() {  # unpack the .debs of one kernel into the cache and build modules.dep
  local tmp=$1 m rel d
  for m in "$tmp"/lib/modules/* "$tmp"/usr/lib/modules/*; do
    [ -d "$m" ] || continue
    rel=$(basename "$m"); d=$cache/$rel
    rm -rf "${d:?}.new"; mkdir -p "$d.new/lib/modules"
    mv "$m" "$d.new/lib/modules/$rel"
    for f in vmlinuz config System.map; do
      if [ -e "$tmp/boot/$f-$rel" ]; then cp "$tmp/boot/$f-$rel" "$d.new/$f"
      elif [ -e "$d.new/lib/modules/$rel/$f" ]; then cp "$d.new/lib/modules/$rel/$f" "$d.new/$f"; fi
    done
    [ -f "$d.new/vmlinuz" ] || die "$rel: no vmlinuz in its packages"
    # the .debs ship no modules.dep (the package's postinst makes it)
    local map=(); [ -f "$d.new/System.map" ] && map=(-F "$d.new/System.map")
    depmod -b "$d.new" "${map[@]}" "$rel"
    rm -rf "$d"; mv "$d.new" "$d"
    echo "ready: $rel ($cache/$rel)"
  done
}

fetch() {
  local series pkgs tmp p deb
  [ $# -gt 0 ] && [ "$*" != all ] || set -- "${SERIES_ALL[@]}"
  command -v apt-get >/dev/null || die "fetch needs apt-get (Debian or Ubuntu)"
  command -v depmod >/dev/null || die "fetch needs depmod (package kmod)"
  apt_init
  for series in "$@"; do
    pkgs=$(packages_for "$series")
    # cached already? (the release is the package's version part)
    rel=$(echo "$pkgs" | awk '{print $1}' | sed -E 's/^linux-(image|binary)-//; s/-unsigned$//')
    if [ -f "$cache/$rel/vmlinuz" ] && [ -f "$cache/$rel/lib/modules/$rel/modules.dep" ]; then
      echo "cached: $rel"; continue
    fi
    echo "fetching $series: $pkgs"
    (cd "$cache/.apt/debs" && apt-get $(apt_opts) -qq download $pkgs)
    tmp=$(mktemp -d)
    for p in $pkgs; do
      deb=$(ls -t "$cache/.apt/debs/${p}"_*.deb | head -1)
      dpkg-deb -x "$deb" "$tmp"
      rm -f "$deb"  # the unpacked tree is what we keep
    done
    unpack "$tmp"; rm -rf "$tmp"
  done
  fetch_objects
}

fetch_objects() {  # real objects compiled by others, for the guests (which have no network)
  local d=$cache/objects/libxdp1 deb
  [ -d "$d" ] && return
  (cd "$cache/.apt/debs" && apt-get $(apt_opts) -qq download libxdp1) || { echo "no libxdp1: skipped" >&2; return 0; }
  deb=$(ls -t "$cache/.apt/debs"/libxdp1_*.deb | head -1)
  rm -rf "$d.new"; mkdir -p "$d.new"; dpkg-deb -x "$deb" "$d.new"; rm -f "$deb"; mv "$d.new" "$d"
  echo "ready: libxdp1's objects ($d)"
}

# --- run ----------------------------------------------------------------------------------

release_of() {  # a full release, or the one cached release of a series ("6.1" is not 6.12)
  local want=$1 d c=()
  if [ -f "$cache/$want/vmlinuz" ]; then echo "$want"; return; fi
  for d in "$cache/$want"*; do
    [ -f "$d/vmlinuz" ] || continue
    d=$(basename "$d")
    [[ ${d:${#want}:1} == [0-9] ]] && continue
    c+=("$d")
  done
  [ ${#c[@]} -gt 0 ] || die "kernel $want is not fetched: run scripts/kernel.sh fetch $want"
  printf '%s\n' "${c[@]}" | sort -V | tail -1
}

sq() { local a=${1//\'/\'\\\'\'}; printf "'%s'" "$a"; }  # POSIX single quotes

run() {
  local want=$1; shift
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "usage: kernel.sh SERIES -- CMD [ARG...]"
  local rel vng accel bl cmd script
  rel=$(release_of "$want")
  vng=${BPFT_VNG:-$(command -v vng || echo "$(dirname "$(command -v "${PYTHON:-python3}")")/vng")}
  [ -x "$vng" ] || vng=$root/.venv/bin/vng
  [ -x "$vng" ] || die "virtme-ng is not installed (pip install virtme-ng)"

  accel=${KMATRIX_ACCEL:-auto}
  if [ "$accel" = auto ]; then
    # kvm_pvm only runs PVM-patched guests ("failed to set MSR 0x10a" for a stock kernel)
    if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then accel=kvm; else accel=tcg; fi
  fi
  # keep udev's coldplug from loading drivers for the emulated hardware (5-10 s under TCG);
  # an explicit modprobe still works
  bl=ahci,libahci,sr_mod,cdrom,sg,iTCO_wdt,iTCO_vendor_support,lpc_ich,i2c_i801,i2c_smbus
  bl+=,pcspkr,kvm_amd,kvm_intel,kvm,i6300esb,psmouse,serio_raw,evdev,joydev,powernow_k8
  bl+=,aesni_intel,ghash_clmulni_intel,sha1_ssse3,sha256_ssse3,sha512_ssse3,crc32_pclmul
  bl+=,crc32c_intel,crct10dif_pclmul,polyval_clmulni,ccp,intel_pmc_bxt,button,qemu_fw_cfg
  local opts=(--run "$cache/$rel/vmlinuz" --cpus "${KMATRIX_CPUS:-1}" --memory "${KMATRIX_MEM:-1G}"
              --force-9p --append "modprobe.blacklist=$bl")
  [ "$accel" = tcg ] && opts+=(--disable-kvm)
  [ -n "${KMATRIX_RW:-}" ] && opts+=(--rwdir "$KMATRIX_RW")
  [ "${KMATRIX_VERBOSE:-0}" = 1 ] && opts+=(--verbose)

  # vng puts --exec on the kernel command line (2,048 bytes at most): the command travels
  # in a file, run by the guest's /bin/sh
  cmd=; for a in "$@"; do cmd+="$(sq "$a") "; done
  script=$(mktemp "${TMPDIR:-/tmp}/bpft-kernel.XXXXXX")
  {
    echo "mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf"
    echo "export PATH=$(sq "$PATH") KMATRIX_GUEST=$(sq "$rel") PYTHONDONTWRITEBYTECODE=1"
    [ -d "$cache/objects/libxdp1" ] && echo "export BPFT_LIBXDP_DIR=\${BPFT_LIBXDP_DIR:-$(sq "$cache/objects/libxdp1")}"
    echo "cd $(sq "$PWD") && exec $cmd"
  } >"$script"

  # QEMU reopens its stdout/stderr with O_TRUNC (a caller's log file would be clobbered):
  # it gets pipes. It runs in its own process group, which a timeout or a signal kills whole.
  local rc=0 pgid
  set +e
  PATH="$(dirname "$vng"):$PATH" setsid "$vng" "${opts[@]}" --exec "exec /bin/sh $(sq "$script")" </dev/null \
    > >(cat) 2> >(cat >&2) &
  pgid=$!
  trap 'kill -TERM -- -$pgid 2>/dev/null; sleep 2; kill -KILL -- -$pgid 2>/dev/null' INT TERM HUP
  local deadline=$((SECONDS + ${KMATRIX_TIMEOUT:-1800}))
  while kill -0 "$pgid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "kernel.sh: $rel: timed out after ${KMATRIX_TIMEOUT:-1800} s" >&2
      kill -TERM -- -"$pgid" 2>/dev/null; sleep 2; kill -KILL -- -"$pgid" 2>/dev/null
      wait "$pgid" 2>/dev/null; rc=124; break
    fi
    sleep 1
  done
  if [ $rc = 0 ]; then wait "$pgid"; rc=$?; fi
  kill -KILL -- -"$pgid" 2>/dev/null  # anything of the guest's still alive
  rm -f "$script"
  return $rc
}

case "${1:-}" in
  fetch) shift; fetch "$@" ;;
  list) ls "$cache" 2>/dev/null | while read -r d; do [ -f "$cache/$d/vmlinuz" ] && echo "$d"; done; true ;;
  ""|-h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) run "$@" ;;
esac
