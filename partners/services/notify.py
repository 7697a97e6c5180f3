"""Partner emails, in Flywheel's one frame (accounts.mail): to a partner's people (its admins and
its contact address), to a customer's admins, to one person, and to staff.

Every email is queued on commit (accounts.mail.mail_queue), names the organization the
recipient belongs to in its reason line, and links to the page where the recipient acts. Callers
write the subject and body in plain words; these helpers add the greeting, signature and why
the recipient receives it."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage

from accounts.mail import email_subject, email_text, mail_queue
from accounts.models import Membership, Organization, User

from ..models import Partner

# Where each side acts (paths fixed by the brief; the customer's pages are partners:customer_partner
# and its neighbours, the partner's are partners:partner_*).
PARTNER_HOME_PATH = "/partner/"
PARTNER_REQUESTS_PATH = "/partner/requests/"
CUSTOMER_PARTNER_PATH = "/app/partner/"
CUSTOMER_DIRECTORY_PATH = "/app/partner/directory/"
CUSTOMER_ACTIVITY_PATH = "/app/partner/activity/"


def possessive(name: str) -> str:
    """A name's possessive as people write it: "Acme's", "Northwind Partners'"."""
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"


def site_link(path: str, *, organization: Organization | None = None) -> str:
    """An absolute link to a page of the site; with `organization`, the link opens the page in
    that organization (accounts.middleware switches to it when the person belongs to it)."""
    link = f"{settings.SITE_URL}{path}"
    if organization is not None:
        link += f"{'&' if '?' in path else '?'}organization={organization.public_id}"
    return link


def admins_of(organization: Organization) -> list[str]:
    """The addresses of the organization's admins, sorted."""
    return sorted(
        set(
            Membership.objects.filter(organization=organization, role=Membership.Role.ADMIN).values_list(
                "user__email", flat=True
            )
        )
    )


def partner_recipients(partner: Partner) -> list[str]:
    """Who hears about a partner's customers: the partner organization's admins and its contact
    address."""
    recipients = set(admins_of(partner.organization))
    if partner.contact_email:
        recipients.add(partner.contact_email.lower())
    return sorted(recipients)


def staff_recipients() -> list[str]:
    """Staff who are told about partner applications: settings.STAFF_NOTIFY (a list of addresses)
    when set, otherwise every active staff user."""
    configured = getattr(settings, "STAFF_NOTIFY", None)
    if configured:
        return sorted({address.strip().lower() for address in configured if address.strip()})
    return sorted(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))


def send(*, to: list[str], subject: str, body: str, reason: str, reply_to: list[str] | None = None) -> None:
    """One email to `to` (nothing when nobody), queued on commit."""
    if not to:
        return
    mail_queue(
        EmailMessage(
            subject=email_subject(subject),
            body=email_text(body=body, reason=reason),
            to=sorted(set(to)),
            reply_to=reply_to or None,
        )
    )


def notify_partner(*, partner: Partner, subject: str, body: str) -> None:
    """An email to the partner's admins and contact address."""
    send(
        to=partner_recipients(partner),
        subject=subject,
        body=body,
        reason=(
            f"You receive this email because you are an admin or the partner contact of "
            f"{partner.organization.name}, a {settings.SITE_NAME} partner. Your customers: "
            f"{site_link(PARTNER_HOME_PATH, organization=partner.organization)}"
        ),
    )


def notify_customer_admins(*, customer: Organization, subject: str, body: str) -> None:
    """An email to the customer organization's admins about its partner."""
    send(
        to=admins_of(customer),
        subject=subject,
        body=body,
        reason=(
            f"You receive this email because you are an admin of {customer.name}. Your partner "
            f"settings: {site_link(CUSTOMER_PARTNER_PATH, organization=customer)}"
        ),
    )


def notify_person(*, email: str, subject: str, body: str, reason: str) -> None:
    """An email to one address (an applicant, a requester, someone invited)."""
    send(to=[email], subject=subject, body=body, reason=reason)


def notify_staff(*, subject: str, body: str) -> None:
    """An email to staff (staff_recipients)."""
    send(
        to=staff_recipients(),
        subject=subject,
        body=body,
        reason=f"You receive this email because you are on {settings.SITE_NAME}'s staff.",
    )
