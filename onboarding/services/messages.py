"""The email of one send: its links (unsubscribe, click tracking, open pixel), the recipient's
context and the message itself.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from billing.models import Subscription

from ..mail import OutgoingEmail
from ..models import Enrolment, Send
from .rendering import Rendered, render_step
from .suppression import unsubscribe_token
from .tokens import CLICK_SALT, OPEN_SALT, token_sign

_STAND_IN = "STAND-IN"  # where the signed token goes, while a link's route is resolved


def _around_token(route: str) -> tuple[str, str]:
    # Tokens are URL-safe base64 with ':' and '.', which reverse() never quotes, so the link
    # of any token is the route's link for _STAND_IN with the token in its place.
    prefix, suffix = reverse(route, args=[_STAND_IN]).split(_STAND_IN)
    return f"{settings.SITE_URL}{prefix}", suffix


@dataclass(frozen=True)
class Links:
    """The links and names every email of a chunk shares, resolved once per chunk: reverse()
    costs more than signing the token that goes into a link."""

    app_url: str
    invite_url: str
    billing_url: str
    unsubscribe: tuple[str, str]
    click: tuple[str, str]
    open: tuple[str, str]
    hosts: frozenset[str]
    message_id_domain: str
    own: dict[str, bool] = field(default_factory=dict)  # URL -> on one of our hosts
    hrefs: dict[str, str | None] = field(default_factory=dict)  # href -> its URL if ours (own_href)

    @classmethod
    def resolve(cls) -> Links:
        return cls(
            app_url=f"{settings.SITE_URL}/app/",
            invite_url=f"{settings.SITE_URL}{reverse('members')}",
            billing_url=f"{settings.SITE_URL}{reverse('billing')}",
            unsubscribe=_around_token("onboarding_unsubscribe"),
            click=_around_token("onboarding_click"),
            open=_around_token("onboarding_open"),
            hosts=frozenset(link_hosts()),
            message_id_domain=_message_id_domain(),
        )

    def unsubscribe_url(self, email: str) -> str:
        """The link unsubscribe_url(email) makes, with the route resolved once."""
        return f"{self.unsubscribe[0]}{unsubscribe_token(email)}{self.unsubscribe[1]}"

    def open_pixel_url(self, send: Send) -> str:
        """The link open_pixel_url(send) makes, with the route resolved once."""
        return f"{self.open[0]}{_open_token(send)}{self.open[1]}"

    def is_own(self, url: str) -> bool:
        own = self.own.get(url)
        if own is None:
            own = self.own[url] = url_has_allowed_host_and_scheme(url, allowed_hosts=set(self.hosts), require_https=False)
        return own

    def own_href(self, href: str) -> str | None:
        """The URL of an href attribute's value (HTML-escaped) when it is on one of our hosts,
        else None; once per chunk for each href (the steps' links are the same for everyone)."""
        if href not in self.hrefs:
            url = html.unescape(href)
            self.hrefs[href] = url if self.is_own(url) else None
        return self.hrefs[href]

    def tracked_href(self, send: Send, url: str) -> str:
        """html.escape(tracked_url(send, url)), with the route resolved once: a token has
        nothing to escape (URL-safe base64 and ':'), so the route's parts around it are
        escaped once."""
        prefix, suffix = self.escaped_click
        return f"{prefix}{_click_token(send, url)}{suffix}"

    @cached_property
    def escaped_click(self) -> tuple[str, str]:
        return html.escape(self.click[0]), html.escape(self.click[1])


def recipient_context(enrolment: Enrolment, *, trial: Subscription | None, links: Links, unsubscribe: str) -> dict:
    """What a step's templates see: plain values only, the very names sample_context() has (no
    model instance, whose attributes and relations would reach the password hash and other
    tenants' rows; and what the preview shows is what is sent)."""
    user, organization = enrolment.user, enrolment.organization
    return {
        "first_name": user.first_name or user.email.split("@", 1)[0],
        "email": user.email,
        "organization_name": organization.name if organization is not None else "",
        "product": trial.product.name if trial is not None else "",
        "edition": trial.edition.name if trial is not None else "",
        "trial_ends_at": trial.trial_ends_at if trial is not None else None,
        "app_url": links.app_url,
        "invite_url": links.invite_url,
        "billing_url": links.billing_url,
        "unsubscribe_url": unsubscribe,
    }


def link_hosts() -> set[str]:
    hosts = {urlsplit(settings.SITE_URL).netloc}
    hosts.update(settings.ONBOARDING_LINK_HOSTS)
    return {host for host in hosts if host}


def _click_token(send: Send, url: str) -> str:
    return token_sign({"s": str(send.public_id), "u": url}, salt=CLICK_SALT)


def _open_token(send: Send) -> str:
    return token_sign(str(send.public_id), salt=OPEN_SALT)


def tracked_url(send: Send, url: str) -> str:
    return f"{settings.SITE_URL}{reverse('onboarding_click', args=[_click_token(send, url)])}"


def open_pixel_url(send: Send) -> str:
    return f"{settings.SITE_URL}{reverse('onboarding_open', args=[_open_token(send)])}"


_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)


