#!/usr/bin/env bash
# The system packages vgic's machine and conformance runs use, and the CPU addon built on them.
# The library and the rest of the CLI need none of this.
#   libunicorn-dev              the CPU of `vgic run` (native/unicorn binds it)
#   qemu-system-arm             the reference machine of `vgic conformance`
#   gcc-aarch64-linux-gnu,
#   binutils-aarch64-linux-gnu  the bare-metal guest programs (guest/)
#   device-tree-compiler        dtc, to check the device tree vgic's machine builds
# Idempotent and quick when everything is there; called by `npm test` (pretest) and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(libunicorn-dev qemu-system-arm gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu device-tree-compiler)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
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
  if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/vgic-apt.log 2>&1; then
    $SUDO apt-get update >>/tmp/vgic-apt.log 2>&1
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/vgic-apt.log 2>&1 ||
      { tail -20 /tmp/vgic-apt.log >&2; exit 1; }
  fi
fi
node scripts/build-native.mjs --strict
