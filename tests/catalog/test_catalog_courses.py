"""Courses in the catalog file: what training credits buy, checked whole and synced like add-ons
(docs/catalog.md#courses)."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.admin.sites import site

from catalog.exceptions import CatalogError
from catalog.models import Course, Product
from catalog.services import catalog_parse, catalog_sync

SAMPLE = Path(settings.CATALOG_FILE).read_text()
FUNDAMENTALS = '''  [[products.courses]]
  code = "fundamentals"
  name = "Tracker fundamentals"'''


def _without_tracker_training_addon(text: str) -> str:
    start = text.index('  [[products.addons]]\n  code = "training"')
    end = text.index("  # Courses", start)
    return text[:start] + text[end:]


def test_sample_catalog_loads_each_products_courses_in_order(db):
    catalog_sync()
    tracker = list(Course.objects.filter(product__code="tracker").values_list("code", "name", "format", "credits", "duration_minutes"))
    assert tracker == [
        ("fundamentals", "Tracker fundamentals", "course", 1, 90),
        ("admin-essentials", "Admin essentials", "course", 2, 180),
        ("workflow-workshop", "Workflow design workshop", "session", 3, 180),
    ]
    for product in Product.objects.all():
        assert product.courses.filter(is_active=True).count() == 3
        assert product.addons.filter(training_credits__gt=0).exists()
    fundamentals = Course.objects.get(product__code="tracker", code="fundamentals")
    assert fundamentals.description.startswith("Boards, backlogs and roadmaps")
    assert fundamentals.get_format_display() == "Self-paced course"


def test_courses_sync_idempotently_and_a_removed_one_is_deactivated_not_deleted(db):
    catalog_sync()
    assert not catalog_sync().changed
    edited = SAMPLE.replace("credits = 2\n  duration_minutes = 180", "credits = 4\n  duration_minutes = 240", 1)
    start = edited.index('  [[products.courses]]\n  code = "workflow-workshop"')
    end = edited.index("[[products]]", start)
    report = catalog_sync(text=edited[:start] + edited[end:])
    assert report.updated == ["course tracker/admin-essentials"]
    assert report.deactivated == ["course tracker/workflow-workshop"]
    assert Course.objects.get(product__code="tracker", code="admin-essentials").credits == 4
    workshop = Course.objects.get(product__code="tracker", code="workflow-workshop")
    assert workshop.is_active is False
    assert Course.objects.get(product__code="wiki", code="knowledge-workshop").is_active is True
    # Back in the file: active again.
    assert "course tracker/workflow-workshop" in catalog_sync().updated
    workshop.refresh_from_db()
    assert workshop.is_active is True


def test_a_product_without_courses_is_fine(db):
    start = SAMPLE.index("  # Courses")
    end = SAMPLE.index("[[products]]", start)
    products = catalog_parse(SAMPLE[:start] + SAMPLE[end:])
    assert products[0].courses == [] and len(products[1].courses) == 3


def test_courses_without_a_training_add_on_are_refused(db):
    with pytest.raises(CatalogError) as refused:
        catalog_sync(text=_without_tracker_training_addon(SAMPLE))
    assert refused.value.problems == [
        "product 'tracker', field 'courses': a product with courses needs a training add-on to pay for them "
        "(an add-on with training_credits)"
    ]
    assert not Course.objects.exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('format = "session"', 'format = "webinar"'), "course 'workflow-workshop', field 'format': must be one of course, session, got 'webinar'"),
        (("credits = 1\n  duration_minutes = 90", "credits = 0\n  duration_minutes = 90"), "course 'fundamentals', field 'credits': must be at least 1, got 0"),
        (("credits = 1\n  duration_minutes = 90", "credits = 101\n  duration_minutes = 90"), "course 'fundamentals', field 'credits': must be at most 100, got 101"),
        (("credits = 1\n  duration_minutes = 90", 'credits = "one"\n  duration_minutes = 90'), "course 'fundamentals', field 'credits': must be a whole number, got 'one'"),
        (("credits = 1\n  duration_minutes = 90", "credits = 1"), "course 'fundamentals', field 'duration_minutes': is missing"),
        ((FUNDAMENTALS, FUNDAMENTALS + '\n  level = "beginner"'), "course 'fundamentals', field 'level': is not a known field (a typo?)"),
        (('code = "admin-essentials"', 'code = "fundamentals"'), "course 'fundamentals', field 'code': is used by another course of this product too"),
        (('code = "admin-essentials"', 'code = "Admin Essentials"'), "field 'code': must be lowercase letters, digits and dashes"),
        ((FUNDAMENTALS, '  [[products.courses]]\n  code = "fundamentals"\n  name = ""'), "course 'fundamentals', field 'name': must not be empty"),
    ],
)
def test_each_course_mistake_is_named_and_nothing_is_loaded(db, change, expected):
    old, new = change
    assert old in SAMPLE
    with pytest.raises(CatalogError) as refused:
        catalog_sync(text=SAMPLE.replace(old, new, 1))
    assert any(expected in problem and problem.startswith("product 'tracker'") for problem in refused.value.problems), refused.value.problems
    assert not Course.objects.exists()


def test_courses_must_be_a_list_of_tables(db):
    start = SAMPLE.index("  # Courses")
    end = SAMPLE.index("[[products]]", start)
    text = (SAMPLE[:start] + SAMPLE[end:]).replace(
        'tagline = "Plan, track and ship work with your team."',
        'tagline = "Plan, track and ship work with your team."\ncourses = "all of them"',
        1,
    )
    with pytest.raises(CatalogError) as refused:
        catalog_parse(text)
    assert "product 'tracker', field 'courses': must be a list of [[products.courses]] tables" in refused.value.problems


def test_the_admin_shows_courses_read_only_under_their_product(db):
    admin = site._registry[Product]
    inline = next(inline for inline in admin.inlines if inline.model is Course)
    assert inline.can_delete is False
    assert {"code", "name", "credits", "format", "duration_minutes", "is_active"} <= set(inline.readonly_fields)
