"""Which environment holds an address: exact, or a CNAME by its configured prefix."""

from __future__ import annotations

from flows.targets.addresses import holds_address
from flows.targets.base import GREEN, READY, Environment

PROD = "127.0.0.1:8080"
PREPROD = "127.0.0.1:8081"


def env(name: str, address: str) -> Environment:
    return Environment(name=name, address=address, version="v1", status=READY, health=GREEN)


def test_local_addresses_match_exactly() -> None:
    assert holds_address(env("node-1", PROD), PROD)
    assert not holds_address(env("node-1", PROD), PREPROD)


def test_a_cname_matches_its_configured_prefix() -> None:
    cname = "deliverypipeline-preprod.eu-west-1.elasticbeanstalk.com"
    assert holds_address(env("node-2", cname), "deliverypipeline-preprod")
    assert holds_address(env("node-2", cname), cname)
    assert not holds_address(env("node-2", cname), "deliverypipeline-prod")
    assert not holds_address(
        env("node-2", "deliverypipeline-preprod-2.elasticbeanstalk.com"), "deliverypipeline-preprod"
    )


def test_host_names_compare_case_insensitively() -> None:
    assert holds_address(env("node-1", "deliverypipeline-prod.elasticbeanstalk.com"), "Deliverypipeline-Prod")


def test_no_address_holds_nothing() -> None:
    assert not holds_address(env("node-1", ""), PROD)
    assert not holds_address(env("node-1", PROD), "")
