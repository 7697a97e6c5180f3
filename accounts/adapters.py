from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from django.db import IntegrityError, transaction
from django.http import HttpResponseRedirect
from django.urls import reverse

from .mail import mail_queue


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix, email, context):
        """Queue allauth's mail (verification, password reset) for the worker.

        The signup request then costs little beyond hashing the password, and a slow mail
        server never slows a page.
        """
        mail_queue(self.render_mail(template_prefix, email, context))

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
