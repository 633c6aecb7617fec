"""Manager-facing files: CSVs that open correctly in any Excel (UTF-8 with BOM), in English or
Simplified Chinese, written so that the same inputs give byte-identical files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from matching.explain import ReasonCatalogue, render

ASSIGNMENT_COLUMNS = [
    "run_date",
    "lead_id",
    "action",
    "rep_id",
    "rep_name",
    "previous_rep_id",
    "p_win",
    "p_baseline",
    "uplift",
    "expected_value",
    "tier",
    "rank_for_lead",
    "best_rep_id",
    "reason",
]

REP_SUMMARY_COLUMNS = [
    "rep_id",
    "rep_name",
    "team",
    "available",
    "capacity",
    "assigned",
    "tier_A",
    "tier_B",
    "tier_C",
    "expected_wins",
    "expected_value",
    "capacity_used",
    "value_share",
    "fair_share",
    "share_vs_fair",
    "open_load_after",
]

ZH_HEADERS = {
    "run_date": "运行日期",
    "lead_id": "线索编号",
    "action": "操作",
    "rep_id": "销售编号",
    "rep_name": "销售姓名",
    "previous_rep_id": "原负责人",
    "p_win": "预计赢单率",
    "p_baseline": "轮询基准赢单率",
    "uplift": "提升",
    "expected_value": "预期价值",
    "tier": "等级",
    "rank_for_lead": "该线索中的排名",
    "best_rep_id": "最佳销售",
    "reason": "原因",
    "team": "团队",
    "available": "今日可用",
    "capacity": "今日容量",
    "assigned": "今日分配",
    "tier_A": "A级线索",
    "tier_B": "B级线索",
    "tier_C": "C级线索",
    "expected_wins": "预计赢单数",
    "capacity_used": "容量使用率",
    "value_share": "价值份额",
    "fair_share": "公平份额",
    "share_vs_fair": "份额差",
    "open_load_after": "今日后在跟进线索",
}
ZH_ACTIONS = {"assign": "分配", "reassign": "重新分配", "hold": "暂缓"}
ZH_BOOL = {True: "是", False: "否"}

FLOAT_DECIMALS = 4

ZH_REASONS = {
    "best_rep": "在可用销售中预计赢单率最高",
    "only_rep": "唯一符合条件的销售",
    "pinned": "经理指定给{rep_id}",
    "account_owner": "{rep_id}已负责客户{account_id}",
    "no_rep_signal": "销售之间无可靠差异：按线索价值和负荷均衡分配",
    "capacity": "第{rank}选择：{best_rep_id}已满负荷",
    "value_share": "第{rank}选择：{best_rep_id}已获得其公平份额的线索价值",
    "value_share_min": "第{rank}选择：使{rep_id}达到其公平份额",
    "new_rep_quota": "第{rank}选择：新人优质线索配额",
    "top_tier_cap": "第{rank}选择：{best_rep_id}的优质线索已达上限",
    "tradeoff": "第{rank}选择：更优的销售在其他线索上收益更大",
    "round_robin": "轮询分配",
    "weighted_round_robin": "按容量加权轮询分配",
    "reclaimed": "{days_without_contact}天未联系，从{previous_rep_id}收回",
    "hold_no_candidates": "暂缓：该线索没有评分的销售",
    "hold_no_eligible": "暂缓：没有符合条件的销售（{why}）",
    "hold_capacity": "暂缓：{n_eligible}名符合条件的销售均已满负荷",
}
ZH_CAUSES = {
    "inactive": "{n}名停用",
    "absent": "{n}名缺勤",
    "excluded": "{n}名被排除",
    "previous_rep": "原负责人",
    "pinned_elsewhere": "已指定给其他销售",
    "account_elsewhere": "客户由其他销售负责",
    "region": "{n}名不在该区域",
    "skills": "{n}名缺少技能",
    "language": "{n}名不会该语言",
}
CHINESE = ReasonCatalogue(
    templates=ZH_REASONS, causes=ZH_CAUSES, ordinal=str, separator="；", list_separator="，"
)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as UTF-8 with BOM, fixed decimals and "\\n" line ends (byte-stable)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].round(FLOAT_DECIMALS)
    out.to_csv(
        path,
        index=False,
        encoding="utf-8-sig",
        lineterminator="\n",
        float_format=f"%.{FLOAT_DECIMALS}f",
        date_format="%Y-%m-%d",
    )


def localise(
    frame: pd.DataFrame, lang: str, *, reasons_zh: pd.Series | None = None
) -> pd.DataFrame:
    """``frame`` with headers and words in ``lang`` ("en" leaves it as it is; "zh": Simplified
    Chinese). ``reasons_zh`` replaces the ``reason`` column when given."""
    if lang == "en":
        return frame
    if lang != "zh":
        raise ValueError(f"unknown language {lang!r}: use en or zh")
    out = frame.copy()
    if "action" in out:
        out["action"] = out["action"].map(ZH_ACTIONS).fillna(out["action"])
    if "available" in out:
        out["available"] = out["available"].map(ZH_BOOL)
    if reasons_zh is not None and "reason" in out:
        out["reason"] = reasons_zh.to_numpy()
    return out.rename(columns=ZH_HEADERS)


def chinese_reasons(assignments: pd.DataFrame) -> pd.Series:
    """The matching's reasons rendered in Simplified Chinese (from reason_code and reason_params)."""
    return render(assignments, CHINESE)
