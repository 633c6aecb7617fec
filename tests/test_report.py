"""report.html as the manager reads it: sections, tiles, the gain in words, fairness lines,
the glossary, Chinese throughout, and names that cannot break the page or its charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_outputs import NO_FAIRNESS, plan_of

from matching import MatchingConfig
from pipelines.outputs import ZH_HEADERS
from pipelines.report import RecommendSummary, RunReport, render_report
from pipelines.report_text import GLOSSARY

SIGNAL = {
    "verdict": "no reliable signal",
    "gain": 0.0083,
    "relative_gain": 0.0167,
    "level": 0.95,
    "interval_low": -0.0023,
    "interval_high": 0.0187,
    "n_clusters": 241,
}


def report_of(plan, **summary):
    figures = dict(
        folder=Path("out") / plan.run_date,
        run_date=plan.run_date,
        placed=plan.counts["assign"] + plan.counts["reassign"],
        held=plan.counts["hold"],
        reclaimed=plan.counts["reassign"],
        too_old=0,
        expected_wins=plan.gain.leadmatch,
        expected_wins_round_robin=plan.gain.round_robin,
        price_of_fairness=plan.price_of_fairness,
        model_version="3",
        rep_signal_used=plan.rep_signal,
    )
    return RunReport(
        summary=RecommendSummary(**{**figures, **summary}),
        plan=plan,
        rep_signal=SIGNAL,
        solver_status="optimal",
        solver_gap=2e-5,
        candidate_pairs=6,
    )


class _Text(HTMLParser):
    """The page's visible text (style and title elements left out), and its tags."""

    def __init__(self):
        super().__init__()
        self.chunks: list[str] = []
        self.tags: list[str] = []
        self.headings: list[str] = []
        self._skip = 0
        self._heading = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._skip += tag in ("style", "title")
        self._heading = tag in ("h1", "h2", "h3")
        if self._heading:
            self.headings.append("")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "title")
        self._heading = self._heading and tag not in ("h1", "h2", "h3")

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)
            if self._heading:
                self.headings[-1] += data


