from functools import cache
from zoneinfo import available_timezones

from django import forms
from django.utils.html import format_html

from .models import Membership


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


class BrowserTimeZoneInput(forms.HiddenInput):
    """A hidden input the browser fills with its IANA time zone (for quiet hours in email)."""

    def render(self, name, value, attrs=None, renderer=None):
        return format_html(
            "{}<script>document.currentScript.previousElementSibling.value = "
            "Intl.DateTimeFormat().resolvedOptions().timeZone || \"\";</script>",
            super().render(name, value, attrs, renderer),
        )


class SignupDetailsForm(forms.Form):
    """Extra signup fields; allauth mixes this into its signup form and calls `signup`."""

    organization_name = forms.CharField(
        max_length=120,
        required=False,
        label="Organization name",
        help_text="Optional: we use your email's domain if you leave it empty.",
    )
    time_zone = forms.CharField(max_length=64, required=False, widget=BrowserTimeZoneInput)

    def clean_time_zone(self) -> str:
        # Whatever the browser sent, only a zone this server knows is kept (else the default).
        value = (self.cleaned_data.get("time_zone") or "").strip()
        return value if value in _time_zones() else ""

    def signup(self, request, user):
        from .services import user_signup_record
        from .session import signup_context_pop

        if self.cleaned_data.get("time_zone") and not user.time_zone:
            user.time_zone = self.cleaned_data["time_zone"]
            user.save(update_fields=["time_zone"])

        context = signup_context_pop(request)
        user_signup_record(user=user, organization_name=self.cleaned_data.get("organization_name", ""), **context)


class InviteForm(forms.Form):
    email = forms.CharField(max_length=254, label="Email address")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class OrganizationNameForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, label="Organization name")
