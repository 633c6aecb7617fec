"""Shared fixtures: a tiny valid CRM data set built by hand, and the path of the shared samples."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from features.schemas import CrmData

# Prefect reads its settings when first imported: keep its database out of the user's home and give
# its temporary server time to start on a small machine.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="leadmatch-prefect-"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Tests name their MLflow stores themselves; a developer's own store must not take their place.
os.environ.pop("LEADMATCH_HOME", None)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def tiny_crm() -> CrmData:
    """Three reps, five leads, four assignment rows: the smallest interesting valid data set."""
    reps = pd.DataFrame(
        {
            "rep_id": ["R1", "R2", "R3"],
            "name": ["Ana", "Bo", "Chen"],
            "team": ["north", "north", "south"],
            "region": ["EU", "EU", "APAC"],
            "hire_date": ["2020-01-06", "2023-06-01", "2024-01-15"],
            "skills": ["retail;software", "retail", ""],
            "daily_capacity": ["5", "4", "3"],
            "active": ["true", "yes", "0"],
        }
    )
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4", "L5"],
            "created_at": [
                "2024-03-01 09:00",
                "2024-03-01 10:30",
                "2024/3/2",
                "2024-03-04",
                "2024-03-04 16:00:00",
            ],
            "source": ["web", "event", "web", "referral", "web"],
            "industry": ["retail", "software", "retail", None, "retail"],
            "region": ["EU", "EU", "APAC", "EU", "EU"],
            "product": ["basic", "pro", "basic", "pro", "basic"],
            "expected_value": ["1000", "5000.5", "800", "", "1200"],
        }
    )
    assignments = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4"],
            "rep_id": ["R1", "R2", "R1", "R2"],
            "assigned_at": ["2024-03-01 09:05", "2024-03-01 11:00", "2024-03-02", "2024-03-04"],
            "first_contact_at": ["2024-03-01 10:00", None, "2024-03-03", None],
            "status": ["won", "lost", "open", "open"],
            "closed_at": ["2024-03-20", "2024-03-10", None, None],
            "deal_value": ["900", "0", None, None],
        }
    )
    return CrmData(reps=reps, leads=leads, assignments=assignments)


@pytest.fixture
def tiny() -> CrmData:
    return tiny_crm()


@pytest.fixture
def maven_folder() -> Path:
    folder = SHARED_DATA / "maven-crm-sales-opportunities"
    if not folder.is_dir():
        pytest.skip("the shared Maven sample is not present (../shared/data)")
    return folder


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (starting one costs ~25 s here)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def small_world():
    """The seeded `small` simulated world, shared by the session (do not mutate it)."""
    from simulation import simulate

    return simulate("small", seed=0)


@pytest.fixture(scope="session")
def small_folder(small_world, tmp_path_factory):
    """The `small` world written as a canonical data folder."""
    from pipelines.io import write_data_folder

    folder = tmp_path_factory.mktemp("small") / "crm"
    write_data_folder(small_world.data, folder)
    return folder


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A tracking config whose MLflow store lives in a fresh temporary folder."""
    from pipelines.config import TrackingConfig

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return TrackingConfig(root=tmp_path / "mlflow")
