"""Every word of the manager's report and of the CSV glossary, in English and Simplified Chinese.

``TEXT[lang][key]`` holds the report's sentences (``str.format`` templates), ``GLOSSARY`` what
each CSV column holds, ``ACTION_TEXT`` what each action asks the manager to do. The README's
"Reading the plan" section says the same in English.
"""

from __future__ import annotations

from features.schemas import Leads, Reps

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Lead plan for {date}",
        "intro": (
            "What to do today: give the leads in assignments.csv to the reps named there, in "
            "the order of the file. Each row says why."
        ),
        "tile_assign": "assign",
        "tile_reassign": "reassign",
        "tile_keep": "keep (remind)",
        "tile_hold": "hold (tomorrow)",
        "tile_left_out": "too old",
        "tile_wins": "expected wins",
        "tile_revenue": "expected revenue",
        "tile_gain": "vs round-robin",
        "gain_title": "Where the expected gain over round-robin comes from",
        "gain_head": (
            "Round-robin on the same leads and reps would expect {theirs}; this plan expects "
            "{ours}: {gain}{relative}."
        ),
        "gain_relative": " ({relative})",
        "part_selection": "Which leads get worked today: {value}.",
        "part_matching": "Who works them: {value}.",
        "selection_short": (
            "Capacity is short: {placed} of {to_place} leads can be worked today. The plan "
            "gives the free places to the leads most likely to be won; round-robin takes "
            "them in order of arrival."
        ),
        "selection_none": (
            "Both plans work every lead that can be worked today, so choosing which leads "
            "adds nothing."
        ),
        "selection_same": "Both plans work leads of about the same worth today.",
        "selection_less": (
            "The plan works leads that are a little less likely to be won than round-robin's, "
            "to gain more from who works them."
        ),
        "matching_no_signal": (
            "Past results show no reliable difference between reps, so the plan does not count "
            "on any rep doing better with a lead than another."
        ),
        "matching_more": (
            "Each lead goes to a rep the model expects to do better with it than the average "
            "eligible rep."
        ),
        "matching_same": (
            "Reps differ, but today the reps with room do about as well with these leads as "
            "round-robin's picks."
        ),
        "matching_less": (
            "Capacity and the fairness rules send some leads to reps who do less well with "
            "them than round-robin's picks."
        ),
        "signal_on": (
            "Past results show reliable differences between reps: the plan gives each lead to "
            "a rep likely to win it, within the fairness rules."
        ),
        "signal_off": (
            "Past results show no reliable difference between reps: the plan shares the leads "
            "by their value and by workload, not by each rep's predicted win chance, so the "
            "per-rep columns of assignments.csv are empty."
        ),
        "actions_title": "What each action asks of you",
        "col_action": "action",
        "col_count": "leads",
        "col_todo": "what to do",
        "workload_title": "Workload today",
        "workload_note": "Leads given today against each rep's capacity; kept leads stay on top.",
        "absent_reps": "No room today (absent, inactive, or at the open-lead limit): {names}.",
        "legend_assigned": "given today",
        "legend_kept": "kept",
        "legend_capacity": "capacity today",
        "share_title": "Fair share of lead value",
        "share_note": (
            "Each rep's share of the lead value given out over the last {days} days (today "
            "included), against a band of ±{band} around its share of the team's capacity. "
            "Lead value counts what a lead is worth whoever works it."
        ),
        "legend_share": "share of lead value",
        "legend_band": "fair band",
        "top_title": "Top-tier (A) leads today",
        "top_note": (
            "Tier-A leads each rep received today, against what it would get if they were "
            "shared in proportion to capacity (the mark)."
        ),
        "legend_top": "tier-A leads",
        "top_value": "{n} ({fair:.1f} by capacity)",
        "legend_proportion": "in proportion to capacity",
        "tenure_title": "Top-tier leads by tenure",
        "tenure_ramp_up": "ramp-up (< {days} days)",
        "tenure_to_1_year": "up to 1 year",
        "tenure_over_1_year": "over 1 year",
        "fairness_title": "Fairness rules",
        "fairness_ok": "Every fairness rule held today.",
        "fairness_price": (
            "Keeping to the fairness rules costs {cost} expected {unit} today (without them "
            "the plan would expect {total})."
        ),
        "fairness_free": "Keeping to the fairness rules costs nothing today.",
        "rule_value_share_min": (
            "{rep} holds {share} of the lead value over the window, below its fair band "
            "(from {limit})."
        ),
        "rule_value_share_max": (
            "{rep} holds {share} of the lead value over the window, above its fair band "
            "(up to {limit})."
        ),
        "rule_top_tier_max": (
            "{rep} holds {share} of the top-tier leads over the window, above the cap of {limit}."
        ),
        "rule_new_rep_quota": (
            "Reps in ramp-up ({reps}) hold {share} of the top-tier leads over the window, below "
            "their quota of {limit}."
        ),
        "rule_top_tier_cap_unreachable": (
            "With {n} reps working, the cap of {limit} of the top-tier leads per rep cannot "
            "hold (it needs at least {needed} reps), so the cap is an even split, {even} each."
        ),
        "rule_cost": "With {n} reps, the {rule} holds back {cost} of {total} expected {unit}.",
        "rule_name_value_share": "fair-share band",
        "rule_name_new_rep_quota": "new-rep quota",
        "rule_name_top_tier_cap": "top-tier cap",
        "reps_title": "Per rep",
        "notes_title": "Good to know",
        "left_out_title": "Leads left out for age",
        "left_out_none": "No lead was left out for age.",
        "left_out_note": (
            "These leads are older than the maximum age, so the plan did not place them: close "
            "them in the CRM or qualify them again. All are listed in left_out.csv."
        ),
        "left_out_more": "… and {n} more in left_out.csv.",
        "glossary_title": "Glossary: every column of the CSV files",
        "technical_title": "Technical details",
        "tech_model": "Model version",
        "tech_signal": "Rep-signal test",
        "tech_signal_value": (
            "{verdict}: rep information changes held-out log loss by {gain:+.4f} nats per "
            "pair ({relative:+.2%}), {level:.0%} interval [{low:+.4f}, {high:+.4f}] over "
            "{leads} leads"
        ),
        "verdict_signal": "signal",
        "verdict_none": "no reliable signal",
        "tech_solver": "Optimiser",
        "tech_solver_value": "{status}, relative gap to the bound {gap}",
        "tech_price": "Price of fairness (objective units)",
        "tech_pairs": "Candidate pairs scored",
        "tech_notes": "Notes",
        "unit_wins": "wins",
        "unit_revenue": "revenue",
        "none": "none",
        "yes": "yes",
        "no": "no",
    },
    "zh": {
        "title": "{date} 线索分配计划",
        "intro": "今日工作：按 assignments.csv 的顺序，把线索交给表中指定的销售。每一行都写明了原因。",
        "tile_assign": "分配",
        "tile_reassign": "改派",
        "tile_keep": "保留并提醒",
        "tile_hold": "暂缓到明天",
        "tile_left_out": "过期未分配",
        "tile_wins": "预计赢单数",
        "tile_revenue": "预期收入",
        "tile_gain": "相比轮流分配",
        "gain_title": "相比轮流分配的预期提升从何而来",
        "gain_head": (
            "对同样的线索和销售，轮流分配预计{theirs}；本计划预计{ours}：{gain}{relative}。"
        ),
        "gain_relative": "（{relative}）",
        "part_selection": "今天跟进哪些线索：{value}。",
        "part_matching": "由谁来跟进：{value}。",
        "selection_short": (
            "容量不足：今天 {to_place} 条线索中只能跟进 {placed} 条。本计划把空余容量留给最有可能"
            "赢单的线索；轮流分配则按线索到达的先后顺序分配。"
        ),
        "selection_none": "两种方式今天都能跟进所有可分配的线索，因此选择跟进哪些线索没有带来提升。",
        "selection_same": "两种方式今天跟进的线索价值大致相同。",
        "selection_less": "本计划跟进的线索赢单率略低于轮流分配，以便在由谁跟进上获得更多。",
        "matching_no_signal": (
            "历史数据显示销售之间没有可靠差异，因此本计划不假定任何销售跟进某条线索比别人更好。"
        ),
        "matching_more": "每条线索都交给模型预计比符合条件的销售平均水平更擅长的人。",
        "matching_same": "销售之间有差异，但今天有空余容量的销售与轮流分配选中的销售表现相当。",
        "matching_less": "容量和公平规则使部分线索交给了不如轮流分配所选销售擅长的人。",
        "signal_on": "历史数据显示销售之间存在可靠差异：本计划在公平规则之内，把每条线索交给最可能赢单的销售。",
        "signal_off": (
            "历史数据显示销售之间没有可靠差异：本计划按线索价值和工作量均衡分配，"
            "不按各销售的预测赢单率分配，因此 assignments.csv 中与销售相关的列为空。"
        ),
        "actions_title": "各项操作需要您做什么",
        "col_action": "操作",
        "col_count": "线索数",
        "col_todo": "需要做的事",
        "workload_title": "今日工作量",
        "workload_note": "今天分配给每位销售的线索数与其今日容量对比；保留的线索叠加显示。",
        "absent_reps": "今天无空余容量（缺勤、已停用或在跟进线索已达上限）：{names}。",
        "legend_assigned": "今日分配",
        "legend_kept": "保留",
        "legend_capacity": "今日容量",
        "share_title": "线索价值的公平份额",
        "share_note": (
            "每位销售在最近 {days} 天（含今天）获得的线索价值份额，与其团队容量份额上下 {band} "
            "的公平区间对比。线索价值指无论由谁跟进，该线索本身的价值。"
        ),
        "legend_share": "线索价值份额",
        "legend_band": "公平区间",
        "top_title": "今日优质（A级）线索",
        "top_note": "每位销售今天获得的A级线索数，与按容量比例应得的数量（标记）对比。",
        "legend_top": "A级线索",
        "top_value": "{n}（应得 {fair:.1f}）",
        "legend_proportion": "按容量应得",
        "tenure_title": "按司龄划分的优质线索",
        "tenure_ramp_up": "新人期（不足 {days} 天）",
        "tenure_to_1_year": "1 年以内",
        "tenure_over_1_year": "1 年以上",
        "fairness_title": "公平规则",
        "fairness_ok": "今天所有公平规则均得到满足。",
        "fairness_price": "今天遵守公平规则使预计{unit}减少 {cost}（不考虑公平规则时预计为 {total}）。",
        "fairness_free": "今天遵守公平规则没有任何代价。",
        "rule_value_share_min": "{rep}在统计窗口内获得的线索价值份额为 {share}，低于其公平区间（下限 {limit}）。",
        "rule_value_share_max": "{rep}在统计窗口内获得的线索价值份额为 {share}，高于其公平区间（上限 {limit}）。",
        "rule_top_tier_max": "{rep}在统计窗口内获得的优质线索份额为 {share}，超过 {limit} 的上限。",
        "rule_new_rep_quota": "新人期销售（{reps}）在统计窗口内获得的优质线索份额为 {share}，低于 {limit} 的配额。",
        "rule_top_tier_cap_unreachable": (
            "今天只有 {n} 名销售在岗，每人优质线索不超过 {limit} 的上限无法满足（至少需要 {needed} 名销售），"
            "因此改为平均分配，每人上限 {even}。"
        ),
        "rule_cost": "在 {n} 名销售的情况下，{rule}使预计{unit} {total} 中少了 {cost}。",
        "rule_name_value_share": "公平份额区间",
        "rule_name_new_rep_quota": "新人配额",
        "rule_name_top_tier_cap": "优质线索上限",
        "reps_title": "各销售明细",
        "notes_title": "请注意",
        "left_out_title": "因过期未分配的线索",
        "left_out_none": "没有因过期而未分配的线索。",
        "left_out_note": (
            "这些线索已超过最长有效天数，本计划未予分配：请在 CRM 中关闭或重新确认。完整列表见 left_out.csv。"
        ),
        "left_out_more": "……另有 {n} 条，见 left_out.csv。",
        "glossary_title": "术语表：CSV 文件中每一列的含义",
        "technical_title": "技术细节",
        "tech_model": "模型版本",
        "tech_signal": "销售差异检验",
        "tech_signal_value": (
            "{verdict}：加入销售信息后，留出集对数损失每对变化 {gain:+.4f} 奈特（{relative:+.2%}），"
            "{level:.0%} 置信区间 [{low:+.4f}, {high:+.4f}]，基于 {leads} 条线索"
        ),
        "verdict_signal": "存在可靠差异",
        "verdict_none": "无可靠差异",
        "tech_solver": "优化器",
        "tech_solver_value": "{status}，与上界的相对差距 {gap}",
        "tech_price": "公平代价（目标单位）",
        "tech_pairs": "评分的候选配对数",
        "tech_notes": "说明",
        "unit_wins": "赢单数",
        "unit_revenue": "收入",
        "none": "无",
        "yes": "是",
        "no": "否",
    },
}

