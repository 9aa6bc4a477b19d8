#!/usr/bin/env bash
# Installs and starts what the integration tests and the demo need on this host:
# the Docker engine, Debian's registry on 127.0.0.1:5000, HAProxy, PostgreSQL's server binaries,
# git, curl, Chromium (the UI test's headless browser) and the base image.
# Idempotent: each part is skipped when already present or running. Needs root only for what
# it must install or start (apt-get, dockerd, the registry, debootstrap).
# Every failure prints what failed and which log to read, and exits non-zero.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
LOG_DIR=/var/log
APT_LOG=$LOG_DIR/deliverypipeline-apt.log
DOCKERD_LOG=$LOG_DIR/deliverypipeline-dockerd.log
REGISTRY_LOG=$LOG_DIR/deliverypipeline-registry.log
REGISTRY_ADDR=127.0.0.1:5000
STATE=/var/lib/deliverypipeline

need_root() { [ "$(id -u)" -eq 0 ] || die "$1 needs root: run as root (sudo make ...)"; }

# --- packages ------------------------------------------------------------------------------
need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_pkgs+=(haproxy)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need_pkgs+=(debootstrap)
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need_pkgs+=(iptables)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_pkgs+=(ca-certificates)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)  # load generator of the benchmarks
# PostgreSQL's server binaries: the tests and bench/store_bench.py start throwaway clusters with them
# (flows/servers/postgres.py); nothing uses the cluster the package may create and start itself.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_pkgs+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)  # headless browser of the UI test
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  need_root "installing ${need_pkgs[*]}"
  command -v apt-get >/dev/null 2>&1 \
    || die "apt-get not found (missing: ${need_pkgs[*]}): this script supports Debian-based hosts only"
  mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
  log "installing ${need_pkgs[*]} (log: $APT_LOG)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >"$APT_LOG" 2>&1 || { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed: see $APT_LOG"; }
  # Debian starts packaged services only under systemd; we start them ourselves below.
  apt-get install -y --no-install-recommends "${need_pkgs[@]}" >>"$APT_LOG" 2>&1 \
    || { tail -n 20 "$APT_LOG" >&2; die "apt-get install ${need_pkgs[*]} failed: see $APT_LOG"; }
fi
export PATH="$PATH:/usr/sbin:/sbin"

# --- the Docker engine ---------------------------------------------------------------------
start_dockerd() {
  # setsid: the engine outlives this script and an interrupted make.
  rm -f /var/run/docker.pid
  setsid nohup dockerd "$@" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  DOCKERD_PID=$!
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || return 1  # dockerd exited
    sleep 0.5
  done
  return 1
}
if ! docker info >/dev/null 2>&1; then
  if pgrep -x dockerd >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "dockerd runs but $(id -un) cannot reach it: run as root or join the docker group"
    die "a dockerd process runs but does not answer; stop it (kill <pid>) or see $DOCKERD_LOG"
  fi
  need_root "starting dockerd"
  log "starting dockerd (log: $DOCKERD_LOG)"
  if ! start_dockerd; then
    # Some sandboxes lack the iptables nat table; port publishing on 127.0.0.1 still works
    # through docker-proxy without it.
    log "dockerd did not start; retrying without iptables management"
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    start_dockerd --iptables=false --ip-masq=false \
      || { tail -n 20 "$DOCKERD_LOG" >&2; die "dockerd did not start: see $DOCKERD_LOG"; }
  fi
fi

# --- the registry on 127.0.0.1:5000 -------------------------------------------------------------
registry_up() { curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }
if ! registry_up; then
  need_root "starting the registry"
  log "starting the registry on $REGISTRY_ADDR (log: $REGISTRY_LOG)"
  mkdir -p "$STATE/registry"
  cat > "$STATE/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YML
  setsid nohup /usr/bin/docker-registry serve "$STATE/registry.yml" >>"$REGISTRY_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 80); do registry_up && break; sleep 0.25; done
  registry_up || { tail -n 20 "$REGISTRY_LOG" >&2; die "registry did not start on $REGISTRY_ADDR: see $REGISTRY_LOG"; }
fi

# --- the base image ------------------------------------------------------------------------
"$(dirname "$0")/build-base-image.sh" || die "the base image could not be built (see the message above)"
log "ready: docker $(docker version --format '{{.Server.Version}}'), registry $REGISTRY_ADDR, haproxy, base image"
