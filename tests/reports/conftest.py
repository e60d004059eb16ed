from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reports.helpers import build_case


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The hostile-name corpus, scanned and matched (exact, near and known hits)."""
    return build_case(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def case_copy(hostile: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the corpus case, for tests that export into or tamper with it."""
    from tests.reports.helpers import copy_case

    return copy_case(hostile["case"], tmp_path / "case")