SOLVER_STATUS = {
    "en": {
        "optimal": "optimal",
        "feasible": "feasible",
        "heuristic": "heuristic",
        "empty": "nothing to place",
    },
    "zh": {"optimal": "最优", "feasible": "可行解", "heuristic": "启发式", "empty": "无需分配"},
}

ACTION_TEXT: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "assign": ("assign", "Give the new lead to the rep named in the row."),
        "reassign": (
            "reassign",
            "Take the lead from the previous rep (the row says why: no first contact within "
            "the SLA, or the rep left) and give it to the rep named in the row.",
        ),
        "keep": (
            "keep",
            "The lead was not contacted within the SLA, but no other eligible rep has room "
            "today: it stays with its rep; remind them to make first contact.",
        ),
        "hold": (
            "hold",
            "Nobody eligible can take the lead today (the row says why): leave it unassigned; "
            "tomorrow's run places it again.",
        ),
    },
    "zh": {
        "assign": ("分配", "把这条新线索交给该行指定的销售。"),
        "reassign": (
            "改派",
            "从原负责人处收回该线索（原因见该行：超过时限未首次联系，或原负责人已离职），交给该行指定的销售。",
        ),
        "keep": (
            "保留",
            "该线索超过时限未首次联系，但今天没有其他符合条件的销售有空余容量：仍由原负责人跟进，请提醒其尽快联系。",
        ),
        "hold": (
            "暂缓",
            "今天没有符合条件的销售能接手（原因见该行）：暂不分配，明天的运行会重新分配。",
        ),
    },
}

