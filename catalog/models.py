"""Products and their editions, as declared in the catalog file and synced here."""

from __future__ import annotations

from django.db import models


class Product(models.Model):
    """A product a customer can trial and buy. Declared in the catalog file; never deleted."""

    class Provisioner(models.TextChoices):
        BUILTIN = "builtin", "Built in (no outside call)"
        HTTP = "http", "HTTP endpoint of the product"

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    tagline = models.CharField(max_length=240, blank=True)
    provisioner = models.CharField(
        max_length=16, choices=Provisioner.choices, default=Provisioner.BUILTIN
    )
    provisioning_url = models.URLField(blank=True)
    # The name of the environment variable that holds the HMAC secret, never the secret.
    provisioning_secret_env = models.CharField(max_length=128, blank=True)
    # The origins (scheme://host[:port]) the product's pages run on: the in-product kit answers
    # calls from these only (CORS), and Flywheel's pages go back only to these (docs/in-product.md).
    kit_origins = models.JSONField(default=list, blank=True)
    # The activity event names (reported through the activity API) that make a person an
    # active user of the product that day (docs/activity.md); any other name is kept, not counted.
    activity_events = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.name


class Edition(models.Model):
    """One edition of a product (Free, Standard, Premium, Enterprise) with its limits and prices.

    Prices are integer minor units of `currency`, per seat.
    """

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="editions")
    code = models.SlugField(max_length=64)
    name = models.CharField(max_length=120)
    rank = models.PositiveSmallIntegerField(help_text="Higher is a bigger edition.")
    seat_limit = models.PositiveIntegerField()
    monthly_price_minor = models.PositiveIntegerField()
    annual_price_minor = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    trial_days = models.PositiveSmallIntegerField()
    support_tier = models.SlugField(max_length=64)
    features = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product__position", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["product", "code"], name="edition_code_unique"),
            models.CheckConstraint(condition=models.Q(seat_limit__gt=0), name="edition_seats_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} {self.name}"

    @property
    def is_free(self) -> bool:
        return self.monthly_price_minor == 0 and self.annual_price_minor == 0


class AddOn(models.Model):
    """Something an organization buys on top of a product's edition: an integration (features),
    premium support (a support tier) or training (credits with an expiry). Declared in the
    catalog file; never deleted.

    `pricing` says what the prices are for: per seat per billing period (following the base
    subscription's seats), flat per billing period, or once (`one_off_price_minor`). Prices are
    integer minor units of `currency`. `min_edition` is the smallest edition of the product it
    can be bought with (None: any).
    """

    class Pricing(models.TextChoices):
        PER_SEAT = "per_seat", "Per seat"
        FLAT = "flat", "Flat"
        ONE_OFF = "one_off", "One-off"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="addons")
    code = models.SlugField(max_length=64)
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=400, blank=True)
    pricing = models.CharField(max_length=16, choices=Pricing.choices)
    monthly_price_minor = models.PositiveIntegerField(default=0)
    annual_price_minor = models.PositiveIntegerField(default=0)
    one_off_price_minor = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3)
    min_edition = models.ForeignKey(Edition, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    trial_days = models.PositiveSmallIntegerField(default=0)
    features = models.JSONField(default=list, blank=True)
    support_tier = models.SlugField(max_length=64, blank=True)
    training_credits = models.PositiveIntegerField(default=0)
    training_valid_days = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product__position", "position"]
        constraints = [models.UniqueConstraint(fields=["product", "code"], name="addon_code_unique")]

    def __str__(self) -> str:
        return f"{self.product.name} {self.name}"


class Course(models.Model):
    """A training course or live session of a product, bought with training credits (a
    training add-on's pack). Declared in the catalog file under the product; never deleted."""

    class Format(models.TextChoices):
        COURSE = "course", "Self-paced course"
        SESSION = "session", "Live session"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="courses")
    code = models.SlugField(max_length=64)
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=400, blank=True)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.COURSE)
    # What assigning one person to it spends from the organization's training balance.
    credits = models.PositiveIntegerField(default=1)
    duration_minutes = models.PositiveIntegerField(default=60)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product__position", "position"]
        constraints = [
            models.UniqueConstraint(fields=["product", "code"], name="course_code_unique"),
            models.CheckConstraint(condition=models.Q(credits__gt=0), name="course_credits_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.product.name}: {self.name}"
