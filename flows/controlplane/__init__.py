"""The local control plane: one persistent Prefect server and one worker for every entry point.

`make demo`, `deliverypipeline run`, `make serve` and the webhook receiver all talk to the same
server (SQLite under the project's state dir, or the server `PREFECT_API_URL` names), so every
run shows in one UI and shares one run slot. Any entry point starts what is missing, reuses what
answers, and leaves it running; `deliverypipeline server status|stop` shows and stops it.

    layout.py       where things are (state dir, port, URLs) and the environment of the children
    decisions.py    pure decisions: is this server ours, is the port taken, which exit code
    processes.py    detached processes, pid records, stopping by pid
    server.py       the Prefect server: start, reuse, status, stop
    worker.py       the worker of the `deliverypipeline` pool, and runs orphaned by a dead one
    api.py          the server's REST API over the one HTTP client (no Prefect import: fast commands)
    records.py      what the API returns: one FlowRun type for every caller
    headers.py      how the API client introduces itself (version, credentials), inside a flow run too
    deployments.py  the work pool and the deployments of prefect.yaml, deployed when they changed
    follow.py       submit a run of a deployment, stream its logs and states to the end
"""

from __future__ import annotations

from flows.errors import DeliveryError


class ControlPlaneError(DeliveryError):
    """The control plane could not be started or reached; the message says what to do."""
