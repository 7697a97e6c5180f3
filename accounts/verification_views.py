"""The email confirmation page and the "check your email" page's question "verified yet?".

allauth's confirmation page calls a link it can no longer use "expired or invalid", also when
the address was confirmed already (the first click, or another browser). Ours says which it
is. And a link opened in another browser confirms the address there, while the tab where the
person signed up waits: that tab asks every few seconds and moves on by itself.
"""

from __future__ import annotations

from allauth.account import app_settings as allauth_settings
from allauth.account.models import EmailAddress, EmailConfirmation
from allauth.account.utils import has_verified_email
from allauth.account.views import ConfirmEmailView as AllauthConfirmEmailView
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _address_of_used_link(key: str) -> EmailAddress | None:
    """The verified address a confirmation link was for, once the link can no longer be
    used because the address is verified. None for a forged or mistyped link, and for an
    expired link whose address is still unverified."""
    if allauth_settings.EMAIL_CONFIRMATION_HMAC:
        try:
            pk = signing.loads(key, salt=allauth_settings.SALT)
        except signing.BadSignature:
            return None
        return EmailAddress.objects.filter(pk=pk, verified=True).first()
    confirmation = EmailConfirmation.objects.filter(key=key.lower()).select_related("email_address").first()
    if confirmation is not None and confirmation.email_address.verified:
        return confirmation.email_address
    return None


class ConfirmEmailView(AllauthConfirmEmailView):
    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        if not self.object:
            context["already_verified"] = _address_of_used_link(self.kwargs["key"])
        context["confirmation_days"] = allauth_settings.EMAIL_CONFIRMATION_EXPIRE_DAYS
        return context

    def post(self, *args, **kwargs) -> HttpResponse:
        try:
            self.get_object()
        except Http404:
            # A used or expired link submitted again (a second click, Back then Confirm):
            # the same page as opening it, not a bare 404.
            return self.get(*args, **kwargs)
        response = super().post(*args, **kwargs)
        if not self.request.user.is_authenticated:
            # Confirmed in a browser other than the one that signed up: the address is
            # verified, but this browser knows no password. Say so; the other tab moves on.
            self.object = None
            context = self.get_context_data()
            context["verified_here"] = _address_of_used_link(self.kwargs["key"])
            return self.render_to_response(context)
        return response


confirm_email = ConfirmEmailView.as_view()


@never_cache
@require_GET
def verification_status(request: HttpRequest) -> HttpResponse:
    """Asked every few seconds by the "check your email" page: has the address been verified?

    Only the browser that signed up (or signed in with an unverified address) holds allauth's
    pending login; once the address is verified, from any browser, that login completes here
    as it would had the link been opened in this browser, and the page is told where to go
    (HX-Redirect for htmx). Any other browser is told to keep waiting, whatever the address,
    so the answer reveals nothing about accounts. It grants nothing new: whoever holds that
    pending login typed the account's password, and could sign in with it anyway once the
    address is verified.
    """
    # Imported here: allauth.account.stages imports half of allauth, and importing it with the
    # URLconf runs into allauth's own import cycle.
    from allauth.account.stages import EmailVerificationStage, LoginStageController

    if request.user.is_authenticated:
        return _continue(reverse("welcome"))
    stage = LoginStageController.enter(request, EmailVerificationStage.key)
    if stage is None or stage.login.user is None or not has_verified_email(stage.login.user):
        return JsonResponse({"verified": False})
    response = stage.exit()
    if not request.user.is_authenticated:  # the login stopped after verification: sign in
        return _continue(reverse("account_login"))
    location = response.get("Location") if response is not None else None
    return _continue(location or reverse("welcome"))


def _continue(location: str) -> JsonResponse:
    response = JsonResponse({"verified": True, "next": location})
    response["HX-Redirect"] = location
    return response