def _track_links(send: Send, body: str, *, unsubscribe: str, links: Links) -> str:
    """Rewrite links to our own hosts as signed click links; other links stay as they are."""

    def rewrite(match: re.Match) -> str:
        url = links.own_href(match.group(1))
        if url is None or url == unsubscribe:
            return match.group(0)
        return f'href="{links.tracked_href(send, url)}"'

    return _HREF.sub(rewrite, body)


def _message_id_domain() -> str:
    return urlsplit(settings.SITE_URL).hostname or "flywheel.localhost"


def build_message(send: Send, rendered: Rendered, *, to: str) -> EmailMultiAlternatives:
    """The email of one send: both bodies, the unsubscribe link and headers, the open pixel."""
    links = Links.resolve()
    return _compose(send, rendered, to=to, links=links, unsubscribe=links.unsubscribe_url(to)).django_message()


def _compose(send: Send, rendered: Rendered, *, to: str, links: Links, unsubscribe: str) -> OutgoingEmail:
    """build_message with the chunk's links resolved, and the recipient's unsubscribe link
    (signed once, for the context and the email)."""
    text = f"{rendered.text.rstrip()}\n\n--\nYou get these emails because you started a Flywheel trial.\nUnsubscribe: {unsubscribe}\n"
    body = _track_links(send, rendered.html, unsubscribe=unsubscribe, links=links)
    # On lines of their own: a body line over 998 bytes makes the whole HTML part
    # quoted-printable, and the signed links would lengthen the step's own last line.
    footer = (
        '\n<p style="font-size:12px;color:#667">You get these emails because you started a Flywheel trial. '
        f'<a href="{html.escape(unsubscribe)}">Unsubscribe</a></p>\n'
        f'<img src="{html.escape(links.open_pixel_url(send))}" width="1" height="1" alt="">\n'
    )
    body = body.replace("</body>", footer + "</body>") if "</body>" in body else body + footer
    return OutgoingEmail(
        subject=rendered.subject,
        text=text,
        html=body,
        from_email=settings.ONBOARDING_FROM_EMAIL,
        to=to,
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # Fixed per send: should a message ever go out twice, mail systems drop the copy.
            "Message-ID": f"<{send.public_id.hex}@{links.message_id_domain}>",
            "X-Flywheel-Sequence": send.enrolment.sequence.key if send.enrolment.sequence_id else "",
        },
    )


def email_of(send: Send, *, links: Links, trials: dict[int, Subscription]) -> OutgoingEmail:
    enrolment = send.enrolment
    unsubscribe = links.unsubscribe_url(send.to_email)
    context = recipient_context(
        enrolment, trial=trials.get(enrolment.organization_id), links=links, unsubscribe=unsubscribe
    )
    return _compose(send, render_step(send.step, context), to=send.to_email, links=links, unsubscribe=unsubscribe)
