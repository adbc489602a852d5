#!/usr/bin/env bash
# Build the image with podman from a Debian base made here, and run it for real.
#
#   scripts/image.sh base     # the base image (mmdebstrap), cached: python:3.11-slim-bookworm, locally
#   scripts/image.sh build    # the base, then docker/Dockerfile with podman build
#
# docs/image.md says what each step checks and what this machine needs. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/stack-supervisor:dev}
# The name the Dockerfile's FROM resolves to: podman finds it in local storage before any registry.
BASE=localhost/python:3.11-slim-bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
CACHE=${IMAGE_CACHE:-build/image}
# At or below this sandbox's limits: podman's defaults are above them, and without
# CAP_SYS_RESOURCE crun cannot raise them ("setrlimit RLIMIT_NOFILE: Operation not permitted").
ULIMITS=(--ulimit nofile=10000:10000 --ulimit nproc=10000:10000)

say() { printf 'image: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

need_tools() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is not installed: apt-get install podman mmdebstrap"
  done
  [ "$(id -u)" = 0 ] || die "needs root (podman as root, mmdebstrap, and maybe a cgroup mount)"
}

# crun refuses a hybrid cgroup layout whose v2 mount still holds a controller ("cgroups in hybrid
# mode not supported, drop all controllers from cgroupv2"). Mounting those controllers in v1
# moves them out of the v2 mount.
fix_cgroups() {
  local unified=/sys/fs/cgroup/unified/cgroup.controllers controller
  [ -r "$unified" ] || return 0
  for controller in $(cat "$unified"); do
    say "cgroup v2 still holds '$controller' beside v1 (crun refuses that): mounting it in v1 at /sys/fs/cgroup/$controller"
    mkdir -p "/sys/fs/cgroup/$controller"
    mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller"
  done
}

# The key of the cached base: what goes into it.
base_key() {
  { echo "$MIRROR $PACKAGES"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; } | sha256sum | cut -c1-12
}

base() {
  need_tools podman mmdebstrap
  local key tar
  key=$(base_key)
  tar="$CACHE/base-bookworm-$key.tar"
  if podman image exists "$BASE" && [ "$(podman image inspect -f '{{index .Labels "base-key"}}' "$BASE" 2>/dev/null)" = "$key" ]; then
    say "base $BASE is cached (key $key)"
    return 0
  fi
  mkdir -p "$CACHE"
  if [ ! -s "$tar" ]; then
    say "making the base with mmdebstrap: Debian 12 minbase + $PACKAGES"
    # The machine's own extra CAs go in too (an egress proxy's): pip in the build trusts what
    # the machine trusts. Documentation, man pages and locales are left out, as in slim images.
    mmdebstrap --variant=minbase --format=tar --include="$PACKAGES" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then mkdir -p "$1/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" && chroot "$1" update-ca-certificates >/dev/null; fi' \
      bookworm "$tar.part" "$MIRROR" >&2
    mv "$tar.part" "$tar"
  fi
  podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL base-key=$key" \
    --change 'CMD ["python3"]' \
    "$tar" "$BASE" >/dev/null
  say "base $BASE imported ($(podman image inspect -f '{{.Size}}' "$BASE" | awk '{printf "%d MB", $1/1e6}'))"
}

build() {
  base
  fix_cgroups
  local started=$SECONDS
  say "podman build docker/Dockerfile -> $IMAGE"
  podman build --pull=never --format docker "${ULIMITS[@]}" -f docker/Dockerfile -t "$IMAGE" . >&2
  say "built $IMAGE in $((SECONDS - started)) s: $(size)"
}

size() {
  podman image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'
}

case "${1:-}" in
  base) base ;;
  build) build ;;
  *) die "usage: scripts/image.sh base|build" ;;
esac
