#!/usr/bin/env bash
# Installs Mesa lavapipe (a software Vulkan driver) and the Vulkan loader, so the WebGPU test
# (test/webgpu.test.ts) can run on machines without a GPU. Idempotent: does nothing when a recent
# enough lavapipe is already installed. Needs apt and root (or sudo).
#
# On Debian 12 (bookworm) the stock Mesa 22.3 is too old for Dawn, so Mesa comes from
# bookworm-backports; elsewhere the distribution's own packages are used.
set -euo pipefail

MIN_MESA_MAJOR=23
PKGS=(mesa-vulkan-drivers libvulkan1)

log() { printf 'install-lavapipe: %s\n' "$*"; }

installed_version() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '/install ok installed/ {print $4}'; }

mesa_ok() {
  local v
  v=$(installed_version mesa-vulkan-drivers)
  [[ -n "$v" && -n "$(installed_version libvulkan1)" ]] || return 1
  # Epoch-less Debian versions start with the upstream major, e.g. 25.0.7-2~bpo12+1.
  local major=${v%%.*}; major=${major##*:}
  [[ "$major" =~ ^[0-9]+$ ]] && (( major >= MIN_MESA_MAJOR ))
}

if mesa_ok; then
  log "already installed: mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers), libvulkan1 $(installed_version libvulkan1)"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  log "apt-get not found: install Mesa's lavapipe (Vulkan ${MIN_MESA_MAJOR}+) and the Vulkan loader with your package manager." >&2
  exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=(sudo); else log "run as root (or install sudo)." >&2; exit 1; fi
fi

codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
target=()
if [[ "$codename" == bookworm ]]; then
  list=/etc/apt/sources.list.d/backports.list
  if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding bookworm-backports ($list)"
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | "${SUDO[@]}" tee "$list" >/dev/null
  fi
  target=(-t bookworm-backports)
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
"${SUDO[@]}" apt-get update -qq
log "installing ${PKGS[*]} ${target[*]}"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${target[@]}" "${PKGS[@]}"

if ! mesa_ok; then
  log "installed mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers) is older than ${MIN_MESA_MAJOR}; Dawn may not accept it." >&2
  exit 1
fi
log "done: mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers), libvulkan1 $(installed_version libvulkan1)"
