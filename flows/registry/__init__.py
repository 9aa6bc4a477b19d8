"""The container registry's v2 HTTP API: the one client every stage and target asks a registry with.

The image stage asks whether a tag is already pushed; the local target's retention deletes the
manifests of old releases. Neither owns the other, so the client lives here, below both.
"""
