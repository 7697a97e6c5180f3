"""Users, organizations (the tenants), memberships and invites."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person. Identified by email; exposed outside the database only by `public_id`."""

    username = None  # type: ignore[assignment]
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField("email address", unique=True)
    # IANA zone name ("Europe/Paris") reported by the browser at signup; blank means
    # settings.DEFAULT_USER_TIME_ZONE. Quiet hours and business-hours clocks read it.
    time_zone = models.CharField(max_length=64, blank=True)
    # ISO 3166-1 alpha-2, upper case; blank when unknown. An experiment targeting attribute.
    country = models.CharField(max_length=2, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()  # type: ignore[misc]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class Organization(models.Model):
    """A tenant: a customer company. Every customer-owned row hangs off one."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    # A domain the organization proved it owns (its creator verified an address there).
    email_domain = models.CharField(max_length=253, blank=True, db_index=True)
    join_by_domain = models.BooleanField(
        default=False,
        help_text="Anyone who verifies an email address at the organization's domain may join.",
    )
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(join_by_domain=True, email_domain=""),
                name="organization_join_by_domain_needs_domain",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's place in an organization. One per (user, organization)."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    class Source(models.TextChoices):
        SIGNUP = "signup", "Created the organization"
        INVITE = "invite", "Accepted an invite"
        DOMAIN = "domain", "Joined by email domain"
        STAFF = "staff", "Added by staff"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class Invite(models.Model):
    """An invitation to join an organization, sent to one email address.

    A pending invite holds a seat until it is accepted, revoked or expires (docs/seats.md).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invites")
    email = models.EmailField()
    role = models.CharField(
        max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                condition=models.Q(status="pending"),
                name="invite_one_pending_per_email",
            )
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=models.Q(status="pending"),
                name="invite_pending_expiry_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.status})"


class SignupIntent(models.Model):
    """What brought a user here: the product and edition of the landing link, and UTM tags.

    Stored as codes, not foreign keys, because accounts sits below the catalog.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="signup_intent")
    product_code = models.CharField(max_length=64, blank=True)
    edition_code = models.CharField(max_length=64, blank=True)
    organization_name = models.CharField(max_length=120, blank=True)
    invite = models.ForeignKey(Invite, null=True, blank=True, on_delete=models.SET_NULL)
    anonymous_id = models.CharField(max_length=64, blank=True)
    utm = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} via {self.product_code or '-'}/{self.edition_code or '-'}"


class Removal(models.Model):
    """An admin removed this user from this organization: they may not rejoin by domain.

    Only a new invite, accepted, lets them back in (and clears this record).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="removals")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    removed_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    removed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="removal_unique")]

    def __str__(self) -> str:
        return f"{self.user} removed from {self.organization}"


class ApiKey(models.Model):
    """A key a product's servers use to call Flywheel's API on behalf of one organization.

    The key is `fw_live_<prefix>_<secret>`. It is shown once, when it is created; Flywheel keeps
    only `prefix` (8 characters, unique, shown in lists so people can tell keys apart) and the
    SHA-256 of the secret. A revoked key never authenticates again.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=8, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"], name="api_key_org_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} (fw_live_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
