"""Fixtures of the manifest tests: each overlay in turn."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The tests import their shared helpers (k8s_kit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from k8s_kit import OVERLAYS


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name
