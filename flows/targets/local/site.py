"""What every job of one local target shares: its configuration, files, identity and engine.

The jobs (`proxy`, `deploy`, `recovery`, `retention`) each take a `Site` rather than each other,
so they stay apart; `LocalTarget` builds one and composes the jobs over it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from flows.clock import SYSTEM_CLOCK, Clock
from flows.config import PipelineConfig
from flows.targets.local import engine, guards
from flows.targets.local.containers import LABEL_APP, LABEL_TARGET
from flows.targets.local.engine import Docker
from flows.targets.local.errors import LocalTargetError
from flows.targets.local.state import EventLog, LocalState, StateFile, file_lock
from flows.targets.local.status import ContainerFacts


class Site:
    """One local target's configuration, state files, event log, identity and engine connection."""

    def __init__(
        self,
        config: PipelineConfig,
        run: str,
        client: Any | None = None,
        extra_labels: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`client`: a Docker SDK client (default: from the environment, on first use).

        `run` goes on the containers' `deliverypipeline.run` label; `extra_labels` on every
        container (tests label theirs to remove exactly those); `clock` times the waits.
        """
        self.config = config
        self.environment_names = tuple(config.environments)
        self.state_dir = config.local.state_dir.absolute()
        self.state = StateFile(self.state_dir)
        self.log = EventLog(self.state_dir)
        self.identity = guards.target_identity(self.state_dir)
        self.run = run
        self.extra_labels = dict(extra_labels or {})
        self.clock = clock
        self._client = client
        self._docker: Docker | None = None

    @property
    def docker(self) -> Docker:
        """The Docker executor, connecting on first use."""
        if self._docker is None:
            self._docker = Docker(self._client if self._client is not None else engine.connect())
        return self._docker

    def own_docker(self) -> Docker:
        """An engine connection for a background thread: the SDK's client is not shared between
        threads (an injected client, the tests', is used as it is). Close it with `close_own`."""
        if self._client is not None:
            return self.docker
        return Docker(engine.connect())

    def close_own(self, docker: Docker) -> None:
        """Close a connection `own_docker` opened (never the shared one)."""
        if docker is not self._docker:
            docker.close()

    def ops_lock(self) -> contextlib.AbstractContextManager[None]:
        """The short lock around reading the proxy and changing it with the state file."""
        return file_lock(self.state_dir / "ops.lock")

    def labels(self) -> dict[str, str]:
        """The labels every container of this target carries (and is found by)."""
        return {LABEL_APP: self.config.application, LABEL_TARGET: self.identity, **self.extra_labels}

    def check_environment(self, environment: str) -> None:
        """Raise `LocalTargetError` for an environment this target does not have."""
        if environment not in self.environment_names:
            raise LocalTargetError(
                f"unknown environment {environment!r}; this target has {', '.join(self.environment_names)}"
            )

    def serving_facts(self, state: LocalState) -> dict[str, ContainerFacts | None]:
        """Each environment's serving container as the engine sees it (None: none recorded or gone)."""
        facts: dict[str, ContainerFacts | None] = {}
        for env in self.environment_names:
            serving = state.current.get(env)
            facts[env] = self.docker.facts(serving.container) if serving else None
        return facts
