"""The partner side's forms: apply, invite a customer, answer a request, end a link."""

from __future__ import annotations

from django import forms

from .models import PartnerApplication, PartnerRequest


class ApplicationForm(forms.ModelForm):
    website = forms.URLField(label="Website (optional)", required=False, max_length=200, assume_scheme="https")

    class Meta:
        model = PartnerApplication
        fields = ["company_name", "country", "website", "contact_name", "contact_email", "contact_phone", "description"]
        labels = {
            "company_name": "Company name",
            "website": "Website (optional)",
            "contact_name": "Partner contact: name",
            "contact_email": "Partner contact: email",
            "contact_phone": "Partner contact: phone (optional)",
            "description": "What your firm does, and for whom",
        }
        help_texts = {
            "contact_email": "Customers' requests and partner emails go here and to your organization's admins.",
            "description": "Staff read it to decide; approved partners show it in the directory customers choose from.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 5})}


class InviteForm(forms.Form):
    email = forms.EmailField(
        label="Your customer's admin: email address",
        help_text=(
            "If this address is an admin of an organization on Flywheel, that organization is asked to accept. "
            "Otherwise we email an invitation to sign up; the link waits for their new organization."
        ),
    )
    message = forms.CharField(
        label="A message for them (optional)", required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )


class RequestAnswerForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(PartnerRequest.Status.DONE, "Done"), (PartnerRequest.Status.DECLINED, "Declined")],
        error_messages={"required": "Mark the request done or declined.", "invalid_choice": "Mark the request done or declined."},
    )
    note = forms.CharField(required=False, max_length=1000)


class EndLinkForm(forms.Form):
    reason = forms.CharField(required=False, max_length=240)
