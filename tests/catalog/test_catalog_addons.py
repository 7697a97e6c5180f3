"""Add-ons in the catalog file: what each grants and how it is priced, checked whole and synced
like products and editions (docs/catalog.md#add-ons)."""

from pathlib import Path

import pytest
from django.conf import settings

from catalog.exceptions import CatalogError
from catalog.models import AddOn
from catalog.services import catalog_sync

SAMPLE = Path(settings.CATALOG_FILE).read_text()
GITHUB = '''  [[products.addons]]
  code = "github"'''


def test_sample_catalog_loads_each_products_integration_support_and_training(db):
    catalog_sync()
    assert list(AddOn.objects.filter(product__code="tracker").values_list("code", flat=True)) == [
        "github",
        "premium-support",
        "training",
    ]
    github = AddOn.objects.get(product__code="tracker", code="github")
    assert (github.pricing, github.monthly_price_minor, github.annual_price_minor, github.currency) == ("per_seat", 150, 1500, "USD")
    assert (github.min_edition.code, github.trial_days, github.features) == ("standard", 14, ["github-sync"])
    support = AddOn.objects.get(product__code="tracker", code="premium-support")
    assert (support.pricing, support.support_tier, support.min_edition.code, support.features) == ("flat", "premium", "standard", [])
    training = AddOn.objects.get(product__code="wiki", code="training")
    assert (training.pricing, training.one_off_price_minor, training.monthly_price_minor) == ("one_off", 50000, 0)
    assert (training.training_credits, training.training_valid_days, training.min_edition) == (10, 365, None)


def test_add_ons_sync_idempotently_and_a_removed_one_is_deactivated_not_deleted(db):
    catalog_sync()
    assert not catalog_sync().changed
    edited = SAMPLE.replace("monthly_price_minor = 150\n", "monthly_price_minor = 175\n", 1)
    start = edited.index('  [[products.addons]]\n  code = "training"')
    end = edited.index("[[products]]", start)
    report = catalog_sync(text=edited[:start] + edited[end:])  # Tracker's training pack is gone, with its courses
    assert "add-on tracker/github" in report.updated
    assert report.deactivated == [
        "add-on tracker/training",
        "course tracker/fundamentals",
        "course tracker/admin-essentials",
        "course tracker/workflow-workshop",
    ]
    assert AddOn.objects.get(product__code="tracker", code="github").monthly_price_minor == 175
    assert AddOn.objects.get(product__code="tracker", code="training").is_active is False
    assert AddOn.objects.get(product__code="wiki", code="training").is_active is True


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('pricing = "per_seat"', 'pricing = "weekly"'), "field 'pricing': must be one of per_seat, flat, one_off, got 'weekly'"),
        (("annual_price_minor = 1500\n", ""), "field 'monthly_price_minor': a per_seat or flat add-on has a monthly and an annual price, both above 0"),
        (('requires_edition = "standard"\n  trial_days = 14', 'requires_edition = "gold"\n  trial_days = 14'), "field 'requires_edition': must be one of this product's editions (enterprise, free, premium, standard), got 'gold'"),
        (('features = ["github-sync"]', 'features = ["GitHub Sync"]'), "field 'features': must be a list of lowercase feature codes"),
        (('features = ["github-sync"]', "features = []"), "field 'features': an add-on grants something: features, a support_tier or training_credits"),
        (('support_tier = "premium"\n\n  [[products.addons]]\n  code = "training"', 'support_tier = "gold"\n\n  [[products.addons]]\n  code = "training"'), "add-on 'premium-support', field 'support_tier': must be one of community, standard, premium, enterprise, got 'gold'"),
        (("training_valid_days = 365\n", ""), "add-on 'training', field 'training_valid_days': training credits need both training_credits and training_valid_days"),
        (("one_off_price_minor = 50000\n", "one_off_price_minor = 50000\n  trial_days = 7\n"), "add-on 'training', field 'trial_days': only a per_seat or flat add-on can have a trial"),
        (("one_off_price_minor = 50000\n", "one_off_price_minor = 50000\n  monthly_price_minor = 100\n"), "add-on 'training', field 'one_off_price_minor': a one_off add-on has one price above 0, and no monthly or annual price"),
        ((GITHUB, GITHUB + '\n  colour = "blue"'), "add-on 'github', field 'colour': is not a known field (a typo?)"),
        ((GITHUB, GITHUB + '\n  currency = "EUR"'), "add-on 'github', field 'currency': must be the product's currency (USD): an add-on is billed on the product's invoices, got 'EUR'"),
        (("one_off_price_minor = 50000\n", 'one_off_price_minor = 50000\n  features = ["github-sync"]\n'), "add-on 'training', field 'training_credits': a one_off add-on grants training credits (training_credits and training_valid_days) and nothing else"),
        (('support_tier = "premium"\n\n  [[products.addons]]\n  code = "training"', 'support_tier = "premium"\n  training_credits = 5\n  training_valid_days = 30\n\n  [[products.addons]]\n  code = "training"'), "add-on 'premium-support', field 'training_credits': training credits are a one_off add-on's"),
        (('support_tier = "premium"\n\n  [[products.addons]]\n  code = "training"', 'support_tier = "premium"\n  trial_days = 14\n\n  [[products.addons]]\n  code = "training"'), "add-on 'premium-support', field 'trial_days': a support tier cannot be tried"),
        (('code = "premium-support"', 'code = "github"'), "add-on 'github', field 'code': is used by another add-on of this product too"),
    ],
)
def test_each_add_on_mistake_is_named_and_nothing_is_loaded(db, change, expected):
    old, new = change
    assert old in SAMPLE
    with pytest.raises(CatalogError) as refused:
        catalog_sync(text=SAMPLE.replace(old, new, 1))
    assert any(expected in problem and problem.startswith("product 'tracker'") for problem in refused.value.problems), refused.value.problems
    assert not AddOn.objects.exists()