GLOSSARY: dict[str, dict[str, tuple[str, str]]] = {
    "assignments.csv": {
        "run_date": ("The day the plan is for.", "计划对应的日期。"),
        Leads.lead_id: ("The lead's id in the CRM.", "线索在 CRM 中的编号。"),
        "action": (
            "assign, reassign, keep or hold (see the actions above).",
            "分配、改派、保留或暂缓（见上文各项操作）。",
        ),
        Reps.rep_id: (
            "The rep who works the lead (empty for hold).",
            "负责跟进该线索的销售编号（暂缓时为空）。",
        ),
        "rep_name": ("That rep's name.", "该销售的姓名。"),
        "previous_rep_id": (
            "The rep who held the lead before (reassign and keep).",
            "此前持有该线索的销售编号（改派和保留时填写）。",
        ),
        "previous_rep_name": ("That rep's name.", "原负责人的姓名。"),
        "tier": (
            "A, B or C by what the lead is worth under round-robin: A is the most valuable "
            "{top} of today's leads, B the next {next}, C the rest.",
            "按轮流分配下的线索价值划分的等级：A 为今日最有价值的前 {top}，B 为其后的 {next}，C 为其余。",
        ),
        "lead_win_chance_pct": (
            "The lead's chance of being won, in percent, when a rep is picked in turn "
            "(round-robin): the average over its eligible reps.",
            "轮流分配时该线索的赢单率（%）：符合条件的销售的平均值。",
        ),
        "rep_win_chance_pct": (
            "The model's chance of winning the lead with this rep, in percent. Empty when "
            "past results show no reliable difference between reps (the plan does not use it "
            "then), and for keep and hold.",
            "模型预测该销售赢下这条线索的概率（%）。历史数据显示销售之间无可靠差异时为空"
            "（此时计划不使用该值），保留和暂缓时也为空。",
        ),
        "uplift_pts": (
            "rep_win_chance_pct minus lead_win_chance_pct, in percentage points: how much "
            "better this rep is expected to do than the average eligible rep.",
            "该销售赢单率减去轮流分配基准赢单率（百分点）：该销售预计比符合条件的销售平均水平高出多少。",
        ),
        "rank_for_lead": (
            "This rep's place among the lead's eligible reps by the model's chance (1 = the "
            "best; 2 = second choice). Empty without a reliable rep difference.",
            "按模型赢单率，该销售在该线索所有符合条件销售中的顺位（1 为首选，2 为次选）。无可靠差异时为空。",
        ),
        "best_rep_id": (
            "The lead's best rep by the model (when the row's rep is not the best, the "
            "reason says why).",
            "模型认为该线索最合适的销售（若该行销售不是首选，原因列会说明为什么）。",
        ),
        "expected_revenue": (
            "The lead's expected deal value times its win chance (only when the objective "
            "is expected revenue).",
            "线索预期成交金额乘以赢单率（仅当优化目标为预期收入时出现）。",
        ),
        "reason": ("Why the lead goes where it goes, in words.", "该线索如此分配的原因。"),
    },
    "rep_summary.csv": {
        Reps.rep_id: ("The rep's id.", "销售编号。"),
        "rep_name": ("The rep's name.", "销售姓名。"),
        "team": ("The rep's team.", "所属团队。"),
        "available": ("Whether the rep works today.", "今天是否在岗。"),
        "capacity": (
            "Leads the rep can take today (0 when absent or at the open-lead limit).",
            "今天最多可接的线索数（缺勤或在跟进线索已达上限时为 0）。",
        ),
        "assigned": (
            "Leads given today (assign and reassign).",
            "今天分配的线索数（分配和改派）。",
        ),
        "kept": (
            "Leads that stay with the rep with a reminder (keep).",
            "保留在该销售名下并需提醒跟进的线索数（保留）。",
        ),
        "tier_A": ("Tier-A leads given today.", "今天分配的 A 级线索数。"),
        "tier_B": ("Tier-B leads given today.", "今天分配的 B 级线索数。"),
        "tier_C": ("Tier-C leads given today.", "今天分配的 C 级线索数。"),
        "tier_A_in_proportion": (
            "The tier-A leads the rep would get if today's were shared in proportion to capacity.",
            "若今天的 A 级线索按容量比例分配，该销售应得的数量。",
        ),
        "expected_wins": (
            "Sum of the win chances of today's leads (each lead's round-robin chance when "
            "reps do not differ reliably).",
            "今天所分配线索的赢单率之和（销售之间无可靠差异时按轮流分配基准赢单率计算）。",
        ),
        "expected_revenue": (
            "Sum of expected deal value times win chance (objective: expected revenue).",
            "预期成交金额乘以赢单率之和（优化目标为预期收入时出现）。",
        ),
        "capacity_used_pct": (
            "Share of today's capacity used, in percent.",
            "今日容量使用率（%）。",
        ),
        "value_share_pct": (
            "The rep's share of the lead value given out over the fairness window (today "
            "included), in percent.",
            "公平统计窗口内（含今天）该销售获得的线索价值份额（%）。",
        ),
        "fair_share_pct": (
            "The rep's share of the team's capacity over the window, in percent: its fair share.",
            "窗口内该销售占团队容量的份额（%），即其公平份额。",
        ),
        "share_gap_pts": (
            "value_share_pct minus fair_share_pct, in percentage points.",
            "线索价值份额减去公平份额（百分点）。",
        ),
        "open_load_after": (
            "Open leads the rep holds after today's plan.",
            "执行今日计划后该销售在跟进的线索数。",
        ),
    },
    "left_out.csv": {
        Leads.lead_id: ("The lead's id.", "线索编号。"),
        "created_at": ("The day the lead came in.", "线索创建日期。"),
        "age_days": ("Whole days since it came in.", "自创建以来的整天数。"),
        "previous_rep_id": ("The rep holding it, if any.", "当前持有该线索的销售编号（如有）。"),
        "previous_rep_name": ("That rep's name.", "该销售的姓名。"),
    },
}

