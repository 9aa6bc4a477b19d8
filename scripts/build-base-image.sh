#!/usr/bin/env bash
# Builds the base image (Debian bookworm minbase with Python 3.11) from Debian packages
# with debootstrap and imports it into the Docker engine. Never pulls from a hub.
# The mirror is read from this host's apt sources at run time.
set -euo pipefail
IMAGE="${DELIVERY_BASE_IMAGE:-deliverypipeline/base:bookworm-py311}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then exit 0; fi

sources=/etc/apt/sources.list.d/debian.sources
mirror=""
if [ -f "$sources" ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' "$sources")
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "build-base-image: no Debian mirror found in $sources or /etc/apt/sources.list" >&2; exit 1; }

root=$(mktemp -d /var/tmp/deliverypipeline-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "build-base-image: debootstrap bookworm from the host's mirror into $root" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,curl \
  bookworm "$root" "$mirror" >/var/log/deliverypipeline-debootstrap.log 2>&1 \
  || { echo "build-base-image: debootstrap failed: see /var/log/deliverypipeline-debootstrap.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "build-base-image: imported $IMAGE" >&2
