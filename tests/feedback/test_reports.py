"""NPS and margin-of-error arithmetic on known data, the breakdowns of the monthly report,
small groups shown as too few answers, and one customer's report against everyone's."""

from __future__ import annotations

import math
from datetime import date

import pytest

from feedback import selectors
from feedback.reports import Group, Score, months_back

from ..conftest import organization_on
from .helpers import responses_insert

MONTH = date(2026, 10, 1)


def test_nps_and_margin_on_known_data():
    scores = [10, 10, 9, 9, 9, 8, 7, 6, 3, 0]
    score = Score(responses=10, promoters=sum(s >= 9 for s in scores), detractors=sum(s <= 6 for s in scores))
    assert (score.promoters, score.passives, score.detractors) == (5, 2, 3)
    assert score.nps == pytest.approx(20.0)
    # sqrt((p + d - (p - d)^2) / n) * 1.96 with p = 0.5, d = 0.3, n = 10
    assert score.margin == pytest.approx(100 * 1.96 * math.sqrt((0.5 + 0.3 - 0.2**2) / 10))
    assert score.margin == pytest.approx(54.03, abs=0.01)


def test_extreme_and_empty_scores():
    assert Score(responses=4, promoters=4, detractors=0).nps == 100
    assert Score(responses=4, promoters=4, detractors=0).margin == 0  # no spread at all
    assert Score(responses=4, promoters=0, detractors=4).nps == -100
    assert Score(responses=0, promoters=0, detractors=0).nps is None
    assert Score(responses=0, promoters=0, detractors=0).margin is None
    half = Score(responses=100, promoters=50, detractors=50)
    assert half.nps == 0 and half.margin == pytest.approx(196.0 * math.sqrt(1 / 100))


def test_a_small_group_is_suppressed_not_scored():
    small = Group(key="designer", label="Designer", score=Score(4, 4, 0), minimum=5)
    assert small.suppressed and small.nps is None and small.margin is None
    assert small.as_dict()["suppressed"] is True and small.as_dict()["nps"] is None
    enough = Group(key="designer", label="Designer", score=Score(5, 4, 0), minimum=5)
    assert not enough.suppressed and enough.nps == 80


def test_months_back():
    assert months_back(date(2026, 1, 1), 1) == date(2025, 12, 1)
    assert months_back(date(2026, 3, 1), 14) == date(2025, 1, 1)
    assert months_back(date(2026, 12, 1), -1) == date(2027, 1, 1)


def test_monthly_report_breakdowns_on_known_data(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 5
    organization, _ = organization_on("standard")
    # October: developers 10,10,9,9,9,8,7,6,3,0 (NPS +20), designers 10,10,2 (too few).
    responses_insert(organization, [10, 10, 9, 9, 9, 8, 7, 6, 3, 0], month=MONTH, role="developer", paying=True,
                     tenure_days=400)
    responses_insert(organization, [10, 10], month=MONTH, role="designer", tenure_days=10,
                     comment="Would love a Gantt view", category="functionality")
    responses_insert(organization, [2], month=MONTH, role="designer", tenure_days=10,
                     comment="So slow", category="reliability")
    # September: 5 answers, NPS -20.
    responses_insert(organization, [9, 8, 7, 5, 4], month=date(2026, 9, 1))
    # A month outside the window and another month are not counted in October.
    responses_insert(organization, [0, 0, 0], month=date(2026, 11, 1))

    report = selectors.monthly_report(month=MONTH)
    assert report.overall.score == Score(responses=13, promoters=7, detractors=4)
    assert report.overall.nps == pytest.approx(100 * 3 / 13)
    assert report.previous.score == Score(responses=5, promoters=1, detractors=2)
    assert report.previous.nps == pytest.approx(-20)
    assert report.change == pytest.approx(100 * 3 / 13 + 20)
    roles = {group.key: group for group in report.breakdowns["role"]}
    assert roles["developer"].nps == pytest.approx(20) and roles["developer"].margin == pytest.approx(54.03, abs=0.01)
    assert roles["designer"].suppressed and roles["designer"].nps is None
    assert roles["designer"].score.responses == 3
    paying = {group.key: group for group in report.breakdowns["paying"]}
    assert paying["true"].score.responses == 10 and paying["false"].suppressed
    tenure = {group.key: group.score.responses for group in report.breakdowns["tenure"]}
    assert tenure == {"365+": 10, "0-29": 3}
    categories = {group.key: group.score.responses for group in report.breakdowns["category"]}
    assert categories == {"functionality": 2, "reliability": 1}  # answers without comment have none
    assert [group.label for group in report.breakdowns["product"]] == ["Not known"]
    assert len(report.trend) == 12 and report.trend[-1].month == MONTH
    assert report.trend[-2].group.score.responses == 5
    assert report.trend[0].group.score.responses == 0 and report.trend[0].group.suppressed


def test_organization_report_against_everyone(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 3
    ours, _ = organization_on("standard")
    theirs, _ = organization_on("standard")
    responses_insert(ours, [10, 9, 9, 2], month=MONTH, role="developer", comment="Fast and clean",
                     category="reliability")
    responses_insert(ours, [0], month=MONTH, role="executive")
    responses_insert(theirs, [0, 0, 0, 0, 10], month=MONTH, comment="Secret complaint of another tenant",
                     category="other")

    report = selectors.organization_report(organization=ours, until=MONTH)
    assert report.organization.score == Score(responses=5, promoters=3, detractors=2)
    assert report.overall.score == Score(responses=10, promoters=4, detractors=6)
    roles = {group.key: group for group in report.by_role}
    assert roles["developer"].nps == pytest.approx(50) and roles["executive"].suppressed
    assert {comment["comment"] for comment in report.comments} == {"Fast and clean"}
    assert report.trend[-1].group.score.responses == 5