REPORT_HEADERS: dict[str, dict[str, str]] = {
    "en": {
        "rep_name": "rep",
        Reps.rep_id: "id",
        "capacity": "capacity",
        "assigned": "given",
        "kept": "kept",
        "tier_A": "tier A",
        "tier_A_in_proportion": "tier A by capacity",
        "expected_wins": "expected wins",
        "capacity_used_pct": "capacity used",
        "value_share_pct": "value share",
        "fair_share_pct": "fair share",
        "open_load_after": "open leads after",
        Leads.lead_id: "lead",
        "created_at": "created",
        "age_days": "age (days)",
        "previous_rep_name": "held by",
    },
    "zh": {
        "rep_name": "销售",
        Reps.rep_id: "编号",
        "capacity": "今日容量",
        "assigned": "今日分配",
        "kept": "保留",
        "tier_A": "A级",
        "tier_A_in_proportion": "按容量应得A级",
        "expected_wins": "预计赢单数",
        "capacity_used_pct": "容量使用率",
        "value_share_pct": "价值份额",
        "fair_share_pct": "公平份额",
        "open_load_after": "分配后在跟进线索数",
        Leads.lead_id: "线索",
        "created_at": "创建日期",
        "age_days": "已创建天数",
        "previous_rep_name": "当前负责人",
    },
}

