"""Experiment analysis: per variation and metric, Bayesian uplift with GrowthBook's `gbstats`.

The only importer of gbstats (imported lazily: it pulls in pandas and scipy, which a web
process should not load until a staff member opens an analysis).

Units are the experiment's exposures: each counts from its first exposure on. Metrics:
- each activation event named on the experiment: did the unit's user (or organization) record
  it after exposure (a proportion);
- conversion to paid: did the unit's organization record `subscription_paid` after exposure;
- revenue in the first 30 days: what the unit's organization paid within 30 days of exposure
  (every paid invoice: `subscription_paid`, `seats_added`, `edition_changed`,
  `subscription_renewed`), less what it was given back in that time (`payment_refunded`: a
  refund, or a dispute lost), as a mean per unit in minor units. Currencies are never added
  together or converted: with payments in several currencies, each gets a revenue metric of
  its own, counting only its amounts.
When the unit is a user, several members of one organization may be exposed, in different
variations: what the organization does (conversion, revenue, an activation event by anyone
in it but its exposed members) is credited once, to its first exposed member; each member is
credited with their own activation events. Otherwise one payment would count once per exposed
member, and one member's action for another, in every variation they are in.
The control is the holdout variation if there is one, else the variation at position 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models import DateTimeField as DateTimeFieldType
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Upper

from common.money import money

from .events import (
    ADDON_BOUGHT,
    EDITION_CHANGED,
    PAYMENT_REFUNDED,
    SEATS_ADDED,
    SUBSCRIPTION_PAID,
    SUBSCRIPTION_RENEWED,
    event_label,
)
from .models import Event, Experiment, Exposure, Variation

SRM_THRESHOLD = 0.001
REVENUE_DAYS = 30
# What gbstats says when it cannot compare, as staff read it.
GBSTATS_ERRORS = {
    "ZERO_NEGATIVE_BASELINE_VARIATION": "Nothing to compare with yet: the baseline has no conversions (or no revenue).",
    "ZERO_NEGATIVE_VARIANCE": "Nothing to compare yet: every unit so far has the same result.",
}
# Money in (each a paid invoice) and money back, with `amount_minor` and `currency`.
PAYMENT_EVENTS = (SUBSCRIPTION_PAID, SEATS_ADDED, ADDON_BOUGHT, EDITION_CHANGED, SUBSCRIPTION_RENEWED)
REFUND_EVENTS = (PAYMENT_REFUNDED,)


# What each variation is to the analysis, said the same way on every staff page: the baseline is
# the holdout when there is one (whatever the other variations are called, even "control"),
# else the variation at position 0; every other variation is a treatment compared with it.
ROLE_HOLDOUT = "Holdout (baseline)"
ROLE_CONTROL = "Control (baseline)"
ROLE_TREATMENT = "Treatment"


def baseline_of(variations: list[Variation]) -> Variation | None:
    """The variation every other one is compared with: the holdout, else position 0."""
    ordered = sorted(variations, key=lambda variation: variation.position)
    return next((v for v in ordered if v.holdout), ordered[0] if ordered else None)


def variation_role(variation: Variation, *, baseline: Variation | None) -> str:
    if baseline is None or variation.pk != baseline.pk:
        return ROLE_TREATMENT
    return ROLE_HOLDOUT if variation.holdout else ROLE_CONTROL


@dataclass
class VariantResult:
    """One variation's number for one metric, and its comparison with the control."""

    variation_key: str
    units: int
    total: float
    mean: float
    is_control: bool
    name: str = ""
    role: str = ""
    # The total and mean as staff read them: money with its currency for revenue, else counts.
    total_text: str = ""
    mean_text: str = ""
    uplift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    chance_to_beat_control: float | None = None
    error: str = ""

    @property
    def uplift_text(self) -> str:
        return "" if self.uplift is None else f"{self.uplift:+.1%}"

    @property
    def interval_text(self) -> str:
        return "" if self.ci_low is None or self.ci_high is None else f"[{self.ci_low:+.1%}, {self.ci_high:+.1%}]"

    @property
    def chance_text(self) -> str:
        return "" if self.chance_to_beat_control is None else f"{self.chance_to_beat_control:.1%}"


@dataclass
class MetricResult:
    key: str
    label: str
    kind: str  # "proportion" or "mean"
    variants: list[VariantResult]
    currency: str = ""


@dataclass
class VariantSummary:
    key: str
    name: str
    position: int
    weight: float
    expected_share: float
    exposures: int
    holdout: bool
    is_control: bool
    role: str = ""


