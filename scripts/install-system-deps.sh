#!/usr/bin/env bash
# The system packages vgic's machine and conformance runs use, and the CPU addon built on them.
# The library and the rest of the CLI need none of this.
# Usage: install-system-deps.sh [PACKAGE...]  (default: all of them; a test may ask for only its own)
#   libunicorn-dev (>= 2.1)     the CPU of `vgic run` (native/unicorn binds it). Debian 13 ships
#                               2.1.1; on Debian 12 (2.0.1, which looks virtual addresses up in
#                               the physical map) it comes from trixie, pinned to these two
#                               packages only (they need nothing newer than bookworm's libc6)
#   qemu-system-arm             the reference machine of `vgic conformance`
#   gcc-aarch64-linux-gnu,
#   binutils-aarch64-linux-gnu  the bare-metal guest programs (guest/)
#   device-tree-compiler        dtc, to check the device tree vgic's machine builds
#   chromium                    the headless browser test/browser.test.ts drives (playwright-core)
# Idempotent and quick when everything is there; called by `npm test` (pretest) and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(libunicorn-dev qemu-system-arm gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu device-tree-compiler chromium)
if (($#)); then PKGS=("$@"); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# An installed libunicorn-dev older than 2.1 counts as missing.
if dpkg-query -W -f='${Version}' libunicorn-dev 2>/dev/null | grep -q '^2[.]0[.]'; then
  [[ " ${missing[*]} " == *" libunicorn-dev "* ]] || missing+=(libunicorn-dev)
fi
if ((${#missing[@]})); then
  echo "vgic: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      SUDO="sudo -n"
    else
      echo "vgic: cannot install ${missing[*]} (not root, no sudo): run as root: bash scripts/install-system-deps.sh" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [[ " ${missing[*]} " == *" libunicorn-dev "* ]] && grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then
    # trixie's suite at priority 1 for everything but libunicorn (990): nothing else upgrades.
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: trixie' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      $SUDO tee /etc/apt/sources.list.d/vgic-trixie.sources >/dev/null
    printf '%s\n' 'Package: *' 'Pin: release n=trixie' 'Pin-Priority: 1' '' \
      'Package: libunicorn-dev libunicorn2t64' 'Pin: release n=trixie' 'Pin-Priority: 990' |
      $SUDO tee /etc/apt/preferences.d/vgic-trixie >/dev/null
    $SUDO apt-get update >/tmp/vgic-apt.log 2>&1 || { tail -20 /tmp/vgic-apt.log >&2; exit 1; }
  fi
  if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/vgic-apt.log 2>&1; then
    $SUDO apt-get update >>/tmp/vgic-apt.log 2>&1
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/vgic-apt.log 2>&1 ||
      { tail -20 /tmp/vgic-apt.log >&2; exit 1; }
  fi
fi
if [[ " ${PKGS[*]} " == *" libunicorn-dev "* ]]; then node scripts/build-native.mjs --strict; fi
