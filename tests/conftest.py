"""Shared fixtures. Test evidence lives in ../shared/testdata (read-only, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

import triage  # noqa: F401  (installs the offline guard in this process too)
from tests.support import TESTDATA


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.fail(f"shared test data not found at {TESTDATA}")
    return TESTDATA


