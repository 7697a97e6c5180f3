"""NPS arithmetic: scores, margins of error and the suppression of small groups.

NPS = % promoters (9-10) - % detractors (0-6), from -100 to +100. Its margin of error at 95%
is 1.96 standard errors, where the standard error of (p - d) for one sample of n answers is
sqrt((p + d - (p - d)^2) / n), p and d being the promoter and detractor proportions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

Z_95 = 1.96

# The question as the product asks it (feedback/services.py shows it; reports quote it as asked).
QUESTION = "How likely are you to recommend {product} to a friend or colleague?"


def question_for(product_name: str | None) -> str:
    """The survey's question for one product, word for word as it was asked."""
    return QUESTION.format(product=product_name or "this product")


@dataclass(frozen=True)
class Score:
    """Counts of one group of answers, and the NPS they make."""

    responses: int
    promoters: int
    detractors: int

    @property
    def passives(self) -> int:
        return self.responses - self.promoters - self.detractors

    @property
    def nps(self) -> float | None:
        """NPS in points (-100..100); None without answers."""
        if not self.responses:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.responses

    @property
    def margin(self) -> float | None:
        """Half-width of the 95% confidence interval of the NPS, in points."""
        if not self.responses:
            return None
        promoters = self.promoters / self.responses
        detractors = self.detractors / self.responses
        variance = promoters + detractors - (promoters - detractors) ** 2
        return 100.0 * Z_95 * math.sqrt(max(variance, 0.0) / self.responses)

    @property
    def promoter_share(self) -> float:
        return 100.0 * self.promoters / self.responses if self.responses else 0.0

    @property
    def detractor_share(self) -> float:
        return 100.0 * self.detractors / self.responses if self.responses else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(
            responses=self.responses + other.responses,
            promoters=self.promoters + other.promoters,
            detractors=self.detractors + other.detractors,
        )


EMPTY = Score(responses=0, promoters=0, detractors=0)


@dataclass(frozen=True)
class Group:
    """One row of a breakdown: a label and its score, or "too few answers" below the minimum."""

    key: str
    label: str
    score: Score
    minimum: int

    @property
    def suppressed(self) -> bool:
        return self.score.responses < self.minimum

    @property
    def nps(self) -> float | None:
        return None if self.suppressed else self.score.nps

    @property
    def margin(self) -> float | None:
        return None if self.suppressed else self.score.margin

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "responses": self.score.responses,
            "suppressed": self.suppressed,
            "nps": None if self.nps is None else round(self.nps, 1),
            "margin": None if self.margin is None else round(self.margin, 1),
        }


@dataclass(frozen=True)
class MonthPoint:
    month: date
    group: Group

    def as_dict(self) -> dict:
        return {"month": self.month.isoformat(), **self.group.as_dict()}


@dataclass
class MonthlyReport:
    """Every staff member's view of one month (and the digest's numbers)."""

    month: date
    overall: Group
    previous: Group
    trend: list[MonthPoint]
    breakdowns: dict[str, list[Group]] = field(default_factory=dict)

    questions: list[str] = field(default_factory=list)

    @property
    def change(self) -> float | None:
        """This month's NPS minus last month's, when both are shown."""
        if self.overall.nps is None or self.previous.nps is None:
            return None
        return self.overall.nps - self.previous.nps

    @property
    def change_margin(self) -> float | None:
        """The 95% margin of the change: the two months are independent samples, so their
        margins add in quadrature, sqrt(m1^2 + m2^2)."""
        if self.change is None or self.overall.margin is None or self.previous.margin is None:
            return None
        return math.sqrt(self.overall.margin**2 + self.previous.margin**2)

    @property
    def change_significant(self) -> bool:
        """The change is larger than its margin of error (a real change at 95%)."""
        return self.change is not None and self.change_margin is not None and abs(self.change) > self.change_margin


@dataclass
class OrganizationReport:
    """What one customer's users said, against everyone's figure over the same months."""

    since: date
    until: date
    organization: Group
    overall: Group
    trend: list[MonthPoint]
    by_role: list[Group]
    comments: list[dict]
    questions: list[str] = field(default_factory=list)
    # By the respondent's use of the product when answering (activity.people's states).
    by_usage: list[Group] = field(default_factory=list)


def months_back(month: date, count: int) -> date:
    """The first day of the month `count` months before `month` (a first of the month)."""
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def month_of(moment) -> date:
    return date(moment.year, moment.month, 1)


def format_nps(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0f}"
