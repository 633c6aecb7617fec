"""Small histories without reps, written the way real exports come: a web-form leads file
beside a deals file (read through a YAML mapping), and a canonical folder without reps.csv.

The leads convert by industry and source (retail from referrals best, healthcare from paid
social worst), so a lead-only model has something real to find; dates are zoned API
timestamps (``2024-03-01T09:15:00Z``) in the form file and plain dates in the deals file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

EXPORT_END = pd.Timestamp("2024-11-05")
RUN_DATE = "2024-11-06"
INDUSTRIES = {"Retail": 0.55, "Software": 0.35, "Manufacturing": 0.2, "Healthcare": 0.08}
SOURCES = {"Referral": 1.3, "Organic Search": 1.0, "Webinar": 0.9, "Paid Social": 0.6}
COUNTRIES = ["United States", "Germany", "Singapore", "Brazil"]

WEBFORM_MAPPING = """
name: webform-deals
description: a web-form leads export and a deals export, no owners (lead scoring)
filters:
  - file: form_submissions.csv
    column: Work Email
    matches: "(?i)@example\\\\.com$"
    reason: test submissions
tables:
  leads:
    file: form_submissions.csv
    columns:
      lead_id: Submission ID
      created_at: Submitted At
      source: How did you hear about us?
      industry: Industry
      region: Country
      company_size: Employees
    defaults:
      product: unknown
  assignments:
    file: deals.csv
    columns:
      lead_id: Lead ID
      assigned_at: Deal Created
      status: Deal Stage
      closed_at: Close Date
      deal_value: Amount
    values:
      status:
        Closed Won: won
        Closed Lost: lost
        "*": open
"""


def leads_and_deals(n: int = 1500, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(form submissions, deals) of ``n`` leads created over the year before
    :data:`EXPORT_END`; about 85% became a deal (most within days, some weeks later), the rest
    are still untouched."""
    rng = np.random.default_rng(seed)
    start = EXPORT_END - pd.Timedelta(days=365)
    created = start + pd.to_timedelta(np.sort(rng.uniform(0, 364, n)), unit="D")
    created = created.round("min")
    industry = rng.choice(list(INDUSTRIES), n)
    source = rng.choice(list(SOURCES), n)
    chance = np.array([INDUSTRIES[i] * SOURCES[s] for i, s in zip(industry, source, strict=True)])
    ids = [f"F{1000 + i}" for i in range(n)]
    leads = pd.DataFrame(
        {
            "Submission ID": ids,
            "Submitted At": created.strftime("%Y-%m-%dT%H:%M:00Z"),
            "First Name": rng.choice(["Ana", "Bo", "Chen", "Dara", "Eli"], n),
            # Two test submissions from the team itself, which the mapping filters out.
            "Work Email": [
                f"test{i}@example.com" if i in (3, 4) else f"contact{i}@company{i % 37}.io"
                for i in range(n)
            ],
            "How did you hear about us?": source,
            "Industry": industry,
            "Country": rng.choice(COUNTRIES, n),
            "Employees": rng.integers(5, 5000, n).astype(str),
        }
    )
    has_deal = rng.random(n) < 0.85
    # A lead followed up weeks late converts less: its age when the deal opens matters.
    waited = rng.exponential(12, n)
    opened = created + pd.to_timedelta(waited, unit="D")
    closes = opened + pd.to_timedelta(rng.uniform(7, 80, n), unit="D")
    won = rng.random(n) < np.clip(chance * np.exp(-waited / 25), 0, 0.95)
    closed = closes < EXPORT_END
    stage = np.where(~closed, "Proposal Sent", np.where(won, "Closed Won", "Closed Lost"))
    deals = pd.DataFrame(
        {
            "Deal ID": [f"D{5000 + i}" for i in range(n)],
            "Lead ID": ids,
            "Deal Created": opened.strftime("%Y-%m-%d"),
            "Deal Stage": stage,
            # Open deals carry the expected close date, as CRMs export it.
            "Close Date": closes.strftime("%Y-%m-%d"),
            "Amount": np.where(stage == "Closed Won", rng.integers(1, 40, n) * 500, 0).astype(str),
        }
    )
    deals.loc[deals["Deal Stage"] != "Closed Won", "Amount"] = ""
    return leads, deals.loc[has_deal].reset_index(drop=True)


def write_webform_export(folder: Path, n: int = 1500, seed: int = 7) -> Path:
    """The form and deals files in ``folder``; returns the path of their YAML mapping (written
    beside the folder)."""
    leads, deals = leads_and_deals(n, seed)
    folder.mkdir(parents=True, exist_ok=True)
    leads.to_csv(folder / "form_submissions.csv", index=False)
    deals.to_csv(folder / "deals.csv", index=False)
    mapping = folder.parent / f"{folder.name}-mapping.yaml"
    mapping.write_text(WEBFORM_MAPPING.lstrip(), encoding="utf-8")
    return mapping


def write_canonical_lead_folder(folder: Path, n: int = 1500, seed: int = 7) -> Path:
    """The same kind of history as canonical leads.csv and assignments.csv, with no reps.csv
    and no rep_id column; deals in progress are open rows."""
    leads, deals = leads_and_deals(n, seed)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "lead_id": leads["Submission ID"],
            "created_at": leads["Submitted At"],
            "source": leads["How did you hear about us?"],
            "industry": leads["Industry"],
            "region": leads["Country"],
            "product": "standard",
            "company_size": leads["Employees"],
        }
    ).to_csv(folder / "leads.csv", index=False)
    status = deals["Deal Stage"].map({"Closed Won": "won", "Closed Lost": "lost"}).fillna("open")
    pd.DataFrame(
        {
            "lead_id": deals["Lead ID"],
            "assigned_at": deals["Deal Created"],
            "status": status,
            "closed_at": deals["Close Date"].where(status != "open", ""),
            "deal_value": deals["Amount"],
        }
    ).to_csv(folder / "assignments.csv", index=False)
    return folder
