"""The release stage's fixtures."""

from __future__ import annotations

import pytest

from flows.config import PipelineConfig


@pytest.fixture
def config() -> PipelineConfig:
    """The default configuration."""
    return PipelineConfig()
