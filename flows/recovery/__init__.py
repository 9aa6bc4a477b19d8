"""Recovery of a crashed release, started by the control plane itself (no person, no next release).

    decisions.py  pure: which run is recovered, the run's name, the release's settings, the report
    flow.py       the `recover` flow: lock the target, swap back an unverified swap, verify prod

The server starts it: prefect.yaml's `recover/crashed-release` deployment has a trigger on a
release run's Crashed state; a run whose process or worker died without a word is marked Crashed
by the control plane's keeper (this host) or by the server's automation on missing heartbeats
(`flows/controlplane/automations.py`).
"""
