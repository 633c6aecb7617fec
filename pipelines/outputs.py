"""Manager-facing files: CSVs that open correctly in any Excel (UTF-8 with BOM), in English or
Simplified Chinese, safe to open (no formulas, no cell over Excel's limit), written so that the
same inputs give byte-identical files, and checked against their schemas when written and when
read back.

The plan's files (see :mod:`matching.summary` for the columns): ``assignments.csv`` (one row
per lead and action), ``rep_summary.csv`` (one row per rep) and ``left_out.csv`` (leads older
than the maximum age, which the run did not place).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.schemas import Leads, Reps
from matching.explain import Plural, ReasonCatalogue, render
from matching.summary import LeftOut, ManagerPlan, PlanAssignments, PlanRepSummary

LANGUAGES = ("en", "zh")
PLAN_FILES: dict[str, type[pa.DataFrameModel]] = {
    "assignments.csv": PlanAssignments,
    "rep_summary.csv": PlanRepSummary,
    "left_out.csv": LeftOut,
}

EXCEL_CELL_LIMIT = 32_767
"""Excel keeps at most this many characters in a cell; longer text is cut, ending in '…'."""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A text cell starting with one of these is read by spreadsheets as a formula (OWASP CSV
injection): it is written with a leading apostrophe, unless it is a plain number."""
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

DEFAULT_DECIMALS = 4
PLAN_DECIMALS = {
    "lead_win_chance_pct": 1,
    "rep_win_chance_pct": 1,
    "uplift_pts": 1,
    "expected_revenue": 2,
    "tier_A_in_proportion": 1,
    "expected_wins": 2,
    "capacity_used_pct": 1,
    "value_share_pct": 1,
    "fair_share_pct": 1,
    "share_gap_pts": 1,
}
"""Decimals per column of the plan's CSVs (others: :data:`DEFAULT_DECIMALS`)."""

ZH_HEADERS = {
    "run_date": "运行日期",
    Leads.lead_id: "线索编号",
    "action": "操作",
    Reps.rep_id: "销售编号",
    "rep_name": "销售姓名",
    "previous_rep_id": "原负责人编号",
    "previous_rep_name": "原负责人",
    "tier": "线索等级",
    "lead_win_chance_pct": "轮流分配基准赢单率(%)",
    "rep_win_chance_pct": "该销售赢单率(%)",
    "uplift_pts": "相对基准提升(百分点)",
    "rank_for_lead": "匹配顺位",
    "best_rep_id": "最佳销售编号",
    "expected_revenue": "预期收入",
    "reason": "原因",
    "team": "团队",
    "available": "今日在岗",
    "capacity": "今日容量",
    "assigned": "今日分配数",
    "kept": "保留数",
    "tier_A": "A级线索数",
    "tier_B": "B级线索数",
    "tier_C": "C级线索数",
    "tier_A_in_proportion": "按容量应得A级线索数",
    "expected_wins": "预计赢单数",
    "capacity_used_pct": "容量使用率(%)",
    "value_share_pct": "线索价值份额(%)",
    "fair_share_pct": "公平份额(%)",
    "share_gap_pts": "份额偏差(百分点)",
    "open_load_after": "分配后在跟进线索数",
    "created_at": "创建日期",
    "age_days": "已创建天数",
}
ZH_ACTIONS = {"assign": "分配", "reassign": "改派", "keep": "保留", "hold": "暂缓"}
ZH_BOOL = {True: "是", False: "否"}

ZH_REASONS = {
    "best_rep": "在有空余容量的销售中预计赢单率最高",
    "only_rep": "唯一符合条件的销售",
    "pinned": "经理指定给{rep_id}",
    "account_owner": "{rep_id}已负责客户{account_id}",
    "no_rep_signal": "历史数据显示销售之间无可靠差异：按线索价值和工作量均衡分配",
    "capacity": "{rank_ordinal}：{best_rep_id}已满负荷",
    "value_share": "{rank_ordinal}：{best_rep_id}已获得其公平份额的线索价值",
    "value_share_min": "{rank_ordinal}：使{rep_id}达到其公平份额的线索价值",
    "new_rep_quota": "{rank_ordinal}：新人优质线索配额",
    "top_tier_cap": "{rank_ordinal}：{best_rep_id}的优质线索已达上限",
    "tradeoff": "{rank_ordinal}：更合适的销售在其他线索上收益更大",
    "round_robin": "轮流分配",
    "weighted_round_robin": "按容量加权轮流分配",
    "reclaimed": "{previous_rep_id}已{days_without_contact}个工作日未联系，收回",
    "rep_left": "{previous_rep_id}已离开团队",
    "keep": "仍由{rep_id}跟进：今天没有其他销售可以接手；请提醒{rep_id}尽快首次联系（已{days_without_contact}个工作日未联系）",
    "hold_no_candidates": "暂缓到明天：没有为该线索评分的销售",
    "hold_no_eligible": "暂缓到明天：没有符合条件的销售（{why}）",
    "hold_capacity": Plural(
        "n_eligible",
        "暂缓到明天：唯一符合条件的销售已满负荷",
        "暂缓到明天：{n_eligible}名符合条件的销售均已满负荷",
    ),
}
ZH_CAUSES = {
    "inactive": "{n}名已停用",
    "absent": "{n}名缺勤",
    "excluded": "{n}名被排除",
    "previous_rep": "原负责人",
    "pinned_elsewhere": "已指定给其他销售",
    "account_elsewhere": "客户由其他销售负责",
    "region": "{n}名不在该区域",
    "skills": "{n}名缺少技能",
    "language": "{n}名不会该语言",
}


