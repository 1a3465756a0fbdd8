import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

# Under pytest-xdist (make test runs two workers on two cores) each worker, and every stage it starts, gets one
# thread: two workers with two threads each oversubscribe the cores, and torch's spinning threads then run some
# tests 20 times slower. Thread counts change speed, not results (stages/core/common/threads.py).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in ("FACEPARSE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with the reason when it is absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA} (only developer machines and CI have it)")
    return SHARED_DATA
