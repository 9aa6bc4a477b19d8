"""Deployment targets: where a released version runs as two environments whose addresses swap."""
