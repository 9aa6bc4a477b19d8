"""Which environment holds an address: the one rule targets and the release decisions share.

Pure: an environment's reported address against a configured one, as the seed picks by CNAME.
"""

from __future__ import annotations

from flows.targets.base import Environment


def holds_address(environment: Environment, address: str) -> bool:
    """Whether an environment is reached at `address`.

    An exact match, or, as the seed picks by CNAME, a CNAME whose first label is the
    configured prefix (`app-preprod` matches `app-preprod.eu-west-1.elasticbeanstalk.com`).
    Host names compare case-insensitively, as DNS does.
    """
    if not environment.address or not address:
        return False
    held, wanted = environment.address.lower(), address.lower()
    return held == wanted or held.split(".", 1)[0] == wanted
