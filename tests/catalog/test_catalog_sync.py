from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.exceptions import CatalogError
from catalog.models import Edition, Product
from catalog.services import catalog_sync

SAMPLE = Path(settings.CATALOG_FILE).read_text()


def test_sample_catalog_loads_three_products_in_four_editions(db):
    report = catalog_sync()
    assert len(report.created) == 3 + 12 + 9 + 9  # products, editions, add-ons, courses
    assert list(Product.objects.values_list("code", flat=True)) == ["tracker", "wiki", "servicedesk"]
    for product in Product.objects.all():
        editions = list(product.editions.order_by("rank").values_list("code", flat=True))
        assert editions == ["free", "standard", "premium", "enterprise"]
    free = Edition.objects.get(product__code="tracker", code="free")
    assert (free.seat_limit, free.monthly_price_minor, free.trial_days, free.support_tier) == (10, 0, 0, "community")
    standard = Edition.objects.get(product__code="tracker", code="standard")
    assert standard.monthly_price_minor == 815 and standard.annual_price_minor == 8150
    assert standard.trial_days == 14 and standard.currency == "USD"


def test_sync_is_idempotent(db):
    catalog_sync()
    before = list(Edition.objects.order_by("pk").values())
    report = catalog_sync()
    assert not report.changed
    assert str(report) == "Catalog already up to date: nothing changed."
    assert list(Edition.objects.order_by("pk").values()) == before


def test_changed_price_is_updated_and_removed_product_deactivated(db):
    catalog_sync()
    edited = SAMPLE.replace("monthly_price_minor = 815", "monthly_price_minor = 900", 1)
    # Drop the last product (servicedesk) from the file.
    edited = edited[: edited.rindex("[[products]]")]
    report = catalog_sync(text=edited)
    assert "edition tracker/standard" in report.updated
    assert "product servicedesk" in report.deactivated
    assert Edition.objects.get(product__code="tracker", code="standard").monthly_price_minor == 900
    servicedesk = Product.objects.get(code="servicedesk")
    assert servicedesk.is_active is False  # kept for the subscriptions that point at it


def test_broken_file_is_refused_whole_with_product_field_and_problem(db):
    catalog_sync()
    before = list(Edition.objects.order_by("pk").values())
    broken = SAMPLE.replace("seat_limit = 10\n", "seat_limit = -3\n", 1)  # tracker/free
    broken = broken.replace('name = "Wiki"', 'name = "Wiki"\nprovisoner = "http"')  # a typo
    broken = broken.replace("monthly_price_minor = 0\n", "monthly_price_minor = 9.5\n", 1)
    with pytest.raises(CatalogError) as refused:
        catalog_sync(text=broken)
    problems = refused.value.problems
    assert "product 'tracker', edition 'free', field 'seat_limit': must be at least 1, got -3" in problems
    assert "product 'wiki', field 'provisoner': is not a known field (a typo?)" in problems
    assert any("field 'monthly_price_minor': must be a whole number, got 9.5" in p for p in problems)
    assert "nothing was loaded" in refused.value.message
    assert list(Edition.objects.order_by("pk").values()) == before


def test_broken_file_on_empty_database_loads_nothing(db):
    broken = SAMPLE.replace('support_tier = "premium"', 'support_tier = "gold"', 1)
    with pytest.raises(CatalogError) as refused:
        catalog_sync(text=broken)
    assert refused.value.problems == [
        "product 'tracker', edition 'premium', field 'support_tier': must be one of community, standard, premium, enterprise, got 'gold'"
    ]
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("products = [", "is not valid TOML"),
        ("currency = 'USD'", "there must be at least one [[products]] table"),
        (
            "[[products]]\ncode = 'Tracker!'\nname = 'T'\n",
            "product #1, field 'code': must be lowercase letters, digits and dashes",
        ),
        (
            "[[products]]\ncode = 'x'\nname = 'X'\nprovisioner = 'http'\n"
            "[[products.editions]]\ncode='free'\nname='Free'\nrank=0\nseat_limit=1\nmonthly_price_minor=0\n"
            "annual_price_minor=0\ntrial_days=0\nsupport_tier='community'\n",
            "product 'x', field 'provisioning_url': must be an http(s) URL",
        ),
        (
            "[[products]]\ncode = 'x'\nname = 'X'\n"
            "[[products.editions]]\ncode='free'\nname='Free'\nrank=0\nseat_limit=1\nmonthly_price_minor=0\n"
            "annual_price_minor=0\ntrial_days=14\nsupport_tier='community'\n",
            "product 'x', edition 'free', field 'trial_days': must be 0 for a free edition",
        ),
        (
            "[[products]]\ncode = 'x'\nname = 'X'\n[[products.editions]]\ncode='a'\nname='A'\n",
            "product 'x', edition 'a', field 'seat_limit': is missing",
        ),
    ],
)
def test_each_kind_of_mistake_is_named(db, text, expected):
    with pytest.raises(CatalogError) as refused:
        catalog_sync(text=text)
    assert expected in refused.value.message
    assert not Product.objects.exists()


def test_management_command_reports_and_refuses(db, tmp_path, capsys):
    call_command("catalog_sync")
    assert "33 created" in capsys.readouterr().out
    bad = tmp_path / "catalog.toml"
    bad.write_text(SAMPLE.replace('code = "wiki"', 'code = "tracker"'))
    with pytest.raises(CommandError, match="product 'tracker', field 'code': is used by another product too"):
        call_command("catalog_sync", str(bad))
    with pytest.raises(CommandError, match="cannot read the catalog file"):
        call_command("catalog_sync", str(tmp_path / "missing.toml"))


def test_codes_and_builtin_fields_are_checked_strictly(db):
    with_newline = SAMPLE.replace('features = ["boards", "backlog", "roadmaps"]', 'features = ["boards\\n"]', 1)
    with pytest.raises(CatalogError, match="field 'features': must be a list of lowercase feature codes"):
        catalog_sync(text=with_newline)
    builtin_with_url = SAMPLE.replace('provisioner = "builtin"', 'provisioner = "builtin"\nprovisioning_url = "not a url"', 1)
    with pytest.raises(CatalogError, match="product 'tracker', field 'provisioning_url': is only for the http provisioner"):
        catalog_sync(text=builtin_with_url)
    too_big = SAMPLE.replace("annual_price_minor = 8150", "annual_price_minor = 30000000000", 1)
    with pytest.raises(CatalogError, match="must be at most 2000000000"):
        catalog_sync(text=too_big)
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_activity_events_are_loaded_and_checked():
    catalog_sync()
    assert Product.objects.get(code="tracker").activity_events == ["card_created", "card_moved", "card_commented", "board_viewed", "signed_in"]
    sample = Path(settings.CATALOG_FILE).read_text()
    for bad, problem in (
        ('activity_events = ["page_created", "page_edited", "page_viewed", "signed_in"]', 'activity_events = ["Page Created"]'),
        ('activity_events = ["page_created", "page_edited", "page_viewed", "signed_in"]', 'activity_events = ["page_viewed", "page_viewed"]'),
    ):
        with pytest.raises(CatalogError) as refused:
            catalog_sync(text=sample.replace(bad, problem, 1))
        assert any(p.startswith("product 'wiki', field 'activity_events'") for p in refused.value.problems), refused.value.problems
