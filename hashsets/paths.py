"""Where the hash-set store lives, without importing the store (and numpy): a scan that
only needs the path (the block-hash set beside the store, issue 17) stays light (issue 13:
start-up and the supervisor's CPU)."""

from __future__ import annotations

import os
from pathlib import Path

STORE_ENV = "TRIAGE_HASHSET_STORE"
STORE_FILE = "hashsets.sqlite"


def default_store_path() -> Path:
    """``$TRIAGE_HASHSET_STORE``, else ``platformdirs.user_data_dir("triage")/hashsets.sqlite``."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("triage")) / STORE_FILE
