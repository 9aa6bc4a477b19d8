"""The retention job: images of old releases leave the engine and the registry.

Beyond the last `local.keep_releases` releases, never the running ones (which versions go is
decided in `guards.versions_to_prune`). The registry is asked through `flows.registry`, by
manifest digest, unless a kept version shares it. Best effort: a failure is a WARN event.
"""

from __future__ import annotations

import contextlib

from flows.registry import client as registry
from flows.registry.names import split_image
from flows.targets.local import guards
from flows.targets.local.engine import Docker
from flows.targets.local.site import Site


class Retention:
    """Prunes one local target's old release images."""

    def __init__(self, site: Site) -> None:
        """Reads the deploy history from the site's state."""
        self.site = site

    def _kept_digests(self, refs: set[str]) -> set[str]:
        """The registry digests of the images kept (an unknown digest is compared against nothing)."""
        digests: set[str] = set()
        for ref in refs:
            parts = split_image(ref)
            if parts is not None:
                with contextlib.suppress(Exception):
                    digest = registry.manifest_digest(*parts)
                    if digest:
                        digests.add(digest)
        return digests

    def prune(self, environment: str, docker: Docker | None = None) -> list[str]:
        """Remove the images of versions beyond the last `keep_releases`, never the running ones.

        From the engine and, for images named after a registry, from the registry. Each failure
        is a WARN event of `environment`, never raised: retention must not fail a release.
        Returns the pruned image references. `docker`: the engine connection to use (default the
        site's; the background clean-up has its own).
        """
        site = self.site
        keep = site.config.local.keep_releases
        state = site.state.read()
        running = {serving.version for serving in state.current.values()}
        doomed = guards.versions_to_prune(state.releases, state.versions, running, keep)
        if not doomed:
            return []
        kept_digests = self._kept_digests({reg.image for v, reg in state.versions.items() if v not in doomed})
        pruned = []
        for version in doomed:
            ref = state.versions[version].image
            try:
                where = []
                if (docker or site.docker).remove_image(ref):
                    where.append("engine")
                parts = split_image(ref)
                if parts is not None:
                    digest = registry.manifest_digest(*parts)
                    if digest is not None and digest not in kept_digests:
                        registry.delete_from_registry(parts.registry, parts.repository, digest)
                        where.append("registry")
            except Exception as exc:  # retention is best effort: say what is left, go on
                site.log.add(
                    environment,
                    f"could not prune image {ref} of version {version}: {exc}; "
                    f"remove it by hand (`docker rmi {ref}`)",
                    "WARN",
                )
                continue
            with site.state.update() as changed:
                changed.versions.pop(version, None)
                changed.releases = [v for v in changed.releases if v != version]
            pruned.append(ref)
            site.log.add(
                environment,
                f"pruned image {ref} of version {version} ({', '.join(where) or 'already gone'}): "
                f"beyond the last {keep} releases",
            )
        return pruned
