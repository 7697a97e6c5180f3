from django import forms

from .models import Membership


class SignupDetailsForm(forms.Form):
    """Extra signup fields; allauth mixes this into its signup form and calls `signup`."""

    organization_name = forms.CharField(
        max_length=120,
        required=False,
        label="Organization name",
        help_text="Optional: we use your email's domain if you leave it empty.",
    )

    def signup(self, request, user):
        from .services import user_signup_record
        from .session import signup_context_pop

        context = signup_context_pop(request)
        user_signup_record(user=user, organization_name=self.cleaned_data.get("organization_name", ""), **context)


class InviteForm(forms.Form):
    email = forms.CharField(max_length=254, label="Email address")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class OrganizationNameForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, label="Organization name")