def parsed(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    return parser


def words_of(page: str) -> str:
    """The page's visible text with runs of white space made one space."""
    return re.sub(r"\s+", " ", " ".join(parsed(page).chunks))


# Three reps, one short of a lead, a reclaimed lead: every section has something to say.
LEADS = {
    "previous_rep_id": ["R2", None, None, None, None],
    "days_without_contact": [4.0, None, None, None, None],
}
P = [[0.5, 0.4, None], [0.4, 0.5, 0.3], [0.3, 0.4, 0.5], [0.2, 0.3, 0.4], [0.6, 0.2, 0.1]]


@pytest.fixture
def plan():
    return plan_of(P, [1, 1, 2], leads=LEADS)


def test_the_english_report_has_its_sections_tiles_and_no_pictures_of_text(plan):
    page = render_report(report_of(plan), "en")
    text = parsed(page)
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert text.headings == [
        "Lead plan for 2025-01-07",
        "Where the expected gain over round-robin comes from",
        "What each action asks of you",
        "Workload today",
        "Fair share of lead value",
        "Top-tier (A) leads today",
        "Top-tier leads by tenure",
        "Fairness rules",
        "Per rep",
        "Leads left out for age",
        "assignments.csv",
        "rep_summary.csv",
        "left_out.csv",
    ]
    words = " ".join(text.chunks)
    for tile in ["assign", "reassign", "keep (remind)", "hold (tomorrow)", "too old"]:
        assert tile in words
    assert "img" not in text.tags and text.tags.count("svg") == 4
    assert "Rep 0" in words and "Rep 2" in words  # names in the charts and tables
    assert re.search(r"\d\.\d{4}(?!\d)", re.sub(r"Rep-signal test.*", "", words)) is None


def test_reps_without_room_are_named_under_the_workload_chart():
    plan = plan_of(P, [1, 0, 2], leads=LEADS, reps={"available": [True, False, True]})
    text = words_of(render_report(report_of(plan), "en"))
    assert "No room today (absent, inactive, or at the open-lead limit): Rep 1." in text
    assert "今天无空余容量（缺勤、已停用或在跟进线索已达上限）：Rep 1。" in words_of(
        render_report(report_of(plan), "zh")
    )


def test_the_glossary_explains_every_column_of_every_file(plan):
    text = words_of(render_report(report_of(plan), "en"))
    for name, frame in [
        ("assignments.csv", plan.assignments),
        ("rep_summary.csv", plan.rep_summary),
        ("left_out.csv", plan.left_out),
    ]:
        for column in frame.columns:
            assert column in GLOSSARY[name], (name, column)
            assert (
                GLOSSARY[name][column][0].split(":")[0][:30] in text
                or "{" in GLOSSARY[name][column][0]
            )
    assert "A is the most valuable 20% of today's leads, B the next 30%" in text


def test_the_gain_is_split_in_words():
    # one slot, three leads: round-robin works the first to arrive, the plan the best
    plan = plan_of([[0.2, 0.1], [0.3, 0.35], [0.9, 0.5]], [1, 0])
    text = words_of(render_report(report_of(plan), "en"))
    assert "Round-robin on the same leads and reps would expect 0.2 wins; this plan expects" in text
    assert (
        "Which leads get worked today: +0.7 wins. Capacity is short: 1 of 3 leads can be "
        "worked today." in text
    )
    # only one rep has room, so round-robin's pick and the plan's are the same rep
    assert "Who works them: 0 wins. Reps differ, but today the reps with room do about" in text


def test_a_plan_that_trades_which_leads_for_who_works_them_says_so(plan):
    text = words_of(render_report(report_of(plan), "en"))
    assert "Which leads get worked today: -0.2 wins. The plan works leads that are a little" in text


def test_without_rep_signal_the_matching_part_is_zero_and_says_why():
    plan = plan_of(P, [1, 1, 2], leads=LEADS, rep_signal=False)
    text = words_of(render_report(report_of(plan), "en"))
    assert "Who works them: 0 wins. Past results show no reliable difference between reps" in text
    assert "the per-rep columns of assignments.csv are empty" in text


def test_every_lead_worked_means_selection_adds_nothing():
    plan = plan_of([[0.5, 0.4], [0.4, 0.5]], [1, 1])
    text = words_of(render_report(report_of(plan), "en"))
    assert "Which leads get worked today: 0 wins. Both plans work every lead" in text


def test_a_small_team_hears_when_the_top_tier_cap_cannot_hold_and_what_it_costs():
    config = MatchingConfig(price_of_fairness=True)
    plan = plan_of(P, [2, 2, 2], config=config, rule_costs={"top_tier_cap": 0.4})
    text = words_of(render_report(report_of(plan), "en"))
    assert (
        "With 3 reps working, the cap of 25% of the top-tier leads per rep cannot hold (it "
        "needs at least 4 reps), so the cap is an even split, 33% each." in text
    )
    assert (
        f"With 3 reps, the top-tier cap holds back 0.4 of {plan.gain.leadmatch:.1f} expected wins."
        in text
    )


def test_the_chinese_report_is_chinese_throughout(plan):
    page = render_report(report_of(plan), "zh")
    text = parsed(page)
    assert page.startswith('<!DOCTYPE html>\n<html lang="zh-CN">')
    assert text.headings[:4] == [
        "2025-01-07 线索分配计划",
        "相比轮流分配的预期提升从何而来",
        "各项操作需要您做什么",
        "今日工作量",
    ]
    words = " ".join(text.chunks)
    for phrase in ["分配后在跟进线索数", "按容量应得A级", "暂缓到明天", "术语表", "技术细节"]:
        assert phrase in words
    for column in plan.assignments.columns:
        assert ZH_HEADERS[column] in words
    # what is left once ids, names, file names and units are taken out is not English
    allowed = {"Rep", "R", "CRM", "CSV", "SLA", "A", "B", "C", "csv"}
    leftovers = {w for w in re.findall(r"[A-Za-z]+", words) if w not in allowed}
    leftovers -= {"assignments", "rep_summary", "left_out", "summary", "rep", "left", "out"}
    assert leftovers == set()


def test_names_with_html_or_tex_cannot_break_the_page_or_its_charts():
    names = ["<b>Bo</b> & $x^2$", "</svg><script>alert(1)</script>", "王芳"]
    plan = plan_of(P, [1, 1, 2], leads=LEADS, reps={"name": names})
    for lang in ("en", "zh"):
        page = render_report(report_of(plan), lang)
        text = parsed(page)
        assert "script" not in text.tags
        assert "<b>Bo</b>" not in page and "&lt;b&gt;Bo&lt;/b&gt; &amp; $x^2$" in page
        words = "".join(text.chunks)
        assert "<b>Bo</b> & $x^2$" in words and "王芳" in words
        for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
            ET.fromstring(svg)  # each chart is well-formed XML: the names did not break it


def test_the_report_holds_no_timings_and_is_the_same_every_time(plan):
    report = report_of(plan)
    page = render_report(report, "en")
    assert page == render_report(report, "en")
    assert re.search(r"\d\s*(s|sec|seconds)\b", page) is None
    assert "relative gap to the bound 0.00%" in page


def test_an_unknown_language_is_refused(plan):
    with pytest.raises(ValueError, match="unknown language 'fr': use en or zh"):
        render_report(report_of(plan), "fr")


def test_the_plan_lists_leads_left_out_for_age():
    import pandas as pd

    too_old = pd.DataFrame(
        {
            "lead_id": ["L9", "L8"],
            "created_at": pd.to_datetime(["2024-11-02", "2024-10-01"]),
            "age_days": [66, 98],
            "previous_rep_id": pd.array(["R1", None], dtype="str"),
        }
    )
    plan = plan_of(P, [1, 1, 2], leads=LEADS, too_old_leads=too_old)
    assert plan.left_out["lead_id"].tolist() == ["L8", "L9"]
    assert plan.counts["left_out"] == 2
    text = words_of(render_report(report_of(plan), "en"))
    assert "L8 2024-10-01 98" in text
    assert "Rep 1" in text


def _screenshot_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "screenshot_report.py"
    spec = importlib.util.spec_from_file_location("screenshot_report", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_chromium_draws_the_report(plan, tmp_path, lang):
    shots = _screenshot_module()
    if shots.chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium fonts-noto-cjk)")
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(render_report(report_of(plan), lang), encoding="utf-8")
    png = tmp_path / "report.png"
    shots.screenshot(page, png, window=(1000, 1400))
    image = Image.open(png).convert("L")
    assert image.size == (1000, 1400)
    # the page drew something dark in its top half (the title and the tiles), not a blank page
    assert image.crop((0, 0, 1000, 700)).getextrema()[0] < 100


def test_a_revenue_plan_speaks_of_revenue():
    config = MatchingConfig(objective="expected_value")
    leads = {**LEADS, "expected_value": [1000.0, 2500.0, 400.0, 800.0, 12000.0]}
    plan = plan_of(P, [1, 1, 2], config=config, leads=leads)
    text = words_of(render_report(report_of(plan), "en"))
    assert "expected revenue" in text
    assert f"this plan expects {plan.gain.leadmatch:,.0f} revenue" in text
    assert "expected_revenue" in text  # the glossary lists the money column when there is one
    zh = words_of(render_report(report_of(plan), "zh"))
    assert "预期收入" in zh and f"本计划预计收入 {plan.gain.leadmatch:,.0f}" in zh


def test_a_missed_new_rep_quota_names_the_ramping_reps(plan):
    from dataclasses import replace

    from matching.summary import FairnessNote

    note = FairnessNote("new_rep_quota", share=0.042, limit=0.15, rep_ids=("R1", "R2"))
    report = report_of(replace(plan, fairness=[note]))
    assert (
        "Reps in ramp-up (Rep 1, Rep 2) hold 4.2% of the top-tier leads over the window, below "
        "their quota of 15.0%." in words_of(render_report(report, "en"))
    )
    assert "新人期销售（Rep 1、Rep 2）在统计窗口内获得的优质线索份额为 4.2%" in words_of(
        render_report(report, "zh")
    )


def test_the_run_notes_are_shown_in_the_report_language(plan):
    notes = [
        "8 lead(s) older than 30 days are left out (listed in the pool's too-old leads)",
        "3 open lead(s) held by 1 rep(s) who left (R5) are placed again",
        "something new the report has no words for yet",
    ]
    report = report_of(plan, notes=notes)
    english = words_of(render_report(report, "en"))
    assert (
        "Good to know 8 lead(s) older than 30 days are left out (listed below and in "
        "left_out.csv) 3 open lead(s) held by 1 rep(s) who left (R5) are placed again"
    ) in english
    chinese = words_of(render_report(report, "zh"))
    assert "请注意 8 条线索已超过 30 天，未予分配（见下文及 left_out.csv）" in chinese
    assert "3 条在跟进线索的负责人已离开团队（R5），已重新分配" in chinese
    assert "something new the report has no words for yet" in chinese  # shown, not dropped


def test_a_plan_no_better_than_round_robin_says_0_not_plus_zero():
    plan = plan_of([[0.5, 0.5], [0.5, 0.5]], [1, 1], config=NO_FAIRNESS)
    text = words_of(render_report(report_of(plan), "en"))
    assert "vs round-robin 0 (0%)" in text
    assert "this plan expects 1.0 wins: 0 (0%)." in text
