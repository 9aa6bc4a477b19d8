"""`deliverypipeline swarm status`: every node of the swarm, its state, each environment's version on it."""

from __future__ import annotations

from flows.config import PipelineConfig
from flows.targets.swarm.decisions import node_versions
from flows.targets.swarm.engine import SwarmEngine, SwarmError
from flows.targets.swarm.services import service_name


def _roles(config: PipelineConfig) -> dict[str, str]:
    """Environment -> the edge address it holds (prod/preprod), as the edge last recorded it."""
    from flows.targets.swarm.edge import SwarmEdge

    addresses = {"prod": config.prod_address, "preprod": config.preprod_address}
    ports = dict(zip(config.environments, config.swarm.ports, strict=True))
    edge = SwarmEdge(config.swarm.state_dir, addresses, config.environments, ports, config.swarm.health_path)
    return {env: role for role, env in edge.roles().items()}


def node_rows(
    config: PipelineConfig, engine: SwarmEngine | None = None
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The table's header and one row per node: name, address, state, role, then a version per environment."""
    engine = engine or SwarmEngine(config.swarm.manager)
    try:
        problem = engine.manager_problem()
        if problem is not None:
            raise SwarmError(problem)
        nodes = sorted(engine.nodes(), key=lambda node: node.hostname)
        versions: dict[str, dict[str, str]] = {}
        for environment in config.environments:
            service = engine.service(service_name(config.application, environment))
            tasks = engine.tasks(service) if service is not None else []
            versions[environment] = node_versions(tasks, nodes)
    finally:
        engine.close()
    roles = _roles(config)
    header = (
        "NODE",
        "ADDRESS",
        "STATE",
        "ROLE",
        *(f"{env.upper()} ({roles[env]})" if env in roles else env.upper() for env in config.environments),
    )
    rows = [
        (
            node.hostname,
            node.address,
            f"{node.state}/{node.availability}",
            node.role,
            *(versions[env][node.hostname] for env in config.environments),
        )
        for node in nodes
    ]
    return header, rows