def chinese_ordinal(n: int) -> str:
    """1 -> 首选, 2 -> 次选, n -> 第n顺位 (a rep's place among a lead's choices)."""
    return {1: "首选", 2: "次选"}.get(n, f"第{n}顺位")


CHINESE = ReasonCatalogue(
    templates=ZH_REASONS,
    causes=ZH_CAUSES,
    ordinal=chinese_ordinal,
    separator="；",
    list_separator="，",
)


def safe_cell(text: str) -> str:
    """``text`` as a spreadsheet should receive it: a leading apostrophe when it would start a
    formula (and is not a plain number), cut at :data:`EXCEL_CELL_LIMIT` characters."""
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        text = "'" + text
    if len(text) > EXCEL_CELL_LIMIT:
        text = text[: EXCEL_CELL_LIMIT - 1] + "…"
    return text


def _unsafe_cell(text: str) -> str:
    """The text :func:`safe_cell` was given (a cut cell stays cut)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def write_csv(frame: pd.DataFrame, path: Path, decimals: dict[str, int] | None = None) -> None:
    """Write ``frame`` as UTF-8 with BOM and "\\n" line ends, byte-stable: floats with fixed
    decimals (``decimals`` by column, else :data:`DEFAULT_DECIMALS`), dates as YYYY-MM-DD,
    text through :func:`safe_cell`."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_float_dtype(values):
            places = (decimals or {}).get(column, DEFAULT_DECIMALS)
            # round first, so that -0.04 written with 1 decimal reads 0.0, not -0.0
            rounded = values.round(places) + 0.0
            out[column] = rounded.map(lambda v, p=places: "" if np.isnan(v) else f"{v:.{p}f}")
        elif pd.api.types.is_datetime64_any_dtype(values):
            out[column] = values.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_string_dtype(values) or values.dtype == object:
            out[column] = values.map(lambda v: safe_cell(v) if isinstance(v, str) else v)
    out.columns = [safe_cell(str(c)) for c in out.columns]
    out.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")


def localise(frame: pd.DataFrame, lang: str, *, reasons: pd.Series | None = None) -> pd.DataFrame:
    """``frame`` with headers and words in ``lang`` ("en" leaves it as it is; "zh": Simplified
    Chinese). ``reasons`` replaces the ``reason`` column when given."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: use en or zh")
    if lang == "en":
        return frame
    out = frame.copy()
    if "action" in out:
        out["action"] = out["action"].map(ZH_ACTIONS).fillna(out["action"])
    if "available" in out:
        out["available"] = out["available"].map(ZH_BOOL)
    if reasons is not None and "reason" in out:
        out["reason"] = reasons.to_numpy()
    return out.rename(columns=ZH_HEADERS)


def chinese_reasons(plan: ManagerPlan) -> pd.Series:
    """The plan's reasons in Simplified Chinese (reps by name)."""
    return render(plan.explanations, CHINESE, plan.labels)


def write_plan(plan: ManagerPlan, folder: Path, lang: str) -> None:
    """Write the plan's CSV files (:data:`PLAN_FILES`) into ``folder`` in ``lang``, each
    checked against its schema first."""
    reasons = chinese_reasons(plan) if lang == "zh" else None
    frames = {
        "assignments.csv": localise(
            PlanAssignments.validate(plan.assignments), lang, reasons=reasons
        ),
        "rep_summary.csv": localise(PlanRepSummary.validate(plan.rep_summary), lang),
        "left_out.csv": localise(LeftOut.validate(plan.left_out), lang),
    }
    decimals = {ZH_HEADERS[k] if lang == "zh" else k: v for k, v in PLAN_DECIMALS.items()}
    for name, frame in frames.items():
        write_csv(frame, folder / name, decimals)


def read_plan_csv(path: Path) -> pd.DataFrame:
    """One of the plan's CSV files read back (English or Chinese) as its English frame,
    validated by its schema (``pandera.errors.SchemaError`` when it does not hold)."""
    model = PLAN_FILES[path.name]
    frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    english = {v: k for k, v in ZH_HEADERS.items()}
    frame = frame.rename(columns=lambda c: english.get(_unsafe_cell(c), _unsafe_cell(c)))
    frame = frame.replace("", np.nan)
    if "action" in frame:
        frame["action"] = frame["action"].replace({v: k for k, v in ZH_ACTIONS.items()})
    if "available" in frame:
        truth = {"True": True, "False": False, **{v: k for k, v in ZH_BOOL.items()}}
        frame["available"] = frame["available"].map(truth)
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(
                lambda v: _unsafe_cell(v) if isinstance(v, str) else v
            )
    if "rank_for_lead" in frame:
        frame["rank_for_lead"] = pd.to_numeric(frame["rank_for_lead"]).astype("Int64")
    return model.validate(frame)
