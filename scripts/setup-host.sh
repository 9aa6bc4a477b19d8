#!/usr/bin/env bash
# Installs and starts what the integration tests and the demo need on this host:
# the Docker engine, Debian's registry on 127.0.0.1:5000, HAProxy, and the base image.
# Idempotent: each part is skipped when already present or running.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*" >&2; }

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
command -v haproxy >/dev/null 2>&1 || need_pkgs+=(haproxy)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # Debian starts packaged services only under systemd; we run them ourselves below.
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  rm -f /var/run/docker.pid
  nohup dockerd >/var/log/deliverypipeline-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start: see /var/log/deliverypipeline-dockerd.log"; exit 1; }
fi

if ! curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null; then
  log "starting the registry on 127.0.0.1:5000"
  mkdir -p /var/lib/deliverypipeline/registry
  cat > /var/lib/deliverypipeline/registry.yml <<'YML'
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/deliverypipeline/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YML
  nohup /usr/bin/docker-registry serve /var/lib/deliverypipeline/registry.yml \
    >/var/log/deliverypipeline-registry.log 2>&1 &
  for _ in $(seq 1 40); do curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null && break; sleep 0.25; done
  curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ || { log "registry did not start: see /var/log/deliverypipeline-registry.log"; exit 1; }
fi

"$(dirname "$0")/build-base-image.sh"
log "ready"
