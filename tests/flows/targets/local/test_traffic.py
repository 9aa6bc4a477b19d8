"""Pure accounting of HAProxy's per-server counters into monotonic per-environment traffic."""

from __future__ import annotations

from flows.targets.base import TrafficCounters
from flows.targets.local import traffic
from flows.targets.local.plans import Endpoint
from flows.targets.local.replies import ServerSlot
from flows.targets.local.traffic import Counts, Ledger, ServerStat

HEADER = "# pxname,svname,stot,econ,eresp,hrsp_2xx,hrsp_5xx,req_tot,rtime,"


def stat_text(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n\n"


def test_parse_stat_reads_server_rows_only() -> None:
    text = stat_text(
        [
            "prod,FRONTEND,5,,,14,3,17,,",
            "prod,app,17,1,2,14,3,17,4,",
            "prod,canary,0,0,0,0,0,0,0,",
            "prod,BACKEND,17,0,0,14,3,17,4,",
            "preprod,app,9,0,0,9,0,,,",  # req_tot empty: stot instead
        ]
    )
    stats = traffic.parse_stat(text)
    assert stats == {
        "prod/app": ServerStat(Counts(17, 3, 3), 4.0),
        "prod/canary": ServerStat(Counts(0, 0, 0), 0.0),
        "preprod/app": ServerStat(Counts(9, 0, 0), None),
    }
    assert traffic.parse_stat("") == {}


def slots(prod_app: int, preprod_app: int, canary: int = 1) -> dict[str, ServerSlot]:
    return {
        "prod/app": ServerSlot("prod", "app", prod_app, True, 100),
        "prod/canary": ServerSlot("prod", "canary", canary, canary != 1, 0),
        "preprod/app": ServerSlot("preprod", "app", preprod_app, True, 1),
    }


def stats(prod: int, canary: int, preprod: int, errors: int = 0) -> dict[str, ServerStat]:
    return {
        "prod/app": ServerStat(Counts(prod, errors, 0), 5.0),
        "prod/canary": ServerStat(Counts(canary, 0, 0), None),
        "preprod/app": ServerStat(Counts(preprod, 0, 0), 7.0),
    }


PORTS = traffic.local_endpoints({"blue": 30001, "green": 30002})


def test_readings_stay_monotonic_across_a_swap() -> None:
    ledger = traffic.rebased(Ledger(), proxy_pid=10)
    before = slots(prod_app=30001, preprod_app=30002)  # blue on prod
    owned = traffic.owners(before, PORTS)
    assert owned == {"prod/app": "blue", "preprod/app": "green"}
    now = stats(prod=1000, canary=0, preprod=10, errors=4)
    blue = traffic.reading(ledger, now, owned, "blue")
    assert blue == TrafficCounters(1000, 4, 0, mean_response_ms=5.0)
    # the swap: bank first, then the servers change owners
    ledger = traffic.bank(ledger, now, owned)
    after = traffic.owners(slots(prod_app=30002, preprod_app=30001), PORTS)
    later = stats(prod=1500, canary=0, preprod=12, errors=4)
    blue_after = traffic.reading(ledger, later, after, "blue")
    green_after = traffic.reading(ledger, later, after, "green")
    assert (blue_after.requests, green_after.requests) == (1002, 510)  # prod's 500 new ones are green's
    assert blue_after.server_errors == 4 and green_after.server_errors == 0


def test_the_canary_server_counts_for_the_environment_it_points_at() -> None:
    ledger = traffic.rebased(Ledger(), proxy_pid=10)
    owned = traffic.owners(slots(30001, 30002, canary=30002), PORTS)
    assert owned["prod/canary"] == "green"
    assert traffic.reading(ledger, stats(90, 10, 5), owned, "green").requests == 15


def test_a_new_proxy_process_counts_from_zero_and_keeps_what_was_banked() -> None:
    owned = traffic.owners(slots(30001, 30002), PORTS)
    ledger = traffic.bank(traffic.rebased(Ledger(), 10), stats(100, 0, 0), owned)
    restarted = traffic.rebased(ledger, proxy_pid=11)
    assert restarted.baseline == {} and restarted.banked == ledger.banked
    assert traffic.reading(restarted, stats(3, 0, 0), owned, "blue").requests == 103
    # a counter found below its baseline (cleared) is all new
    assert traffic.reading(ledger, stats(7, 0, 0), owned, "blue").requests == 107
    assert traffic.rebased(ledger, 10) is ledger
    assert Ledger.from_json(ledger.to_json()) == ledger
    assert traffic.reading(Ledger(), {}, {}, "blue") == TrafficCounters(0, 0, 0, None)


def test_servers_of_a_fleet_are_credited_by_host_and_port() -> None:
    fleet = {
        "prod/node-1": ServerSlot("prod", "node-1", 9001, True, 1, "10.77.0.2"),
        "prod/node-2": ServerSlot("prod", "node-2", 9001, True, 1, "10.77.0.3"),
        "preprod/node-1": ServerSlot("preprod", "node-1", 9002, True, 1, "10.77.0.2"),
    }
    blue = [Endpoint("10.77.0.2", 9001), Endpoint("10.77.0.3", 9001)]
    green = [Endpoint("10.77.0.2", 9002), Endpoint("10.77.0.3", 9002)]
    assert traffic.owners(fleet, {"blue": blue, "green": green}) == {
        "prod/node-1": "blue",
        "prod/node-2": "blue",
        "preprod/node-1": "green",
    }
    assert traffic.local_endpoints({"blue": 30001, "green": None}) == {
        "blue": [Endpoint("127.0.0.1", 30001)],
        "green": [],
    }
