"""The options target subcommands share: an application and the two addresses, unset by default."""

from __future__ import annotations

import argparse

from flows.cli.arguments import address_options


def test_the_application_and_both_addresses_are_options_left_unset_by_default() -> None:
    parser = argparse.ArgumentParser()
    address_options(parser)
    given = parser.parse_args(["--application", "shop", "--prod-address", "127.0.0.1:9"])
    assert (given.application, given.prod_address, given.preprod_address) == ("shop", "127.0.0.1:9", None)
