"""The built-in adapter for the Maven Analytics "CRM Sales Opportunities" sample.

It repairs the export's known quirks (see the sample's SOURCE.md) and then applies a plain
column mapping of its own, so every repair is reported with its count like any mapping's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from features.adapters.derive import rep_history
from features.adapters.spec import ColumnMapping, MappingError
from features.adapters.tables import AdapterResult, apply_mapping, missing
from features.adapters.text import clean_text, n, plural
from features.schemas import Leads, Reps
from features.timestamps import parse_dates

_MAVEN_RAW = {
    "sales_pipeline": (
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ),
    "accounts": ("account", "sector", "revenue", "employees", "office_location"),
    "products": ("product", "series", "sales_price"),
    "sales_teams": ("sales_agent", "manager", "regional_office"),
}
MAVEN_FILES = tuple(_MAVEN_RAW)
_MAVEN_OPEN = ("Engaging", "Prospecting")
# Misspellings in accounts.csv (see the sample's SOURCE.md), by column.
_MAVEN_SPELLING = {
    "sector": {"technolgy": "technology"},
    "office_location": {"Philipines": "Philippines"},
}

# What is left once the quirks are repaired: a plain column mapping over two prepared frames,
# "opportunities" (one row per deal, joined with its account and product) and "agents".
MAVEN_COLUMNS = ColumnMapping.parse(
    {
        "name": "maven",
        "description": "Maven Analytics CRM Sales Opportunities, after adapt_maven's repairs",
        "tables": {
            "leads": {
                "file": "opportunities",
                "columns": {
                    Leads.lead_id: "opportunity_id",
                    "created_at": "created",
                    "industry": "sector",
                    "region": "office_location",
                    "product": "product",
                    "company_size": "employees",
                    "expected_value": "sales_price",
                    "account_id": "account",
                    "x_account_revenue": "revenue",
                    "x_product_series": "series",
                },
                "defaults": {"source": "unknown"},
            },
            "assignments": {
                "file": "opportunities",
                "columns": {
                    Leads.lead_id: "opportunity_id",
                    Reps.rep_id: "sales_agent",
                    "assigned_at": "created",
                    "first_contact_at": "engage_date",
                    "status": "deal_stage",
                    "closed_at": "close_date",
                    "deal_value": "close_value",
                },
                "values": {
                    "status": {
                        "Won": "won",
                        "Lost": "lost",
                        "Engaging": "open",
                        "Prospecting": "open",
                    }
                },
            },
            "reps": {
                "file": "agents",
                "columns": {
                    Reps.rep_id: "sales_agent",
                    "name": "sales_agent",
                    "team": "manager",
                    "region": "regional_office",
                    "hire_date": "hire_date",
                    "daily_capacity": "daily_capacity",
                },
            },
        },
    }
)


def adapt_maven(raw: Mapping[str, pd.DataFrame], *, timezone: str = "UTC") -> AdapterResult:
    """The Maven "CRM Sales Opportunities" sample as canonical tables, its quirks repaired.

    ``raw``: text frames keyed by file stem: ``sales_pipeline``, ``accounts``, ``products``,
    ``sales_teams``. Opportunities are the leads, sales agents the reps (rep_id and name: the
    agent's name; team: their manager; region: their regional office, Central/East/West).
    A lead's industry is its account's sector, its region the account's headquarters country
    (office_location: not the same vocabulary as the reps' regions, so region-match rules do
    not apply to this data), its company_size the account's employees, its expected_value the
    product's sales_price, its account_id the account; x_account_revenue (USD millions) and
    x_product_series are extra lead features. Each deal is one assignment to its agent:
    assigned (and first contacted) on engage_date, status won/lost/open from deal_stage,
    closed_at the close_date, deal_value the close_value. Every repair is reported with counts.
    """
    lines = []
    for stem, columns in _MAVEN_RAW.items():
        lines += missing(
            f"{stem}.csv",
            raw.get(stem),
            dict.fromkeys(columns, "needed by the maven mapping"),
            list(raw),
            "needed by the maven mapping",
        )
    if lines:
        raise MappingError("\n".join(lines))
    pipeline, accounts, products, teams = (
        raw[stem][list(columns)].apply(clean_text) for stem, columns in _MAVEN_RAW.items()
    )
    repairs: list[str] = []
    pipeline = _maven_products(pipeline, products, repairs)
    accounts = _maven_spelling(accounts, pipeline, repairs)
    deals = pipeline.merge(accounts, on="account", how="left", validate="many_to_one")
    deals = deals.merge(products, on="product", how="left", validate="many_to_one")
    deals = _maven_accounts(deals, set(accounts["account"]), repairs)
    deals = _maven_values(deals, repairs)
    deals, as_of = _maven_dates(deals, repairs, timezone)
    agents = _maven_agents(teams, deals, as_of, repairs, timezone)
    result = apply_mapping(
        {"opportunities": deals, "agents": agents}, MAVEN_COLUMNS, timezone=timezone
    )
    return AdapterResult(
        result.data, repairs + result.repairs, _maven_origins(result, len(raw["sales_teams"]))
    )


def _maven_origins(result: AdapterResult, n_teams: int) -> dict[str, pd.DataFrame]:
    """Origins in the sample's own files: a deal's row of sales_pipeline.csv is its row of
    the prepared opportunities (merges keep the order), an agent's that of sales_teams.csv
    (agents added from the deals have none)."""
    out = {}
    for table, origin in result.origins.items():
        files = origin["file"].replace({"opportunities": "sales_pipeline", "agents": "sales_teams"})
        rows = origin["row"].where(~((origin["file"] == "agents") & (origin["row"] >= n_teams)))
        out[table] = origin.assign(file=files, row=rows)
    return out


def _maven_products(
    pipeline: pd.DataFrame, products: pd.DataFrame, repairs: list[str]
) -> pd.DataFrame:
    """Match product names that differ from products.csv only by spaces or case."""
    catalogue = set(products["product"].dropna())
    squashed = {re.sub(r"\s+", "", p).lower(): p for p in catalogue}
    names = pipeline["product"]
    for name in sorted(set(names.dropna()) - catalogue):
        fixed = squashed.get(re.sub(r"\s+", "", name).lower())
        count = int((names == name).sum())
        if fixed is None:
            repairs.append(
                f"product {name!r} is not in products.csv ({plural(count, 'deal')}): "
                "expected_value left empty"
            )
        else:
            names = names.mask(names == name, fixed)
            repairs.append(
                f"product {name!r} renamed to {fixed!r} (its name in products.csv) "
                f"in {plural(count, 'deal')}"
            )
    return pipeline.assign(product=names)


def _maven_spelling(
    accounts: pd.DataFrame, pipeline: pd.DataFrame, repairs: list[str]
) -> pd.DataFrame:
    for column, fixes in _MAVEN_SPELLING.items():
        values = accounts[column]
        for wrong, right in fixes.items():
            hit = (values == wrong).fillna(False).astype(bool)
            if hit.any():
                deals = pipeline["account"].isin(accounts.loc[hit, "account"]).sum()
                repairs.append(
                    f"{column} {wrong!r} corrected to {right!r} in "
                    f"{plural(hit.sum(), 'account')} ({plural(deals, 'deal')})"
                )
                values = values.mask(hit, right)
        accounts = accounts.assign(**{column: values})
    return accounts


def _maven_accounts(deals: pd.DataFrame, known: set[str], repairs: list[str]) -> pd.DataFrame:
    """Deals without a (known) account: industry and region 'unknown', the rest empty."""
    no_account = deals["account"].isna()
    unknown = deals["account"].notna() & ~deals["account"].isin(known)
    is_open = deals["deal_stage"].isin(_MAVEN_OPEN)
    for mask, what in (
        (no_account, "have no account"),
        (unknown, "name an account not in accounts.csv"),
    ):
        for stage_mask, kind in (
            (is_open, "open deals (Engaging/Prospecting)"),
            (~is_open, "closed deals"),
        ):
            count = (mask & stage_mask).sum()
            if count:
                repairs.append(
                    f"{n(count)} {kind} {what}: industry and region set to 'unknown', "
                    "company_size and account_id left empty"
                )
    missing = no_account | unknown
    return deals.assign(
        sector=deals["sector"].mask(missing, "unknown"),
        office_location=deals["office_location"].mask(missing, "unknown"),
        account=deals["account"].mask(unknown),
    )


def _maven_values(deals: pd.DataFrame, repairs: list[str]) -> pd.DataFrame:
    lost_zero = (deals["deal_stage"] == "Lost") & (pd.to_numeric(deals["close_value"]) == 0)
    if lost_zero.any():
        repairs.append(
            f"{plural(lost_zero.sum(), 'lost deal')} with close_value 0: deal_value left empty "
            "(0 is what a lost deal earned, not its size)"
        )
    return deals.assign(close_value=deals["close_value"].mask(lost_zero))


def _maven_dates(
    deals: pd.DataFrame, repairs: list[str], timezone: str
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Deals not yet engaged (Prospecting) have no engage_date: they are owned by their agent
    but untouched, so they are taken as created and assigned on the export date."""
    engaged = deals["engage_date"].notna()
    as_of = pd.concat(
        [parse_dates(deals[c], timezone=timezone) for c in ("engage_date", "close_date")]
    ).max()
    stages = deals.loc[~engaged, "deal_stage"].value_counts()
    if len(stages):
        by_stage = ", ".join(f"{n(c)} {s}" for s, c in stages.items())
        repairs.append(
            f"{n((~engaged).sum())} deals have no engage_date ({by_stage}): they keep their "
            f"agent as open deals not yet contacted; created_at and assigned_at set to the "
            f"export date {as_of:%Y-%m-%d} (the latest date in the file), first_contact_at "
            "left empty"
        )
    repairs.append(
        f"first_contact_at set to engage_date (the day the agent began engaging) for "
        f"{plural(engaged.sum(), 'deal')}"
    )
    created = deals["engage_date"].fillna(f"{as_of:%Y-%m-%d}")
    return deals.assign(created=created), as_of


def _maven_agents(
    teams: pd.DataFrame,
    deals: pd.DataFrame,
    as_of: pd.Timestamp,
    repairs: list[str],
    timezone: str,
) -> pd.DataFrame:
    """Agents with hire_date and daily_capacity derived from their engaged deals only: the
    export dates given to Prospecting deals are not days on which the agent took leads."""
    extra = sorted(set(deals["sales_agent"].dropna()) - set(teams["sales_agent"]))
    if extra:
        repairs.append(
            f"{n(len(extra))} agents have deals but are not in sales_teams.csv "
            f"({', '.join(extra[:10])}): added as reps with no team or region"
        )
        teams = pd.concat([teams, pd.DataFrame({"sales_agent": extra})], ignore_index=True)
    engaged = deals[deals["engage_date"].notna()]
    derived, notes = rep_history(
        teams["sales_agent"],
        engaged["sales_agent"],
        parse_dates(engaged["engage_date"], timezone=timezone),
        as_of,
        "engage_date",
        ["hire_date", "daily_capacity"],
    )
    repairs.extend(notes)
    return teams.assign(
        hire_date=derived["hire_date"].to_numpy(),
        daily_capacity=derived["daily_capacity"].to_numpy(),
    )