NOTES: list[tuple[str, str | None, str]] = [
    (
        r"no reliable rep signal: uplift is zero and the matching only balances lead value "
        r"and load",
        None,
        "销售之间无可靠差异：提升为零，分配只均衡线索价值和工作量",
    ),
    (
        r"expected_value missing for (?P<n>\d+) lead\(s\): used the median (?P<median>\S+)",
        None,
        "{n} 条线索缺少预期金额：已用中位数 {median} 填补",
    ),
    (
        r"SLA reclaim is off: the export has no first-contact dates.*",
        None,
        "超时收回已关闭：导出数据中没有首次联系日期，无法判断哪些线索从未联系（映射首次联系日期列即可开启）",
    ),
    (
        r"(?P<n>\d+) open lead\(s\) held by (?P<reps>\d+) rep\(s\) who left \((?P<shown>.*)\) "
        r"are placed again",
        None,
        "{n} 条在跟进线索的负责人已离开团队（{shown}），已重新分配",
    ),
    (
        r"(?P<n>\d+) lead\(s\) older than (?P<days>\d+) days are left out \(listed in the "
        r"pool's too-old leads\)",
        "{n} lead(s) older than {days} days are left out (listed below and in left_out.csv)",
        "{n} 条线索已超过 {days} 天，未予分配（见下文及 left_out.csv）",
    ),
    (
        r"no SLA reclaim on \w+ (?P<date>[\d-]+): it is not one of the team's working days",
        None,
        "{date} 不是团队的工作日：今天不做超时收回",
    ),
    (
        r"The export has no leads as of the run date: there is nothing to place, so the files "
        r"are empty\.",
        None,
        "截至运行日期，导出数据中没有线索：没有需要分配的线索，文件为空。",
    ),
]
"""The run's known notes: (regular expression of the English, English for the manager or None
to keep it, Chinese). A note not listed here is shown as it is."""