@dataclass
class Analysis:
    experiment: Experiment
    variants: list[VariantSummary]
    metrics: list[MetricResult]
    srm_p_value: float
    srm_flagged: bool
    small_sample: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def control(self) -> VariantSummary | None:
        return next((variant for variant in self.variants if variant.is_control), None)

    @property
    def total_exposures(self) -> int:
        return sum(variant.exposures for variant in self.variants)


def srm_p_value(observed: list[int], weights: list[float]) -> float:
    """Chi-square goodness of fit of the observed counts to the configured split (gbstats)."""
    from gbstats.utils import check_srm

    if not observed or sum(observed) == 0:
        return 1.0
    return float(check_srm(observed, weights))


def compare_proportions(*, control: tuple[int, int], treatment: tuple[int, int]):
    """gbstats' Bayesian test on (units, conversions) of control and treatment."""
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.models.statistics import ProportionStatistic

    return EffectBayesianABTest(
        ProportionStatistic(n=control[0], sum=control[1]),
        ProportionStatistic(n=treatment[0], sum=treatment[1]),
        EffectBayesianConfig(difference_type="relative"),
    ).compute_result()


def compare_means(*, control: tuple[int, float, float], treatment: tuple[int, float, float]):
    """gbstats' Bayesian test on (units, sum, sum of squares) of control and treatment."""
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.models.statistics import SampleMeanStatistic

    return EffectBayesianABTest(
        SampleMeanStatistic(n=control[0], sum=control[1], sum_squares=control[2]),
        SampleMeanStatistic(n=treatment[0], sum=treatment[1], sum_squares=treatment[2]),
        EffectBayesianConfig(difference_type="relative"),
    ).compute_result()


def _organization_events(names: list[str] | tuple[str, ...]):
    """Events of one exposure's organization (correlated on the exposure row), after exposure.
    Served by the events' (organization, occurred_at) index."""
    return Event.objects.filter(
        organization_id=OuterRef("organization_id"), name__in=list(names), occurred_at__gte=OuterRef("exposed_at")
    )


def _first_of_organization(experiment: Experiment):
    """The exposure is its organization's first in the experiment (by time, then id): the one
    that what the organization does is credited to, when several of its members are units."""
    earlier = Exposure.objects.filter(experiment_id=experiment.pk, organization_id=OuterRef("organization_id")).filter(
        Q(exposed_at__lt=OuterRef("exposed_at")) | Q(exposed_at=OuterRef("exposed_at"), pk__lt=OuterRef("pk"))
    )
    return ~Exists(earlier)


def _reached(name: str, *, experiment: Experiment, by_user: bool):
    """Did the unit record `name` after exposure: its organization; for a user unit, the user
    themself, or, when it is the organization's first exposed member, the organization by
    anyone else than its exposed members (the system, a colleague not in the experiment).
    Separate EXISTS, not one with OR, so each uses its own index."""
    if not by_user:
        return Exists(_organization_events([name]))
    by_others = _organization_events([name]).filter(
        Q(user__isnull=True) | ~Exists(Exposure.objects.filter(experiment_id=experiment.pk, user_id=OuterRef("user_id")))
    )
    own = Exists(Event.objects.filter(user_id=OuterRef("user_id"), name=name, occurred_at__gte=OuterRef("exposed_at")))
    return ExpressionWrapper(own | (Q(first_of_organization=True) & Exists(by_others)), output_field=BooleanField())


def _currency():
    """An event's `currency` property, upper case; "" when it has none."""
    return Coalesce(Upper(KeyTextTransform("currency", "properties")), Value(""), output_field=TextField())


def _revenue_currencies(experiment: Experiment) -> list[str]:
    """The currencies the exposed organizations paid or were refunded in ("" for an amount
    recorded without one)."""
    return sorted(
        Event.objects.filter(
            name__in=[*PAYMENT_EVENTS, *REFUND_EVENTS],
            organization_id__in=Exposure.objects.filter(experiment=experiment, organization__isnull=False).values("organization_id"),
        )
        .annotate(currency=_currency())
        .values_list("currency", flat=True)
        .distinct()
    )


def _catalog_currency() -> str:
    """The catalog's currency when it has only one (it prices every edition in it), else ""."""
    from catalog.models import Edition

    currencies = set(Edition.objects.values_list("currency", flat=True).distinct())
    return currencies.pop().upper() if len(currencies) == 1 else ""


