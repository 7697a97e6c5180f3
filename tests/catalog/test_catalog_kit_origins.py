"""Products' kit origins in the catalog: checked as origins exactly as browsers send them,
synced, and read by the kit's CORS (catalog.selectors.product_kit_origins)."""

import pytest
from django.conf import settings

from catalog.exceptions import CatalogError
from catalog.models import Product
from catalog.selectors import origin_is_a_products, product_kit_origins
from catalog.services import catalog_parse, catalog_sync

with open(settings.CATALOG_FILE) as catalog_file:
    SAMPLE = catalog_file.read()

TRACKER_LINE = 'provisioner = "builtin"\n'


def with_tracker_origins(value: str) -> str:
    return SAMPLE.replace(TRACKER_LINE, f"{TRACKER_LINE}kit_origins = {value}\n", 1)


def test_origins_are_synced_and_used_by_the_kit(db):
    catalog_sync(text=with_tracker_origins('["https://tracker.example.com", "http://localhost:8001"]'))
    tracker = Product.objects.get(code="tracker")
    assert tracker.kit_origins == ["https://tracker.example.com", "http://localhost:8001"]
    assert product_kit_origins(tracker) == sorted(
        ["https://tracker.example.com", "http://localhost:8001", settings.DEMO_PRODUCT_URL]
    )
    assert origin_is_a_products("https://tracker.example.com")
    assert not origin_is_a_products("https://evil.example")

    report = catalog_sync()  # the file without them again
    assert "product tracker" in report.updated
    assert Product.objects.get(code="tracker").kit_origins == []


def test_the_sample_catalog_lists_no_origin_beyond_the_demo_products(db):
    catalog_sync()
    assert [product_kit_origins(product) for product in Product.objects.all()] == [[settings.DEMO_PRODUCT_URL]] * 3


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"https://tracker.example.com"', 'must be a list of at most 20 origins like "https://tracker.example.com"'),
        ('["https://tracker.example.com/"]', "'https://tracker.example.com/' must be an origin only, without a path (not even a final /)"),
        ('["https://tracker.example.com/app"]', "'https://tracker.example.com/app' must be an origin only, without a path (not even a final /)"),
        ('["https://*.example.com"]', "'https://*.example.com' must name one origin: wildcards are not allowed"),
        ('["*"]', "'*' must name one origin: wildcards are not allowed"),
        ('["tracker.example.com"]', "'tracker.example.com' must start with https:// (or http://) and name a host"),
        ('["ftp://tracker.example.com"]', "'ftp://tracker.example.com' must start with https:// (or http://) and name a host"),
        ('["https://Tracker.example.com"]', "'https://Tracker.example.com' must be written in lower case"),
        ('["https://tracker.example.com:443"]', "'https://tracker.example.com:443' must leave out the default port 443 (browsers do)"),
        ('["https://user:pw@tracker.example.com"]', "'https://user:pw@tracker.example.com' must not carry a user name or password"),
        ('["https://tracker.example.com:99999"]', "'https://tracker.example.com:99999' is not a URL origin like \"https://tracker.example.com\""),
        ('["https://trâcker.example.com"]', "'https://trâcker.example.com' must be plain ASCII without spaces (write an international host name in its xn-- form)"),
        ('[""]', "'' must be 1 to 200 characters"),
        ("[8001]", "8001 must be text"),
        ('["https://a.example", "https://a.example"]', "'https://a.example' is listed twice"),
        ("[" + ", ".join(f'"https://a{n}.example"' for n in range(21)) + "]", 'must be a list of at most 20 origins like "https://tracker.example.com"'),
    ],
)
def test_a_bad_origin_is_refused_naming_product_field_and_rule(db, value, problem):
    with pytest.raises(CatalogError) as refused:
        catalog_parse(with_tracker_origins(value))
    assert refused.value.problems == [f"product 'tracker', field 'kit_origins': {problem}"]
    assert not Product.objects.exists()
