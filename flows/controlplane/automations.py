"""The server's automation that marks a silent release run Crashed (its heartbeats stopped).

A run whose process dies while its worker lives is marked Crashed by the worker at once. When the
worker died too (or the run ran on another host), nobody is left to say so: flow runs send a
heartbeat every `layout.HEARTBEAT_S` seconds (Prefect's minimum, 30 s), and this proactive
trigger marks a release or recovery run Crashed when none of its events (heartbeat or state
change) arrived for `SILENCE_S`. The Crashed state then starts the recovery (prefect.yaml's
`recover/crashed-release` trigger). On this host the keeper (`keeper.py`) notices a dead worker
within seconds; this is the server's own backstop.

Its action only ever ends a run that is still going: the state change is proposed, never forced
(`force` false), so the server's orchestration rules apply, and they refuse Crashed for a run
already in a final state (Completed, Failed, Cancelled, Crashed: "Run is already in terminal
state"). A run that finished while its heartbeat's silence was being counted keeps its state, and
no Crashed event starts a recovery.

The automation is created when missing and replaced when its definition changed (a digest of
it is one of its tags); everything else on the server is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flows.controlplane.api import ControlPlaneApi
from flows.keys import digest

Say = Callable[[str], None]
NAME = "mark a silent release run Crashed"
SILENCE_S = 90  # three heartbeats missed: a live run on a busy machine is never taken for dead
FLOWS = ["deliverypipeline", "recover"]
SPEC_TAG = "spec:"


def silent_run_automation() -> dict[str, Any]:
    """The automation's definition, as the API takes it (without its digest tag)."""
    return {
        "name": NAME,
        "description": (
            f"A release or recovery run sent no heartbeat or state change for {SILENCE_S}s (its process "
            "and its worker are gone): mark it Crashed, which starts the recovery of its target."
        ),
        "enabled": True,
        "tags": ["deliverypipeline"],
        "trigger": {
            "type": "event",
            "posture": "Proactive",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": FLOWS},
            "after": ["prefect.flow-run.heartbeat"],
            "expect": ["prefect.flow-run.*"],  # any sign of life: a heartbeat or any state change
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": SILENCE_S,
        },
        "actions": [
            {
                "type": "change-flow-run-state",
                "state": "CRASHED",
                "name": "Crashed",
                "message": f"no heartbeat for {SILENCE_S}s: its process and its worker are gone "
                "(marked Crashed by the control plane's automation)",
                # Proposed, not forced: the server refuses Crashed for a run already ended.
                "force": False,
            }
        ],
    }


def with_digest(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` tagged with a digest of itself, so a changed definition is told from the current one."""
    tag = SPEC_TAG + digest([json.dumps(spec, sort_keys=True)])[:16]
    return {**spec, "tags": [*spec["tags"], tag]}


def is_current(existing: list[dict[str, Any]], wanted: dict[str, Any]) -> bool:
    """Whether exactly one automation of that name exists and carries the wanted digest (pure)."""
    same_name = [a for a in existing if a.get("name") == wanted["name"]]
    return len(same_name) == 1 and sorted(same_name[0].get("tags") or []) == sorted(wanted["tags"])


def ensure_automations(client: ControlPlaneApi, say: Say) -> bool:
    """Create (or replace) the silent-run automation unless it is current; whether it changed anything."""
    wanted = with_digest(silent_run_automation())
    existing: list[dict[str, Any]] = client.call("POST", "/automations/filter", {}) or []
    if is_current(existing, wanted):
        return False
    for old in existing:
        if old.get("name") == wanted["name"]:
            client.call("DELETE", f"/automations/{old['id']}")
    client.call("POST", "/automations/", wanted)
    say(f"automation on the server: {NAME} (after {SILENCE_S}s without a heartbeat)")
    return True
