#!/usr/bin/env bash
# Builds the base image (Debian bookworm minbase with Python 3.11, python3-venv, curl,
# ca-certificates) from Debian packages with debootstrap and imports it into the Docker engine.
# Never pulls from a hub. The mirror is read from this host's apt sources at run time.
# Idempotent: does nothing when the image exists. Needs root, debootstrap and a running engine.
set -euo pipefail
IMAGE="${DELIVERY_BASE_IMAGE:-deliverypipeline/base:bookworm-py311}"
LOG=/var/log/deliverypipeline-debootstrap.log
die() { printf 'build-base-image: ERROR: %s\n' "$*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "the Docker engine is not running (bash scripts/setup-host.sh starts it)"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then exit 0; fi
[ "$(id -u)" -eq 0 ] || die "$IMAGE is missing and building it (debootstrap) needs root: run as root"
export PATH="$PATH:/usr/sbin:/sbin"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing: apt-get install debootstrap"

sources=/etc/apt/sources.list.d/debian.sources
mirror=""
if [ -f "$sources" ]; then
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$sources")
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '/^deb / && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
    /etc/apt/sources.list)
fi
[ -n "$mirror" ] || die "no Debian mirror found in $sources or /etc/apt/sources.list"

root=$(mktemp -d /var/tmp/deliverypipeline-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "build-base-image: debootstrap bookworm from $mirror into $root (log: $LOG)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,curl \
  bookworm "$root" "$mirror" >"$LOG" 2>&1 \
  || { tail -n 20 "$LOG" >&2; die "debootstrap failed: see $LOG"; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null \
  || die "docker import of the root filesystem failed"
docker run --rm --network none "$IMAGE" python3 -c 'import venv, ssl' \
  || die "$IMAGE was built but python3 (venv, ssl) does not work in it"
echo "build-base-image: imported $IMAGE" >&2
