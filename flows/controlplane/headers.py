"""How the API adapter introduces itself to Prefect's server: the client's identity and its credentials.

The server treats a client by its announced version (an unknown one gets older rules), and
authenticates it by Prefect's settings: `PREFECT_API_KEY` as a bearer token, else
`PREFECT_API_AUTH_STRING` (`user:password`) as basic auth (`authorization`, which the adapter's
`for_current_run` also uses for the server the current flow run reports to).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from importlib.metadata import version as installed_version

# The API version Prefect's client announces (prefect.client.constants.SERVER_API_VERSION; a test
# keeps the two equal). With the User-Agent the server knows a current client: for an unknown one
# it falls back to older rules (a cancelled Pending run would lose its concurrency lease).
API_VERSION = "0.8.4"


def client_headers() -> dict[str, str]:
    """The headers by which Prefect's server recognises a current Prefect client."""
    prefect_version = installed_version("prefect")
    return {
        "User-Agent": f"prefect/{prefect_version} (API {API_VERSION})",
        "X-PREFECT-API-VERSION": API_VERSION,
    }


def auth_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Authorization header Prefect's client would send, from its settings (none for a local server)."""
    env = os.environ if environ is None else environ
    return authorization(env.get("PREFECT_API_KEY"), env.get("PREFECT_API_AUTH_STRING"))


def authorization(key: str | None, auth_string: str | None) -> dict[str, str]:
    """The Authorization header for an API key (bearer) or else a `user:password` (basic); none without."""
    if key:
        return {"Authorization": f"Bearer {key}"}
    if auth_string:
        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    return {}
