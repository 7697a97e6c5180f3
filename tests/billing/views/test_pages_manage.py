"""Managing a subscription from the billing page over HTTP, and the tenant wall around it."""

from django.contrib.messages import get_messages
from django.urls import reverse

from billing.models import BillingAccount, Payment, Subscription
from provisioning.models import Environment

from ...conftest import organization_on
from ...factories import MembershipFactory, UserFactory
from ..helpers import paid_organization


def _manage(client, subscription, **data):
    return client.post(reverse("subscription_manage", args=[subscription.public_id]), data)


def _last_message(response):
    return [str(message) for message in get_messages(response.wsgi_request)][-1]


def test_change_edition_and_remove_seats_from_the_billing_page(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5, members=2)
    client.force_login(admin)
    page = client.get(reverse("billing")).content.decode()
    assert "Premium (now, prorated)" in page and "Free (at renewal)" in page

    response = _manage(client, subscription, action="change_edition", edition="free", request_key="k1")
    assert _last_message(response) == "Tracker moves to Free at the end of the period."
    response = _manage(client, subscription, action="remove_seats", seats="9")
    assert "cannot go below" in _last_message(response)
    response = _manage(client, subscription, action="remove_seats", seats="2")
    assert _last_message(response) == "From the next renewal Tracker has 3 seats."
    page = client.get(reverse("billing")).content.decode()
    assert "Moves to Free on" in page and "3 seats from" in page

    # An upgrade moves money: it shows its price first (tests/billing/views/test_checkout_edition_change.py).
    response = _manage(client, subscription, action="change_edition", edition="premium", request_key="k2")
    assert response["Location"] == reverse("change_edition", args=[subscription.public_id]) + "?edition=premium"
    assert not Payment.objects.filter(invoice__kind="upgrade").exists()
    assert "Unknown action" in _last_message(_manage(client, subscription, action="explode"))


def test_try_another_product_with_one_click(client, trial_organization):
    organization, admin = trial_organization
    client.force_login(admin)
    assert "Try Wiki" in client.get(reverse("billing")).content.decode()
    response = client.post(reverse("product_trial_start"), {"product": "wiki"})
    assert response["Location"] == reverse("home")
    wiki = Subscription.objects.get(organization=organization, product__code="wiki")
    assert wiki.status == Subscription.Status.TRIALING and wiki.edition.code == "standard"
    assert Environment.objects.filter(organization=organization, product__code="wiki").exists()
    again = client.post(reverse("product_trial_start"), {"product": "wiki"})
    assert "already has Wiki" in _last_message(again)
    assert Subscription.objects.filter(organization=organization, product__code="wiki").count() == 1


def test_ask_to_pay_by_invoice(client, trial_organization):
    organization, admin = trial_organization
    client.force_login(admin)
    response = client.post(reverse("payment_terms"), {"po_number": "", "billing_email": ""})
    assert "Enter the purchase order number" in _last_message(response)
    response = client.post(reverse("payment_terms"), {"po_number": "PO 42", "billing_email": "nope"})
    assert "'nope' is not a valid email address" in _last_message(response)
    client.post(reverse("payment_terms"), {"po_number": "PO 42", "billing_email": "ap@acme.example"})
    account = BillingAccount.objects.get(organization=organization)
    assert (account.po_number, account.billing_email, account.collection_method) == ("PO 42", "ap@acme.example", "card")


def test_sales_leads_page_is_for_staff(client, catalog):
    client.force_login(UserFactory(email="rep@flywheel.example"))
    assert client.get(reverse("sales_leads")).status_code == 403
    client.force_login(UserFactory(email="boss@flywheel.example", is_staff=True))
    assert "Organizations above the sales threshold" in client.get(reverse("sales_leads")).content.decode()


def test_billing_actions_are_walled_off(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    other, other_admin = organization_on("standard")
    client.force_login(other_admin)
    assert _manage(client, subscription, action="remove_seats", seats="1").status_code == 404
    member = MembershipFactory(organization=organization).user
    client.force_login(member)
    assert _manage(client, subscription, action="remove_seats", seats="1").status_code == 404
    assert client.post(reverse("product_trial_start"), {"product": "wiki"}).status_code == 404
    assert client.post(reverse("payment_terms"), {"po_number": "x"}).status_code == 404
    subscription.refresh_from_db()
    assert subscription.pending_seat_limit is None


def test_a_request_to_pay_by_invoice_shows_as_pending_and_is_sent_once(client, trial_organization):
    from billing.models import BillingAccount as Account

    from ..helpers import visible_text

    organization, admin = trial_organization
    client.force_login(admin)
    client.post(reverse("payment_terms"), {"po_number": "4500012345", "billing_email": "ap@acme.example"})
    requested_at = Account.objects.get(organization=organization).invoice_terms_requested_at
    page = client.get(reverse("billing")).content.decode()
    text = visible_text(page)
    assert f"Request pending (PO 4500012345) , sent on {requested_at:%-d %b %Y}, invoices to ap@acme.example." in text
    assert "What happens next: our team checks the request and answers by email." in text
    assert 'name="po_number"' not in page  # the form is gone while the request is pending

    again = client.post(reverse("payment_terms"), {"po_number": "4500099999", "billing_email": ""})
    assert _last_message(again) == (
        f"Your request to pay by invoice (PO 4500012345) was sent on {requested_at:%-d %b %Y} and is pending; "
        "we will answer by email. There is no need to send it again."
    )
    account = Account.objects.get(organization=organization)
    assert (account.po_number, account.invoice_terms_requested_at) == ("4500012345", requested_at)  # nothing changed
