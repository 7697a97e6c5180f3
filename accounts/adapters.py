from dataclasses import dataclass

from allauth.account import app_settings as allauth_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.utils import build_absolute_uri
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponseRedirect
from django.urls import reverse

from .mail import mail_queue


@dataclass(frozen=True)
class Site:
    """What allauth's templates call `current_site`, from settings rather than
    django.contrib.sites: one name and one address, set where the rest is (SITE_NAME,
    SITE_URL), with no table to keep in step with them."""

    name: str
    domain: str


def site() -> Site:
    return Site(name=settings.SITE_NAME, domain=settings.SITE_URL.split("://", 1)[-1])


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix, email, context):
        """Render allauth's mail (verification, password reset, notices) here and queue it
        for the worker.

        The signup request then costs little beyond hashing the password, and a slow mail
        server never slows a page. Every message is told whom it goes to and the site's name
        and address (allauth's own send_mail adds them; ours replaces it).
        """
        request = self.request
        absolute = (lambda path: build_absolute_uri(request, path)) if request else (lambda path: settings.SITE_URL + path)
        full_context = {
            "email": email,
            "current_site": site(),
            "site_name": settings.SITE_NAME,
            "site_url": settings.SITE_URL,
            "login_url": absolute(reverse("account_login")),
            "password_reset_url": absolute(reverse("account_reset_password")),
            "signup_url": absolute(reverse("signup_entry")),
            "confirmation_days": allauth_settings.EMAIL_CONFIRMATION_EXPIRE_DAYS,
            **context,
        }
        if request is not None:
            full_context.setdefault("request", request)
        mail_queue(self.render_mail(template_prefix, email, full_context))

    def format_email_subject(self, subject):
        return f"[{settings.SITE_NAME}] {subject}"

    def get_login_redirect_url(self, request):
        """Staff land on their staff home, not on "Start your organization" (a `next=` still wins)."""
        if request.user.is_authenticated and request.user.is_staff:
            return reverse("staff_home")
        return super().get_login_redirect_url(request)

    def get_email_verification_redirect_url(self, email_address):
        return reverse("welcome")

    def save_user(self, request, user, form, commit=True):
        """allauth checks that the address is free, hashes the password, then inserts the user:
        two submissions of one signup form at once (a double click, two tabs) both pass the
        check, and the second insert breaks the unique address. That one is answered as an
        address already taken is (enumeration prevention): "check your email", the same page
        the first one shows, not a server error."""
        try:
            with transaction.atomic():
                return super().save_user(request, user, form, commit=commit)
        except IntegrityError:
            raise ImmediateHttpResponse(HttpResponseRedirect(reverse("account_email_verification_sent"))) from None
