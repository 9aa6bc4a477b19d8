"""What HAProxy's admin socket answers, read: command results, servers, roles."""

from __future__ import annotations

import pytest

from flows.targets.local import replies
from flows.targets.local.plans import PREPROD, PROD
from flows.targets.local.replies import ServerSlot, ServerState

# `show servers state` as HAProxy 2.6 answers it: prod serving port 32768, preprod parked.
SERVERS_STATE = (
    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
    "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
    "3 prod 1 app 127.0.0.1 2 4 1 1 0 1 0 0 8 0 0 0 - 32768 - 0 0 - - 0\n"
    "4 preprod 1 app 127.0.0.1 0 5 1 1 0 1 0 0 8 0 0 0 - 1 - 0 0 - - 0\n\n"
)


def test_server_slots_include_the_canary_with_its_weight() -> None:
    text = SERVERS_STATE.replace(
        "4 preprod 1 app",
        "3 prod 2 canary 127.0.0.1 2 0 25 25 0 1 0 2 0 0 0 0 - 32770 - 0 0 - - 0\n4 preprod 1 app",
    )
    slots = replies.parse_server_slots(text)
    assert sorted(slots) == ["preprod/app", "prod/app", "prod/canary"]
    assert slots["prod/canary"] == ServerSlot("prod", "canary", 32770, True, 25, "127.0.0.1")
    assert str(slots["prod/canary"].endpoint) == "127.0.0.1:32770"
    assert slots["preprod/app"].serving is False
    assert set(replies.parse_servers_state(text)) == {PROD, PREPROD}  # roles read `app` only


def test_command_errors_accepts_haproxy_success_replies_only() -> None:
    ok = "no need to change the addr, port changed from '1' to '9999' by 'stats socket command'\n\n\n"
    assert replies.command_errors(ok) == []
    assert (
        replies.command_errors("IP changed from '10.0.0.1' to '127.0.0.1', no need to change the port\n")
        == []
    )
    assert replies.command_errors("\n") == []
    assert replies.command_errors("No such server.\n\n\n") == ["No such server."]
    assert replies.command_errors("Unknown command, but maybe ...\n  help\n") == [
        "Unknown command, but maybe ...",
        "help",
    ]


def test_parse_servers_state() -> None:
    assert replies.parse_servers_state(SERVERS_STATE) == {
        PROD: ServerState(PROD, 32768, serving=True),
        PREPROD: ServerState(PREPROD, 1, serving=False),
    }
    assert replies.parse_servers_state("") == {}


def _servers(prod: tuple[int, bool], preprod: tuple[int, bool]) -> dict[str, ServerState]:
    return {PROD: ServerState(PROD, *prod), PREPROD: ServerState(PREPROD, *preprod)}


def test_roles_from_proxy_matches_ports_to_environments() -> None:
    servers = _servers((32770, True), (32768, True))
    assert replies.roles_from_proxy(servers, {"node-1": 32768, "node-2": 32770}) == {
        PROD: "node-2",
        PREPROD: "node-1",
    }


def test_roles_from_proxy_gives_a_parked_backend_to_the_other_environment() -> None:
    servers = _servers((32770, True), (1, False))
    assert replies.roles_from_proxy(servers, {"node-1": None, "node-2": 32770}) == {
        PROD: "node-2",
        PREPROD: "node-1",
    }


def test_roles_from_proxy_during_a_deploy_still_tells_by_the_other_backend() -> None:
    # node-1's backend already points at its new container; the state still has the old port.
    servers = _servers((40000, True), (32770, True))
    assert replies.roles_from_proxy(servers, {"node-1": 32768, "node-2": 32770}) == {
        PROD: "node-1",
        PREPROD: "node-2",
    }


@pytest.mark.parametrize(
    ("servers", "ports"),
    [
        (_servers((1, False), (1, False)), {"node-1": None, "node-2": None}),  # nothing deployed
        (_servers((5, True), (5, True)), {"node-1": 5, "node-2": 6}),  # both at one container
        ({PROD: ServerState(PROD, 5, True)}, {"node-1": 5, "node-2": None}),  # not our proxy
        (_servers((5, True), (6, True)), {"node-1": 5}),  # not two environments
    ],
)
def test_roles_from_proxy_says_when_it_cannot_tell(
    servers: dict[str, ServerState], ports: dict[str, int | None]
) -> None:
    assert replies.roles_from_proxy(servers, ports) is None
