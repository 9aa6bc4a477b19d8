#!/usr/bin/env bash
# `make serve`: the webhook receiver, added to the local control plane, on 127.0.0.1, until Ctrl-C.
#
#   the control plane (`deliverypipeline server start`: reused when it runs, started when missing)
#     the Prefect server and its UI  http://127.0.0.1:${PREFECT_PORT:-4200}  (SQLite under the machine's
#                                    state dir), or the team's server PREFECT_API_URL names
#     the work pool `deliverypipeline` and the deployments of prefect.yaml
#     a worker for the pool           (runs each flow run in its own process)
#   the webhook receiver             http://127.0.0.1:${WEBHOOK_PORT:-8787}/webhooks/github
#
# `make demo` uses the same control plane (one UI, one run slot). Needs DELIVERY_WEBHOOK_SECRET
# (the secret set on the GitHub webhook). Ctrl-C stops the receiver and what of the control plane
# this script started (flow runs in progress first); a control plane that was already running
# stays (`make stop` stops it).
# Settings: PREFECT_API_URL (a team's server, e.g. on PostgreSQL: used as it is, never started),
# PREFECT_PORT, WEBHOOK_PORT, DELIVERY_STATE_DIR (default: /var/lib/deliverypipeline/controlplane),
# WEBHOOK_BRANCHES (default "main"; e.g. "main master"), WEBHOOK_DEPLOYMENT (the deployment a push
# runs, default deliverypipeline/local; deliverypipeline/aws releases to AWS), VENV (default: <checkout>/.venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POOL=deliverypipeline
WEBHOOK_PORT="${WEBHOOK_PORT:-8787}"
VENV="${VENV:-$ROOT/.venv}"
BRANCHES="${WEBHOOK_BRANCHES:-main}"
DEPLOYMENT="${WEBHOOK_DEPLOYMENT:-deliverypipeline/local}"
GRACE_S=10

say() { printf 'serve: %s\n' "$*" >&2; }

if [[ -z "${DELIVERY_WEBHOOK_SECRET:-}" ]]; then
    say "DELIVERY_WEBHOOK_SECRET is not set: refusing to accept unsigned webhooks."
    say "Set it to the secret configured on the GitHub webhook, e.g."
    say "  export DELIVERY_WEBHOOK_SECRET=\$(openssl rand -hex 32)"
    exit 2
fi
if [[ ! -x "$VENV/bin/prefect" ]]; then
    say "no Prefect in $VENV: create the venv first (pip install -e '.[pipeline,dev]'), or set VENV"
    exit 2
fi

export PATH="$VENV/bin:$PATH"
# The server every entry point uses: the team's (PREFECT_API_URL) or the machine's local one.
if ! settings="$(cd "$ROOT" && deliverypipeline server env)"; then exit 2; fi
eval "$settings"
STATE_DIR="$DELIVERY_STATE_DIR"
export DELIVERY_STATE_DIR PREFECT_API_URL PREFECT_UI_URL
export PREFECT_HOME="$STATE_DIR/prefect"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export DO_NOT_TRACK=1

PIDS=()   # each child leads its own process group (setsid), so a stop reaches its children too
NAMES=()

start() { # name, command...: run in the background with its own process group and log
    local name="$1"
    shift
    # The prefixing sed ignores Ctrl-C so the children can still log while they shut down.
    setsid "$@" > >(trap "" INT TERM; exec sed -u "s/^/[$name] /") 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
    say "started $name (pid $!)"
}

alive() { kill -0 "$1" 2>/dev/null; }

signal_group() { # signal, pid: the process group led by pid, or the process alone if it leads none
    kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true
}

stop_one() { # pid, name: SIGTERM (twice: the worker ignores the first), SIGKILL after the grace period
    local pid="$1" name="$2" waited=0
    alive "$pid" || return 0
    signal_group TERM "$pid"
    while alive "$pid" && ((waited < GRACE_S * 10)); do
        if ((waited == 20)); then signal_group TERM "$pid"; fi
        sleep 0.1
        waited=$((waited + 1))
    done
    if alive "$pid"; then
        say "$name did not stop within ${GRACE_S}s: SIGKILL"
        signal_group KILL "$pid"
    fi
    wait "$pid" 2>/dev/null || true
}

STARTED_PLANE=0 # whether this script started (part of) the control plane, which it then stops
STOPPING=0
stop_all() {
    ((STOPPING)) && return
    STOPPING=1
    trap - INT TERM
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_one "${PIDS[$i]}" "${NAMES[$i]}"; done
    # Running flow runs first, while the worker and server can still record how they ended.
    if ((STARTED_PLANE)); then (cd "$ROOT" && deliverypipeline server stop) || true; fi
    say "stopped"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

wait_healthy() { # url, pid, deadline in seconds
    local url="$1" pid="$2" deadline=$((SECONDS + $3))
    until curl -fs -o /dev/null --max-time 2 "$url"; do
        if ! alive "$pid"; then say "the process serving $url exited; see its output above"; exit 1; fi
        if ((SECONDS >= deadline)); then say "$url not healthy within $3 s"; exit 1; fi
        sleep 0.5
    done
}

if (exec 3<>"/dev/tcp/127.0.0.1/$WEBHOOK_PORT") 2>/dev/null; then
    say "something already listens on 127.0.0.1:$WEBHOOK_PORT (another \`make serve\`?): stop it, or set WEBHOOK_PORT"
    exit 2
fi

# The control plane: refuses (exit 2, one line) a Prefect port held by something else.
plane_log="$STATE_DIR/logs/serve-controlplane.log"
mkdir -p "$STATE_DIR/logs" 2>/dev/null || true
set +e
(cd "$ROOT" && deliverypipeline server start) 2>&1 | tee "$plane_log" >&2
status=${PIPESTATUS[0]}
set -e
if grep -q "started \(server\|worker\)" "$plane_log" 2>/dev/null; then STARTED_PLANE=1; fi
if ((status != 0)); then exit "$status"; fi
WORKER_PID=$(sed -n 's/.*started worker (pid \([0-9]*\)).*/\1/p' "$plane_log" | tail -n 1)
say "Prefect UI: $PREFECT_UI_URL"

branch_args=()
for branch in $BRANCHES; do branch_args+=(--branch "$branch"); done
start webhook deliverypipeline webhook --host 127.0.0.1 --port "$WEBHOOK_PORT" \
    --deployment "$DEPLOYMENT" "${branch_args[@]}"
wait_healthy "http://127.0.0.1:$WEBHOOK_PORT/healthz" "${PIDS[0]}" 60

deadline=$((SECONDS + 60)) # the worker registers with the pool once it has started
until [[ "$(curl -fs --max-time 2 -X POST -H 'Content-Type: application/json' -d '{}' \
    "$PREFECT_API_URL/work_pools/$POOL/workers/filter" || true)" == '[{'* ]]; do
    if [[ -n "$WORKER_PID" ]] && ! alive "$WORKER_PID"; then
        say "the worker exited; see $STATE_DIR/logs/worker.log"
        exit 1
    fi
    if ((SECONDS >= deadline)); then say "the worker did not register with pool $POOL within 60 s"; exit 1; fi
    sleep 0.5
done

say "ready: webhook http://127.0.0.1:$WEBHOOK_PORT/webhooks/github, UI $PREFECT_UI_URL — Ctrl-C stops the receiver"
# Returns when the receiver exits (or on Ctrl-C, through the trap); then what we started is stopped.
set +e
wait -n "${PIDS[@]}"
status=$?
say "the receiver exited (status $status); stopping"
exit "$status"
