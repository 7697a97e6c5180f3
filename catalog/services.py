"""Loading the catalog file into the database.

The file is parsed and checked whole before anything is written; one problem anywhere and
nothing is loaded. Loading is idempotent: a second run with the same file changes nothing.
Products, editions, add-ons and courses that disappear from the file are deactivated, never
deleted, because subscriptions (and training assignments) point at them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db import transaction

from .exceptions import CatalogError
from .models import AddOn, Course, Edition, Product

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
SUPPORT_TIERS = ("community", "standard", "premium", "enterprise")

PRODUCT_FIELDS = {
    "code",
    "name",
    "tagline",
    "provisioner",
    "provisioning_url",
    "provisioning_secret_env",
    "kit_origins",
    "activity_events",
    "editions",
    "addons",
    "courses",
}
ADDON_FIELDS = {
    "code",
    "name",
    "description",
    "pricing",
    "monthly_price_minor",
    "annual_price_minor",
    "one_off_price_minor",
    "currency",
    "requires_edition",
    "trial_days",
    "features",
    "support_tier",
    "training_credits",
    "training_valid_days",
}
COURSE_FIELDS = {"code", "name", "description", "format", "credits", "duration_minutes"}
MAX_COURSE_CREDITS = 100
MAX_COURSE_MINUTES = 7 * 24 * 60
MAX_TRAINING_CREDITS = 10_000
MAX_TRAINING_VALID_DAYS = 3 * 365
EDITION_FIELDS = {
    "code",
    "name",
    "rank",
    "seat_limit",
    "monthly_price_minor",
    "annual_price_minor",
    "currency",
    "trial_days",
    "support_tier",
    "features",
}
MAX_TRIAL_DAYS = 90
MAX_PRICE_MINOR = 2_000_000_000  # the database column is a 32-bit integer
MAX_KIT_ORIGINS = 20
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class EditionSpec:
    code: str
    name: str
    rank: int
    seat_limit: int
    monthly_price_minor: int
    annual_price_minor: int
    currency: str
    trial_days: int
    support_tier: str
    features: list[str]


@dataclass(frozen=True)
class AddOnSpec:
    code: str
    name: str
    description: str
    pricing: str
    monthly_price_minor: int
    annual_price_minor: int
    one_off_price_minor: int
    currency: str
    requires_edition: str  # an edition code of the same product, "" for any
    trial_days: int
    features: list[str]
    support_tier: str
    training_credits: int
    training_valid_days: int


@dataclass(frozen=True)
class CourseSpec:
    code: str
    name: str
    description: str
    format: str  # course (self-paced) or session (live)
    credits: int
    duration_minutes: int


@dataclass(frozen=True)
class ProductSpec:
    code: str
    name: str
    tagline: str
    provisioner: str
    provisioning_url: str
    provisioning_secret_env: str
    kit_origins: list[str] = field(default_factory=list)
    activity_events: list[str] = field(default_factory=list)
    editions: list[EditionSpec] = field(default_factory=list)
    addons: list[AddOnSpec] = field(default_factory=list)
    courses: list[CourseSpec] = field(default_factory=list)


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated)

    def __str__(self) -> str:
        if not self.changed:
            return "Catalog already up to date: nothing changed."
        lines = [
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.deactivated)} deactivated"
        ]
        lines += [f"  + {name}" for name in self.created]
        lines += [f"  ~ {name}" for name in self.updated]
        lines += [f"  - {name}" for name in self.deactivated]
        return "\n".join(lines)


class _Checker:
    """Collects every problem in the document instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, field_name: str, message: str) -> None:
        self.problems.append(f"{where}, field '{field_name}': {message}")

    def text(self, data: dict, where: str, name: str, *, required: bool = True, limit: int = 240) -> str:
        value = data.get(name)
        if value is None:
            if required:
                self.problem(where, name, "is missing")
            return ""
        if not isinstance(value, str):
            self.problem(where, name, f"must be text, got {value!r}")
            return ""
        value = value.strip()
        if required and not value:
            self.problem(where, name, "must not be empty")
        if len(value) > limit:
            self.problem(where, name, f"must be at most {limit} characters, got {len(value)}")
        return value

    def code(self, data: dict, where: str) -> str:
        value = self.text(data, where, "code")
        if value and not CODE_PATTERN.fullmatch(value):
            self.problem(
                where,
                "code",
                f"must be lowercase letters, digits and dashes, starting with a letter, got {value!r}",
            )
        return value

    def integer(self, data: dict, where: str, name: str, *, minimum: int, maximum: int | None = None) -> int:
        value = data.get(name)
        if value is None:
            self.problem(where, name, "is missing")
            return minimum
        # bool is an int in Python; `true` is never a number in the catalog.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, name, f"must be a whole number, got {value!r}")
            return minimum
        if value < minimum:
            self.problem(where, name, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.problem(where, name, f"must be at most {maximum}, got {value}")
        return value

    def origins(self, data: dict, where: str, name: str) -> list[str]:
        """A list of web origins, `scheme://host[:port]` exactly as a browser sends them in its
        Origin header (the in-product kit compares them character for character)."""
        value = data.get(name, [])
        if not isinstance(value, list) or len(value) > MAX_KIT_ORIGINS:
            self.problem(where, name, f"must be a list of at most {MAX_KIT_ORIGINS} origins like \"https://tracker.example.com\"")
            return []
        origins: list[str] = []
        for origin in value:
            problem = origin_problem(origin)
            if problem:
                self.problem(where, name, f"{origin!r} {problem}")
            elif origin in origins:
                self.problem(where, name, f"{origin!r} is listed twice")
            else:
                origins.append(origin)
        return origins

    def entries(self, tables: list, where: str, *, noun: str, field_name: str, allowed: set[str]):
        """Each table of a product's list (its editions, its add-ons) as (code, where, table),
        after the checks they share: a table, with a code unique in the list, and no unknown field."""
        seen: set[str] = set()
        for index, table in enumerate(tables, start=1):
            if not isinstance(table, dict):
                self.problem(f"{where}, {noun} #{index}", field_name, "must be a table")
                continue
            code = self.code(table, f"{where}, {noun} #{index}")
            entry_where = f"{where}, {noun} '{code or index}'"
            if code in seen:
                self.problem(entry_where, "code", f"is used by another {noun} of this product too")
            seen.add(code)
            self.unknown(table, entry_where, allowed)
            yield code, entry_where, table

    def unknown(self, data: dict, where: str, allowed: set[str]) -> None:
        for name in sorted(set(data) - allowed):
            self.problem(where, name, "is not a known field (a typo?)")


def origin_problem(origin: object) -> str:
    """What is wrong with `origin` as a product's kit origin ("" when nothing is)."""
    if not isinstance(origin, str):
        return "must be text"
    if not origin or len(origin) > 200:
        return "must be 1 to 200 characters"
    if "*" in origin:
        return "must name one origin: wildcards are not allowed"
    if not origin.isascii() or any(character.isspace() or not character.isprintable() for character in origin):
        return "must be plain ASCII without spaces (write an international host name in its xn-- form)"
    try:
        parts = urlparse(origin)
        port = parts.port
    except ValueError:
        return "is not a URL origin like \"https://tracker.example.com\""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must start with https:// (or http://) and name a host"
    if parts.path or parts.params or parts.query or parts.fragment or "?" in origin or "#" in origin:
        return "must be an origin only, without a path (not even a final /)"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if port is not None and port == DEFAULT_PORTS[parts.scheme]:
        return f"must leave out the default port {port} (browsers do)"
    if port is not None and not parts.netloc.endswith(f":{port}"):
        return f"must write its port as browsers do (:{port})"
    if parts.netloc.endswith(":"):
        return "must name its port after the colon, or have no colon"
    if origin != f"{parts.scheme}://{parts.netloc.lower()}":
        return "must be written in lower case"
    return ""


def _feature_codes(check: _Checker, data: dict, where: str) -> list[str]:
    features = data.get("features", [])
    if not (isinstance(features, list) and all(isinstance(f, str) and CODE_PATTERN.fullmatch(f) for f in features)):
        check.problem(where, "features", "must be a list of lowercase feature codes")
        return []
    return list(features)


ACTIVITY_EVENT_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
MAX_ACTIVITY_EVENTS = 100


def _activity_events(check: _Checker, raw: dict, where: str) -> list[str]:
    """A product's `activity_events`: the event names that make a person active that day."""
    names = raw.get("activity_events", [])
    if not (isinstance(names, list) and all(isinstance(name, str) and ACTIVITY_EVENT_PATTERN.fullmatch(name) for name in names)):
        check.problem(where, "activity_events", "must be a list of event names: lowercase letters, digits and _ . : -, at most 64 characters each")
        return []
    if len(names) > MAX_ACTIVITY_EVENTS or len(set(names)) != len(names):
        check.problem(where, "activity_events", f"must list each name once, at most {MAX_ACTIVITY_EVENTS} names")
        return []
    return list(names)


def _addons_parse(check: _Checker, raw: dict, where: str, *, editions: list[EditionSpec], currency: str) -> list[AddOnSpec]:
    """A product's `[[products.addons]]`: what each grants (features, a support tier, training
    credits with how long they last) and how it is priced (per seat or flat per billing period,
    or once)."""
    raw_addons = raw.get("addons", [])
    if not isinstance(raw_addons, list):
        check.problem(where, "addons", "must be a list of [[products.addons]] tables")
        return []
    edition_codes = {edition.code for edition in editions}
    addons: list[AddOnSpec] = []
    for code, addon_where, raw_addon in check.entries(raw_addons, where, noun="add-on", field_name="addons", allowed=ADDON_FIELDS):
        pricing = raw_addon.get("pricing")
        if pricing not in AddOn.Pricing.values:
            check.problem(addon_where, "pricing", f"must be one of {', '.join(AddOn.Pricing.values)}, got {pricing!r}")
        recurring = pricing in (AddOn.Pricing.PER_SEAT, AddOn.Pricing.FLAT)
        prices = {
            name: check.integer(raw_addon, addon_where, name, minimum=0, maximum=MAX_PRICE_MINOR) if name in raw_addon else 0
            for name in ("monthly_price_minor", "annual_price_minor", "one_off_price_minor")
        }
        if recurring and not (prices["monthly_price_minor"] > 0 and prices["annual_price_minor"] > 0):
            check.problem(addon_where, "monthly_price_minor", "a per_seat or flat add-on has a monthly and an annual price, both above 0")
        if recurring and prices["one_off_price_minor"]:
            check.problem(addon_where, "one_off_price_minor", "is only for a one_off add-on")
        if pricing == AddOn.Pricing.ONE_OFF and (
            prices["one_off_price_minor"] <= 0 or prices["monthly_price_minor"] or prices["annual_price_minor"]
        ):
            check.problem(addon_where, "one_off_price_minor", "a one_off add-on has one price above 0, and no monthly or annual price")
        addon_currency = raw_addon.get("currency", currency)
        if not (isinstance(addon_currency, str) and re.fullmatch(r"[A-Z]{3}", addon_currency)):
            check.problem(addon_where, "currency", f"must be a three-letter ISO code, got {addon_currency!r}")
        elif addon_currency != currency:
            check.problem(
                addon_where, "currency",
                f"must be the product's currency ({currency}): an add-on is billed on the product's invoices, got {addon_currency!r}",
            )
        requires = check.text(raw_addon, addon_where, "requires_edition", required=False, limit=64)
        if requires and requires not in edition_codes:
            check.problem(addon_where, "requires_edition", f"must be one of this product's editions ({', '.join(sorted(edition_codes))}), got {requires!r}")
        trial_days = check.integer(raw_addon, addon_where, "trial_days", minimum=0, maximum=MAX_TRIAL_DAYS) if "trial_days" in raw_addon else 0
        if trial_days and not recurring:
            check.problem(addon_where, "trial_days", "only a per_seat or flat add-on can have a trial")
        features = _feature_codes(check, raw_addon, addon_where)
        support_tier = raw_addon.get("support_tier", "")
        if support_tier and support_tier not in SUPPORT_TIERS:
            check.problem(addon_where, "support_tier", f"must be one of {', '.join(SUPPORT_TIERS)}, got {support_tier!r}")
        credits = (
            check.integer(raw_addon, addon_where, "training_credits", minimum=1, maximum=MAX_TRAINING_CREDITS)
            if "training_credits" in raw_addon
            else 0
        )
        valid_days = (
            check.integer(raw_addon, addon_where, "training_valid_days", minimum=1, maximum=MAX_TRAINING_VALID_DAYS)
            if "training_valid_days" in raw_addon
            else 0
        )
        if bool(credits) != bool(valid_days):
            check.problem(addon_where, "training_valid_days", "training credits need both training_credits and training_valid_days")
        if not (features or support_tier or credits):
            check.problem(addon_where, "features", "an add-on grants something: features, a support_tier or training_credits")
        # What each pricing can grant: a one-off add-on is a training pack (credits that expire);
        # features and a support tier last as long as a per-seat or flat add-on is paid for.
        if pricing == AddOn.Pricing.ONE_OFF and (features or support_tier or not credits):
            check.problem(
                addon_where, "training_credits",
                "a one_off add-on grants training credits (training_credits and training_valid_days) and nothing else; "
                "features and a support_tier are per_seat or flat",
            )
        if recurring and credits:
            check.problem(addon_where, "training_credits", "training credits are a one_off add-on's; a per_seat or flat add-on grants features or a support_tier")
        if trial_days and support_tier:
            check.problem(
                addon_where, "trial_days",
                "a support tier cannot be tried: the questions it moves to a faster clock keep it after the trial",
            )
        addons.append(
            AddOnSpec(
                code=code,
                name=check.text(raw_addon, addon_where, "name", limit=120),
                description=check.text(raw_addon, addon_where, "description", required=False, limit=400),
                pricing=str(pricing),
                currency=str(addon_currency),
                requires_edition=requires,
                trial_days=trial_days,
                features=features,
                support_tier=str(support_tier or ""),
                training_credits=credits,
                training_valid_days=valid_days,
                **prices,
            )
        )
    return addons


def _courses_parse(check: _Checker, raw: dict, where: str, *, addons: list[AddOnSpec]) -> list[CourseSpec]:
    """A product's `[[products.courses]]`: the courses and live sessions its training credits
    buy, each with what one person's place costs in credits and how long it lasts. A product
    that lists courses sells training: it has a training add-on (one granting training_credits)."""
    raw_courses = raw.get("courses", [])
    if not isinstance(raw_courses, list):
        check.problem(where, "courses", "must be a list of [[products.courses]] tables")
        return []
    courses: list[CourseSpec] = []
    for code, course_where, raw_course in check.entries(raw_courses, where, noun="course", field_name="courses", allowed=COURSE_FIELDS):
        course_format = raw_course.get("format", Course.Format.COURSE)
        if course_format not in Course.Format.values:
            check.problem(course_where, "format", f"must be one of {', '.join(Course.Format.values)}, got {course_format!r}")
        courses.append(
            CourseSpec(
                code=code,
                name=check.text(raw_course, course_where, "name", limit=120),
                description=check.text(raw_course, course_where, "description", required=False, limit=400),
                format=str(course_format),
                credits=check.integer(raw_course, course_where, "credits", minimum=1, maximum=MAX_COURSE_CREDITS),
                duration_minutes=check.integer(raw_course, course_where, "duration_minutes", minimum=1, maximum=MAX_COURSE_MINUTES),
            )
        )
    if courses and not any(addon.training_credits for addon in addons):
        check.problem(
            where,
            "courses",
            "a product with courses needs a training add-on to pay for them (an add-on with training_credits)",
        )
    return courses


def catalog_parse(text: str, *, source: str = "catalog") -> list[ProductSpec]:
    """Parse and check a catalog document; raise CatalogError listing every problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError([f"{source} is not valid TOML: {error}"]) from None

    check = _Checker()
    check.unknown(document, source, {"currency", "products"})
    currency = document.get("currency", "USD")
    if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        check.problem(source, "currency", f"must be a three-letter ISO code like USD, got {currency!r}")
        currency = "USD"

    raw_products = document.get("products")
    if not isinstance(raw_products, list) or not raw_products:
        raise CatalogError([f"{source}: there must be at least one [[products]] table"])

    products: list[ProductSpec] = []
    seen_products: set[str] = set()
    for index, raw in enumerate(raw_products, start=1):
        if not isinstance(raw, dict):
            check.problem(f"product #{index}", "products", "must be a table")
            continue
        code = check.code(raw, f"product #{index}")
        where = f"product '{code}'" if code else f"product #{index}"
        if code in seen_products:
            check.problem(where, "code", "is used by another product too")
        seen_products.add(code)
        check.unknown(raw, where, PRODUCT_FIELDS)
        name = check.text(raw, where, "name", limit=120)
        tagline = check.text(raw, where, "tagline", required=False)
        provisioner = raw.get("provisioner", Product.Provisioner.BUILTIN)
        url = check.text(raw, where, "provisioning_url", required=False, limit=200)
        secret_env = check.text(raw, where, "provisioning_secret_env", required=False, limit=128)
        kit_origins = check.origins(raw, where, "kit_origins")
        activity_events = _activity_events(check, raw, where)
        if provisioner not in Product.Provisioner.values:
            check.problem(
                where, "provisioner", f"must be one of {', '.join(Product.Provisioner.values)}, got {provisioner!r}"
            )
        if provisioner != Product.Provisioner.HTTP and (url or secret_env):
            check.problem(where, "provisioning_url", "is only for the http provisioner")
        if provisioner == Product.Provisioner.HTTP:
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                check.problem(where, "provisioning_url", f"must be an http(s) URL for the http provisioner, got {url!r}")
            if not ENV_NAME_PATTERN.fullmatch(secret_env):
                check.problem(
                    where,
                    "provisioning_secret_env",
                    "must name the environment variable holding the HMAC secret (like TRACKER_PROVISIONING_SECRET)",
                )

        editions: list[EditionSpec] = []
        raw_editions = raw.get("editions")
        if not isinstance(raw_editions, list) or not raw_editions:
            check.problem(where, "editions", "must list at least one [[products.editions]] table")
            raw_editions = []
        seen_ranks: set[int] = set()
        for edition_code, edition_where, raw_edition in check.entries(
            raw_editions, where, noun="edition", field_name="editions", allowed=EDITION_FIELDS
        ):
            rank = check.integer(raw_edition, edition_where, "rank", minimum=0, maximum=100)
            if rank in seen_ranks:
                check.problem(edition_where, "rank", f"{rank} is used by another edition of this product too")
            seen_ranks.add(rank)
            monthly = check.integer(raw_edition, edition_where, "monthly_price_minor", minimum=0, maximum=MAX_PRICE_MINOR)
            annual = check.integer(raw_edition, edition_where, "annual_price_minor", minimum=0, maximum=MAX_PRICE_MINOR)
            if (monthly == 0) != (annual == 0):
                check.problem(
                    edition_where,
                    "annual_price_minor",
                    "a free edition has both prices 0; a paid edition has both above 0",
                )
            trial_days = check.integer(raw_edition, edition_where, "trial_days", minimum=0, maximum=MAX_TRIAL_DAYS)
            if monthly == 0 and trial_days:
                check.problem(edition_where, "trial_days", "must be 0 for a free edition (there is nothing to trial)")
            edition_currency = raw_edition.get("currency", currency)
            if not (isinstance(edition_currency, str) and re.fullmatch(r"[A-Z]{3}", edition_currency)):
                check.problem(edition_where, "currency", f"must be a three-letter ISO code, got {edition_currency!r}")
            support_tier = raw_edition.get("support_tier")
            if support_tier not in SUPPORT_TIERS:
                check.problem(
                    edition_where, "support_tier", f"must be one of {', '.join(SUPPORT_TIERS)}, got {support_tier!r}"
                )
            features = _feature_codes(check, raw_edition, edition_where)
            editions.append(
                EditionSpec(
                    code=edition_code,
                    name=check.text(raw_edition, edition_where, "name", limit=120),
                    rank=rank,
                    seat_limit=check.integer(raw_edition, edition_where, "seat_limit", minimum=1, maximum=10**7),
                    monthly_price_minor=monthly,
                    annual_price_minor=annual,
                    currency=str(edition_currency),
                    trial_days=trial_days,
                    support_tier=str(support_tier),
                    features=list(features),
                )
            )
        addons = _addons_parse(check, raw, where, editions=editions, currency=currency)
        products.append(
            ProductSpec(
                code=code,
                name=name,
                tagline=tagline,
                provisioner=str(provisioner),
                provisioning_url=url,
                provisioning_secret_env=secret_env,
                kit_origins=kit_origins,
                activity_events=activity_events,
                editions=editions,
                addons=addons,
                courses=_courses_parse(check, raw, where, addons=addons),
            )
        )
    if check.problems:
        raise CatalogError(check.problems)
    return products


def _apply(instance: Product | Edition | AddOn | Course, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed = True
    return changed


def _product_row_sync(model, *, product: Product, code: str, values: dict[str, Any], existing: dict, noun: str, report: SyncReport) -> int:
    """Create or update one edition, add-on or course of `product` (by its code); its pk."""
    label = f"{noun} {product.code}/{code}"
    row = existing.get((product.pk, code))
    if row is None:
        row = model.objects.create(product=product, code=code, **values)
        report.created.append(label)
    elif _apply(row, values):
        row.save()
        report.updated.append(label)
    return row.pk


def _deactivate_left_out(rows, kept: set[int], *, noun: str, report: SyncReport) -> None:
    """Deactivate (never delete) the editions, add-ons or courses the file no longer lists."""
    for row in rows:
        if row.pk not in kept and row.is_active:
            row.is_active = False
            row.save(update_fields=["is_active", "updated_at"])
            report.deactivated.append(f"{noun} {row.product.code}/{row.code}")


def _addon_sync(spec: AddOnSpec, *, product: Product, position: int, existing: dict, report: SyncReport) -> int:
    """Create or update one add-on of `product` (its editions already synced); its pk."""
    values = {
        "name": spec.name,
        "description": spec.description,
        "pricing": spec.pricing,
        "monthly_price_minor": spec.monthly_price_minor,
        "annual_price_minor": spec.annual_price_minor,
        "one_off_price_minor": spec.one_off_price_minor,
        "currency": spec.currency,
        "min_edition": Edition.objects.get(product=product, code=spec.requires_edition) if spec.requires_edition else None,
        "trial_days": spec.trial_days,
        "features": spec.features,
        "support_tier": spec.support_tier,
        "training_credits": spec.training_credits,
        "training_valid_days": spec.training_valid_days,
        "position": position,
        "is_active": True,
    }
    return _product_row_sync(AddOn, product=product, code=spec.code, values=values, existing=existing, noun="add-on", report=report)


def _course_sync(spec: CourseSpec, *, product: Product, position: int, existing: dict, report: SyncReport) -> int:
    """Create or update one course of `product`; its pk."""
    values = {
        "name": spec.name,
        "description": spec.description,
        "format": spec.format,
        "credits": spec.credits,
        "duration_minutes": spec.duration_minutes,
        "position": position,
        "is_active": True,
    }
    return _product_row_sync(Course, product=product, code=spec.code, values=values, existing=existing, noun="course", report=report)


@transaction.atomic
def catalog_sync(*, path: Path | None = None, text: str | None = None) -> SyncReport:
    """Load the catalog file; all of it or, on any problem, none of it.

    Invariant: after a successful run the active products, editions, add-ons and courses in the database
    are exactly those in the file, with the file's values.
    """
    if text is None:
        path = path or settings.CATALOG_FILE
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise CatalogError([f"cannot read the catalog file {path}: {error.strerror}"]) from None
    specs = catalog_parse(text, source=str(path or "catalog"))

    report = SyncReport()
    # Lock the whole catalog so two concurrent syncs apply one after the other.
    existing_products = {p.code: p for p in Product.objects.select_for_update().order_by("pk")}
    existing_editions = {
        (e.product_id, e.code): e for e in Edition.objects.select_for_update().order_by("pk")
    }
    existing_addons = {(a.product_id, a.code): a for a in AddOn.objects.select_for_update().order_by("pk")}
    existing_courses = {(c.product_id, c.code): c for c in Course.objects.select_for_update().order_by("pk")}
    kept_editions: set[int] = set()
    kept_addons: set[int] = set()
    kept_courses: set[int] = set()
    for position, spec in enumerate(specs):
        values = {
            "name": spec.name,
            "tagline": spec.tagline,
            "provisioner": spec.provisioner,
            "provisioning_url": spec.provisioning_url,
            "provisioning_secret_env": spec.provisioning_secret_env,
            "kit_origins": spec.kit_origins,
            "activity_events": spec.activity_events,
            "position": position,
            "is_active": True,
        }
        product = existing_products.pop(spec.code, None)
        if product is None:
            product = Product.objects.create(code=spec.code, **values)
            report.created.append(f"product {spec.code}")
        elif _apply(product, values):
            product.save()
            report.updated.append(f"product {spec.code}")

        for edition_spec in spec.editions:
            edition_values = {
                "name": edition_spec.name,
                "rank": edition_spec.rank,
                "seat_limit": edition_spec.seat_limit,
                "monthly_price_minor": edition_spec.monthly_price_minor,
                "annual_price_minor": edition_spec.annual_price_minor,
                "currency": edition_spec.currency,
                "trial_days": edition_spec.trial_days,
                "support_tier": edition_spec.support_tier,
                "features": edition_spec.features,
                "is_active": True,
            }
            kept_editions.add(
                _product_row_sync(
                    Edition, product=product, code=edition_spec.code, values=edition_values,
                    existing=existing_editions, noun="edition", report=report,
                )
            )

        for addon_position, addon_spec in enumerate(spec.addons):
            kept_addons.add(_addon_sync(addon_spec, product=product, position=addon_position, existing=existing_addons, report=report))
        for course_position, course_spec in enumerate(spec.courses):
            kept_courses.add(_course_sync(course_spec, product=product, position=course_position, existing=existing_courses, report=report))

    for product in existing_products.values():
        if product.is_active:
            product.is_active = False
            product.save(update_fields=["is_active", "updated_at"])
            report.deactivated.append(f"product {product.code}")
    _deactivate_left_out(existing_editions.values(), kept_editions, noun="edition", report=report)
    _deactivate_left_out(existing_addons.values(), kept_addons, noun="add-on", report=report)
    _deactivate_left_out(existing_courses.values(), kept_courses, noun="course", report=report)
    return report
