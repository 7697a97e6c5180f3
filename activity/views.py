"""Staff: how many people use each product, how often, whether they come back
(docs/activity.md#figures, #retention, #lifecycle, #charts)."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from accounts.selectors import organization_for_staff
from catalog.models import Product
from common.staff import staff_required

from .charts import from_first_use, lifecycle_svg, mau_trend_svg, retention_heatmap_svg
from .selectors import (
    LIFECYCLE_DEFINITIONS,
    MONTH_DAYS,
    MONTH_USAGE_DEFINITIONS,
    WEEK_DAYS,
    count_tables,
    last_whole_day,
    lifecycle,
    monthly_usage,
    retention,
    usage_figures,
)
from .services import staff_figures_day

ALL = "all"
PERIOD_LABELS = {"week": "By week", "month": "By month"}
MODE_LABELS = {"n_day": "On {period} n", "unbounded": "On or after {period} n"}
PERIODS_SHOWN = 12
TREND_MONTHS = 12


def _choice(request: HttpRequest, name: str, allowed: list[str], default: str) -> str | None:
    value = request.GET.get(name, default)
    return value if value in allowed else None


@staff_required
def staff_usage(request: HttpRequest) -> HttpResponse:
    products = list(Product.objects.filter(is_active=True).order_by("position", "code"))
    codes = [ALL, *(product.code for product in products)]
    chosen = {
        "product": _choice(request, "product", codes, ALL),
        "period": _choice(request, "period", list(PERIOD_LABELS), "week"),
        "mode": _choice(request, "mode", list(MODE_LABELS), "n_day"),
    }
    refused = [name for name, value in chosen.items() if value is None]
    if refused:
        given = request.GET.get(refused[0], "")[:40]
        message = {
            "product": f"“{given}” is not one of Flywheel's products: choose "
            + ", ".join(
                f"{name} (product={code})"
                for code, name in [(ALL, "All products"), *((p.code, p.name) for p in products)]
            )
            + ".",
            "period": f"“{given}” is not a period this page shows: it shows weeks (period=week) or months (period=month).",
            "mode": f"“{given}” is not a way of counting retention this page knows: “on period n” (mode=n_day) or “on or after period n” (mode=unbounded).",
        }[refused[0]]
        return render(
            request, "activity/staff_usage_refused.html", {"message": message}, status=400
        )
    # One organization's figures (?customer=<its id>; `organization` is the middleware's), computed live from its own activity.
    organization = None
    asked = request.GET.get("customer", "").strip()
    if asked:
        organization = organization_for_staff(public_id=asked)
        if organization is None:
            message = f"“{asked[:40]}” is not an organization's id: use the id from the organization's admin page or the sales-leads page's link."
            return render(request, "activity/staff_usage_refused.html", {"message": message}, status=400)
    organization_id = organization.pk if organization else None
    product = next((item for item in products if item.code == chosen["product"]), None)
    product_id = product.pk if product else None
    period, mode = chosen["period"], chosen["mode"]
    as_of, built_at = staff_figures_day()
    figures = usage_figures(as_of=as_of, organization_id=organization_id)
    # The period's count tables, read once for the heat map and the lifecycle (and the trend
    # when the period is the month).
    counts = count_tables(period=period, as_of=as_of, product_id=product_id, organization_id=organization_id)
    trend = monthly_usage(
        until=as_of.replace(day=1),
        months=TREND_MONTHS,
        product_id=product_id,
        organization_id=organization_id,
        as_of=as_of,
        counts=counts if period == "month" else None,
    )
    cohorts = retention(
        product_id=product_id,
        period=period,
        mode=mode,
        periods=PERIODS_SHOWN,
        as_of=as_of,
        organization_id=organization_id,
        counts=counts,
    )
    stages = lifecycle(
        product_id=product_id,
        period=period,
        periods=PERIODS_SHOWN,
        as_of=as_of,
        organization_id=organization_id,
        counts=counts,
    )
    kept = {**chosen, **({"customer": str(organization.public_id)} if organization else {})}

    def link(**changes: str) -> str:
        return "?" + urlencode({**kept, **changes})

    return render(
        request,
        "activity/staff_usage.html",
        {
            "figures": figures,
            "organization": organization,
            "all_organizations_link": "?" + urlencode(chosen),
            "as_of": as_of,
            "built_at": built_at,
            "yesterday": last_whole_day(),
            "rebuild_minutes": round(
                int(getattr(settings, "ACTIVITY_FIGURES_REBUILD_DELAY", 600)) / 60
            ),
            "week_days": WEEK_DAYS,
            "month_days": MONTH_DAYS,
            "product_name": product.name if product else "All products",
            "started_in": product.name if product else "any product",
            "period_letter": period[0].upper(),
            "product_links": [
                (code, name, link(product=code), code == chosen["product"])
                for code, name in [(ALL, "All products"), *((p.code, p.name) for p in products)]
            ],
            "period_links": [
                (label, link(period=key), key == period) for key, label in PERIOD_LABELS.items()
            ],
            "mode_links": [
                (label.format(period=period), link(mode=key), key == mode)
                for key, label in MODE_LABELS.items()
            ],
            "period": period,
            "trend": trend,
            # From the first month with anyone active: a new installation's chart is not a year of zeros.
            "trend_chart": mark_safe(mau_trend_svg(from_first_use(trend))),  # noqa: S308 - numbers and escaped text
            "month_definitions": MONTH_USAGE_DEFINITIONS,
            "retention": cohorts,
            "averages": [cohorts.average(n) for n in range(cohorts.periods)],
            "heatmap": mark_safe(retention_heatmap_svg(cohorts)),  # noqa: S308 - numbers and escaped text
            "lifecycle": stages,
            "lifecycle_chart": mark_safe(lifecycle_svg(stages, period=period)),  # noqa: S308 - numbers and escaped text
            "lifecycle_definitions": [
                (key, key.capitalize(), text.format(period=period, where=f"in {product.name}" if product else "in any product"))
                for key, text in LIFECYCLE_DEFINITIONS.items()
            ],
            "first_of_month": date(as_of.year, as_of.month, 1),
        },
    )
