from functools import cache
from zoneinfo import available_timezones

from allauth.account.forms import ChangePasswordForm as AllauthChangePasswordForm
from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.forms import ResetPasswordKeyForm as AllauthResetPasswordKeyForm
from allauth.account.forms import SetPasswordForm as AllauthSetPasswordForm
from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.core import context as allauth_context
from django import forms

from .models import Membership


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


PASSWORD_RULES_HELP = "At least 8 characters: not only digits, not a common password, not like your email address."  # noqa: S105 (help text, not a password)


def _one_new_password(form: forms.Form, label: str) -> None:
    """One new-password field with a Show button, instead of typing it twice."""
    form.fields.pop("password2", None)
    password = form.fields["password1"]
    password.label = label
    password.help_text = PASSWORD_RULES_HELP
    password.widget.attrs.update({"data-password-toggle": "", "autocomplete": "new-password"})
    password.widget.attrs.pop("placeholder", None)


class LoginForm(AllauthLoginForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Email address"
        self.fields["login"].widget.attrs.pop("placeholder", None)
        self.fields["password"].help_text = ""
        self.fields["password"].widget.attrs.update({"data-password-toggle": ""})
        self.fields["password"].widget.attrs.pop("placeholder", None)
        if "remember" in self.fields:
            self.fields["remember"].label = "Keep me signed in on this device"


class ResetPasswordKeyForm(AllauthResetPasswordKeyForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _one_new_password(self, "New password")


class ChangePasswordForm(AllauthChangePasswordForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _one_new_password(self, "New password")
        self.fields["oldpassword"].label = "Current password"
        self.fields["oldpassword"].help_text = ""
        self.fields["oldpassword"].widget.attrs.pop("placeholder", None)


class SetPasswordForm(AllauthSetPasswordForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _one_new_password(self, "Password")


class SignupForm(AllauthSignupForm):
    """allauth's signup form as Flywheel asks it: an address and one password (shown on
    request), nothing else. The organization is named after the address's domain (or the
    person) and renamed later.

    Through an invite link the invited address is filled in and locked: the link, mailed to
    that address, proved it, so it is stored verified (allauth's stash_verified_email) and
    any other address is refused.
    """

    time_zone = forms.CharField(
        max_length=64, required=False, widget=forms.HiddenInput(attrs={"data-browser-time-zone": ""})
    )

    def __init__(self, *args, **kwargs) -> None:
        from .session import signup_choice

        super().__init__(*args, **kwargs)
        request = allauth_context.request
        self.choice = signup_choice(request) if request is not None else None
        self.invite = self.choice.invite if self.choice else None
        email = self.fields["email"]
        email.label = "Email address"
        email.widget.attrs.update({"autocomplete": "email", "placeholder": "you@company.com"})
        if self.invite is not None:
            email.initial = self.invite.email
            email.widget.attrs.update({"readonly": "", "aria-describedby": "id_email_helptext"})
            email.help_text = (
                f"Your invitation to {self.invite.organization.name} was sent to this address, so it needs "
                "no confirming."
            )
        _one_new_password(self, "Password")

    def clean_email(self) -> str:
        value = super().clean_email()
        if self.invite is not None and value.lower() != self.invite.email.lower():
            raise forms.ValidationError(
                f"Your invitation to {self.invite.organization.name} is for {self.invite.email}: sign up "
                "with that address. To use another one, ask an admin there to invite it."
            )
        return value

    def clean_time_zone(self) -> str:
        # Whatever the browser sent, only a zone this server knows is kept (else the default).
        value = (self.cleaned_data.get("time_zone") or "").strip()
        return value if value in _time_zones() else ""

    def signup(self, request, user) -> None:
        from .services import user_signup_record
        from .session import signup_context_pop

        if self.cleaned_data.get("time_zone") and not user.time_zone:
            user.time_zone = self.cleaned_data["time_zone"]
            user.save(update_fields=["time_zone"])
        user_signup_record(user=user, **signup_context_pop(request))


class InviteForm(forms.Form):
    email = forms.CharField(max_length=254, label="Email address")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class OrganizationNameForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, label="Organization name")
