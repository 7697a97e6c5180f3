from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse

from .mail import mail_queue


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix, email, context):
        """Queue allauth's mail (verification, password reset) for the worker.

        The signup request then costs little beyond hashing the password, and a slow mail
        server never slows a page.
        """
        mail_queue(self.render_mail(template_prefix, email, context))

    def get_email_verification_redirect_url(self, email_address):
        return reverse("welcome")