def _revenue(currency: str, *, several: bool):
    """Per exposure: its organization's payments less refunds in `currency` (every currency
    when it is the only one) within REVENUE_DAYS of exposure."""
    amount = Cast(KeyTextTransform("amount_minor", "properties"), BigIntegerField())
    events = _organization_events([*PAYMENT_EVENTS, *REFUND_EVENTS]).filter(
        occurred_at__lt=ExpressionWrapper(OuterRef("exposed_at") + timedelta(days=REVENUE_DAYS), output_field=DateTimeFieldType())
    )
    if several:
        events = events.annotate(currency=_currency()).filter(currency=currency)
    total = (
        events.annotate(
            amount=Case(When(name__in=REFUND_EVENTS, then=-amount), default=amount, output_field=BigIntegerField())
        )
        # SUM as a plain function, not an aggregate, so the subquery is not grouped.
        .annotate(total=Func(F("amount"), function="SUM", output_field=BigIntegerField()))
        .values("total")
    )
    return Coalesce(Subquery(total, output_field=BigIntegerField()), 0)


def _metric_rows(experiment: Experiment, currencies: list[str]):
    """Per exposure: its variation, each activation metric (bool), paid (bool), revenue per currency."""
    by_user = experiment.hash_attribute == Experiment.HashAttribute.USER
    activation = [name for name in experiment.activation_events or [] if isinstance(name, str)]
    annotations = {
        f"activation_{index}": _reached(name, experiment=experiment, by_user=by_user) for index, name in enumerate(activation)
    }
    paid = Exists(_organization_events([SUBSCRIPTION_PAID]))
    annotations["paid"] = ExpressionWrapper(Q(first_of_organization=True) & paid if by_user else paid, output_field=BooleanField())
    for currency in currencies:
        revenue = _revenue(currency, several=len(currencies) > 1)
        annotations[_revenue_key(currency, currencies)] = (
            Case(When(first_of_organization=True, then=revenue), default=0, output_field=BigIntegerField()) if by_user else revenue
        )
    rows = Exposure.objects.filter(experiment=experiment)
    if by_user:
        rows = rows.annotate(first_of_organization=_first_of_organization(experiment))
    return activation, rows.annotate(**annotations).values_list("variation_position", *annotations.keys())


def _revenue_key(currency: str, currencies: list[str]) -> str:
    return "revenue" if len(currencies) == 1 else f"revenue_{currency or 'unknown'}"


def experiment_analyse(*, experiment: Experiment) -> Analysis:
    """Exposures per variation, the SRM check, and every metric compared with the control."""
    variations = list(experiment.variations.order_by("position"))
    control_variation = baseline_of(variations)
    total_weight = sum(v.weight for v in variations) or 1.0
    currencies = _revenue_currencies(experiment) or [_catalog_currency()]
    activation, rows = _metric_rows(experiment, currencies)

    revenue_keys = [_revenue_key(currency, currencies) for currency in currencies]
    metric_keys = [f"activation_{i}" for i in range(len(activation))] + ["paid", *revenue_keys]
    # position -> [units, and per metric (sum, sum of squares)]
    sums: dict[int, list[float]] = {v.position: [0.0] * (1 + 2 * len(metric_keys)) for v in variations}
    orphans = 0  # exposures to a variation since removed from the experiment
    for row in rows.iterator(chunk_size=5000):
        position, values = row[0], row[1:]
        bucket = sums.get(position)
        if bucket is None:
            orphans += 1
            continue
        bucket[0] += 1
        for index, value in enumerate(values):
            number = float(value or 0)
            bucket[1 + 2 * index] += number
            bucket[2 + 2 * index] += number * number

    summaries = [
        VariantSummary(
            key=v.key,
            name=v.name or v.key,
            position=v.position,
            weight=v.weight,
            expected_share=v.weight / total_weight,
            exposures=int(sums[v.position][0]),
            holdout=v.holdout,
            is_control=control_variation is not None and v.pk == control_variation.pk,
            role=variation_role(v, baseline=control_variation),
        )
        for v in variations
    ]
    labels = [f"Activation: {event_label(name)}" for name in activation] + [
        "Conversion to paid",
        *(f"Revenue in the first {REVENUE_DAYS} days per unit{f', {currency}' if currency else ''}" for currency in currencies),
    ]
    metric_currencies = [""] * (len(activation) + 1) + currencies
    metrics: list[MetricResult] = []
    for index, (key, label, currency) in enumerate(zip(metric_keys, labels, metric_currencies, strict=True)):
        kind = "mean" if key in revenue_keys else "proportion"
        control_sums = sums[control_variation.position] if control_variation else None
        results = []
        for v in variations:
            bucket = sums[v.position]
            units, total, squares = int(bucket[0]), bucket[1 + 2 * index], bucket[2 + 2 * index]
            result = VariantResult(
                variation_key=v.key,
                units=units,
                total=total,
                mean=(total / units) if units else 0.0,
                is_control=control_variation is not None and v.pk == control_variation.pk,
                name=v.name or v.key,
                role=variation_role(v, baseline=control_variation),
            )
            if kind == "mean":
                result.total_text = money(round(result.total), currency)
                result.mean_text = money(round(result.mean), currency)
            else:
                result.total_text = f"{round(result.total)}"
                result.mean_text = f"{result.mean:.0%}"
            if control_sums is not None and not result.is_control:
                control_units = int(control_sums[0])
                if kind == "proportion":
                    test = compare_proportions(
                        control=(control_units, control_sums[1 + 2 * index]), treatment=(units, total)
                    )
                else:
                    test = compare_means(
                        control=(control_units, control_sums[1 + 2 * index], control_sums[2 + 2 * index]),
                        treatment=(units, total, squares),
                    )
                if test.error_message:
                    result.error = GBSTATS_ERRORS.get(str(test.error_message), str(test.error_message))
                else:
                    result.uplift = float(test.expected)
                    result.ci_low, result.ci_high = (float(bound) for bound in test.ci)
                    result.chance_to_beat_control = float(test.chance_to_win)
            results.append(result)
        metrics.append(MetricResult(key=key, label=label, kind=kind, variants=results, currency=currency))

    p_value = srm_p_value([s.exposures for s in summaries], [s.weight for s in summaries])
    flagged = p_value < SRM_THRESHOLD
    small = any(s.exposures < experiment.minimum_sample for s in summaries if s.weight > 0)  # a closed arm gets none
    warnings = []
    if flagged:
        warnings.append(
            f"Sample ratio mismatch: the exposures do not match the configured split (p = {p_value:.2g} "
            f"< {SRM_THRESHOLD}). Something other than chance decides who is exposed; do not trust "
            "the results until the cause is found."
        )
    if orphans:
        warnings.append(
            f"{orphans} exposure(s) to a variation no longer in the experiment are left out of every number "
            "and of the sample ratio check. Removing a variation mid-experiment changes the split: "
            "restart the experiment under a new key."
        )
    if len(currencies) > 1:
        warnings.append(
            f"Payments in {len(currencies)} currencies ({', '.join(c or 'unknown' for c in currencies)}): revenue is "
            "compared per currency, each counting only its own amounts; nothing is converted."
        )
    if small:
        warnings.append(
            f"Too few exposures so far: every variation needs at least {experiment.minimum_sample} "
            "before the numbers mean much. Keep the experiment running."
        )
    return Analysis(
        experiment=experiment,
        variants=summaries,
        metrics=metrics,
        srm_p_value=p_value,
        srm_flagged=flagged,
        small_sample=small,
        warnings=warnings,
    )


def uplift_chart_svg(metric: MetricResult, *, width: int = 640, row_height: int = 34) -> str:
    """A forest plot: per variation, the relative uplift (dot) and its 95% interval (bar)."""
    compared = [v for v in metric.variants if v.uplift is not None]
    height = row_height * (len(metric.variants) + 1)
    if compared:
        low = min(min(v.ci_low for v in compared), 0.0)  # type: ignore[type-var]
        high = max(max(v.ci_high for v in compared), 0.0)  # type: ignore[type-var]
    else:
        low, high = -0.1, 0.1
    span = (high - low) or 0.2
    low, high = low - span * 0.1, high + span * 0.1
    left, right = 150, width - 20

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="uplift-chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" style="min-width:34rem;max-width:none" role="img" aria-label="Relative uplift per variation">',
        f'<line x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - 18}" stroke="#888" stroke-dasharray="4 3"/>',
        f'<text x="{x(0):.1f}" y="{height - 4}" font-size="11" text-anchor="middle">0%</text>',
        f'<text x="{left}" y="{height - 4}" font-size="11">{low:+.0%}</text>',
        f'<text x="{right}" y="{height - 4}" font-size="11" text-anchor="end">{high:+.0%}</text>',
    ]
    for index, variant in enumerate(metric.variants):
        y = row_height * index + row_height / 2 + 4
        label = f"{variant.name or variant.variation_key} (baseline)" if variant.is_control else variant.name or variant.variation_key
        shown = label if len(label) <= 24 else label[:23] + "…"
        parts.append(f'<text x="4" y="{y + 4:.1f}" font-size="12"><title>{_escape(label)}</title>{_escape(shown)}</text>')
        if variant.uplift is None:
            continue
        colour = "#2f855a" if (variant.ci_low or 0) > 0 else "#c53030" if (variant.ci_high or 0) < 0 else "#4a5ec8"
        parts.append(
            f'<line data-variation="{_escape(variant.variation_key)}" x1="{x(variant.ci_low):.1f}" y1="{y:.1f}" '
            f'x2="{x(variant.ci_high):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="6" stroke-linecap="round" opacity="0.5"/>'
        )
        parts.append(f'<circle cx="{x(variant.uplift):.1f}" cy="{y:.1f}" r="5" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
