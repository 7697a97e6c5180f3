"""The front door: landing page, product landing links, the welcome step and the home page."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import close_old_connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from accounts.exceptions import FlywheelError
from accounts.forms import OrganizationNameForm
from accounts.middleware import ORGANIZATION_KEY
from accounts.models import Organization, SignupIntent
from accounts.selectors import invite_meant_for_another_address
from accounts.services import (
    organization_create_for_signup,
    organization_name_suggest,
    organizations_joinable_by_domain,
    seats_in_use,
)
from accounts.session import UTM_KEYS, anonymous_id, signup_context_store, signup_start_over
from catalog.exceptions import UnknownEdition
from catalog.models import Edition
from catalog.selectors import edition_default_for_trial, edition_get, products_for_sale
from catalog.templatetags.catalog_tags import money
from common.exceptions import NotFound
from common.middleware import accepts_nul_in_body
from common.staff import staff_required
from experiments import events
from experiments.services import event_record
from provisioning.selectors import environments_of

from . import documents, gateway
from .exceptions import CheckoutInvalid, WebhookSignatureInvalid
from .formats import day
from .models import Payment, Subscription
from .selectors import (
    admin_name_of,
    get_payment_for_user,
    get_subscription_for_user,
    invoices_of,
    organizations_over_sales_threshold,
    product_states_of,
    subscriptions_of,
    trial_spent,
    trial_used,
)
from .services.billing_account import (
    billing_account_of,
    billing_details_update,
    card_setup_complete,
    card_setup_start,
    payment_terms_request,
)
from .services.checkout import checkout_quote, subscription_checkout
from .services.payments import invoice_pay_now, payment_apply_intent
from .services.seats import seats_quote, subscription_add_seats, subscription_remove_seats
from .services.subscriptions import (
    CANCELLATION_REASONS,
    edition_change_quote,
    subscription_cancel,
    subscription_change_edition,
    subscription_keep,
    subscription_pay_now,
    subscription_start_trial,
)
from .services.webhooks import webhook_receive

logger = logging.getLogger(__name__)


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/landing.html", {"products": products_for_sale()})


def signup_entry(request: HttpRequest) -> HttpResponse:
    """/signup?product=tracker&edition=standard&utm_source=...: remember, then sign up."""
    product_code = request.GET.get("product", "").strip()
    edition_code = request.GET.get("edition", "").strip()
    edition = None
    if product_code:
        try:
            edition = (
                edition_get(product_code=product_code, edition_code=edition_code)
                if edition_code
                else edition_default_for_trial(product_code=product_code)
            )
            if not edition.is_free and edition.trial_days == 0:
                raise UnknownEdition(
                    f"{edition.product.name} {edition.name} has no free trial; choose an edition that has one."
                )
        except UnknownEdition as error:
            return render(
                request,
                "billing/landing.html",
                {"products": products_for_sale(), "error": error.message},
                status=404,
            )
    if request.user.is_authenticated:
        messages.info(request, "You are already signed in.")
        return redirect("home")
    signup_start_over(request)
    signup_context_store(
        request,
        product_code=edition.product.code if edition else "",
        edition_code=edition.code if edition else "",
        edition_summary={
            "product": edition.product.name,
            "edition": edition.name,
            "trial_days": edition.trial_days,
            "free": edition.is_free,
        }
        if edition
        else None,
    )
    event_record(
        name=events.SIGNUP_STARTED,
        distinct_id=anonymous_id(request),
        properties={
            "product": edition.product.code if edition else "",
            "edition": edition.code if edition else "",
            **{key: request.GET[key][:200] for key in UTM_KEYS if request.GET.get(key)},
        },
    )
    return redirect("account_signup")


@login_required
def welcome(request: HttpRequest) -> HttpResponse:
    """Where a verified user lands: their workspace, or the choice of joining or starting."""
    if request.organization:  # type: ignore[attr-defined]
        return redirect("home")
    intent = SignupIntent.objects.filter(user=request.user).select_related("invite__organization").first()
    trial_label = ""
    if intent is not None and intent.product_code and intent.edition_code:
        try:
            edition = edition_get(product_code=intent.product_code, edition_code=intent.edition_code)
        except UnknownEdition:
            edition = None
        if edition is not None and not edition.is_free:
            trial_label = f"{edition.trial_days}-day {edition.product.name} {edition.name}"
    return render(
        request,
        "billing/welcome.html",
        {
            "joinable": organizations_joinable_by_domain(user=request.user),
            "intent": intent,
            "trial_label": trial_label,
            "suggested_name": organization_name_suggest(request.user.email),
            "invite_for_another_address": intent is not None and intent.invite is not None
            and invite_meant_for_another_address(invite=intent.invite, user=request.user),
            "form": OrganizationNameForm(),
        },
    )


@login_required
@require_POST
def organization_start(request: HttpRequest) -> HttpResponse:
    """Start one's own organization (and the trial the landing link asked for)."""
    form = OrganizationNameForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else ""
    try:
        organization = organization_create_for_signup(user=request.user, name=name)
    except FlywheelError as error:
        messages.error(request, error.message)
        return redirect("welcome")
    request.session[ORGANIZATION_KEY] = str(organization.public_id)
    return redirect("home")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The current organization's products, each in the state it is in (a cancelled or
    suspended one looks it, with what happened and what to do), their workspaces, and the
    other products to try or buy. A single workspace still being prepared is shown as the
    "being prepared" page."""
    organization = request.organization  # type: ignore[attr-defined]
    if not organization:
        return redirect("welcome")
    membership = request.membership  # type: ignore[attr-defined]
    environments = {environment.product_id: environment for environment in environments_of(organization=organization)}
    states = product_states_of(organization=organization)
    if len(environments) == 1:
        [(product_id, environment)] = environments.items()
        state = states.get(product_id)
        if not environment.is_settled and (state is None or state.usable):
            return redirect("environment_status", environment_id=environment.public_id)
    is_admin = membership.role == "admin"
    return render(
        request,
        "billing/home.html",
        {
            "organization": organization,
            "is_admin": is_admin,
            "admin_name": "" if is_admin else admin_name_of(organization=organization),
            "products": [(state, environments.get(product_id)) for product_id, state in states.items()],
            "in_use": any(state.usable for state in states.values()),
            "seats_used": seats_in_use(organization=organization),
            "other_products": _other_products(organization, exclude=set(states)) if is_admin else [],
        },
    )


def _other_products(organization: Organization, *, exclude: set[int]) -> list[dict]:
    """Products the organization never had, each with its trial. A product it had is on its
    own card, which says what can be done (a cancelled trial is bought, not tried again)."""
    offers = []
    for product in products_for_sale():
        if product.pk in exclude:
            continue
        editions = [edition for edition in product.editions.all() if not edition.is_free]
        trial = next((edition for edition in editions if edition.trial_days > 0), None)
        if trial is not None:
            offers.append({"product": product, "trial": trial})
    return offers


def _webhook_answer(*, body: bytes, signature: str, remote_addr: str | None) -> tuple[int, dict]:
    """The webhook's status and JSON answer, for both forms of the endpoint below."""
    try:
        received = webhook_receive(payload=body, signature=signature)
    except WebhookSignatureInvalid as error:
        logger.warning("stripe webhook refused from %s: %s", remote_addr, error.message)
        return 400, {"error": error.message}
    return 200, {"received": received.stripe_event_id, "duplicate": not received.created}


@accepts_nul_in_body
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Stripe's webhook: verified, stored once by event id, answered at once; the worker
    applies it (billing.tasks.webhooks_drain). Production serves the same endpoint through
    stripe_webhook_wsgi; this view answers it under runserver and the test client."""
    status, answer = _webhook_answer(
        body=request.body, signature=request.META.get("HTTP_STRIPE_SIGNATURE", ""), remote_addr=request.META.get("REMOTE_ADDR")
    )
    return JsonResponse(answer, status=status)


_WSGI_STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    500: "500 Internal Server Error",
}


def stripe_webhook_wsgi(environ: dict, start_response) -> list[bytes]:
    """The webhook as a bare WSGI application: config/wsgi.py routes /stripe/webhook here.

    A signed server-to-server POST needs nothing of Django's request cycle but the database
    connection's upkeep, which this does itself (close_old_connections before and after, as the
    request_started and request_finished signals do). Request and response objects, signals,
    URL resolution and the view's decorators cost more CPU than verifying and storing the
    event (bench/webhooks.py). The checks are the same: POST only (405), a body no larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE (413), the signature (400). An unexpected error answers 500
    and is logged; Stripe delivers the event again later, and a broken database connection is
    closed before the next request.
    """
    if environ.get("REQUEST_METHOD") != "POST":
        return _wsgi_json(start_response, 405, {"error": "Only POST is allowed."}, [("Allow", "POST")])
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length < 0 or (limit is not None and length > limit):
        return _wsgi_json(start_response, 413, {"error": "Webhook refused: the body is too large."})
    body = environ["wsgi.input"].read(length) if length else b""
    close_old_connections()
    try:
        status, answer = _webhook_answer(
            body=body, signature=environ.get("HTTP_STRIPE_SIGNATURE", ""), remote_addr=environ.get("REMOTE_ADDR")
        )
    except Exception:
        logger.exception("stripe webhook from %s could not be stored", environ.get("REMOTE_ADDR"))
        status, answer = 500, {"error": "The event could not be stored; deliver it again later."}
    finally:
        close_old_connections()
    return _wsgi_json(start_response, status, answer)


def _wsgi_json(start_response, status: int, answer: dict, headers: list | None = None) -> list[bytes]:
    content = json.dumps(answer).encode()
    start_response(
        _WSGI_STATUS[status],
        [("Content-Type", "application/json"), ("Content-Length", str(len(content))), *(headers or [])],
    )
    return [content]


def _admin_organization(request: HttpRequest):
    membership = request.membership  # type: ignore[attr-defined]
    if not membership:
        raise Http404
    return membership.organization, membership.role == "admin"


@login_required
def billing_page(request: HttpRequest) -> HttpResponse:
    """The organization's products, card on file and invoices."""
    organization, is_admin = _admin_organization(request)
    subscriptions = list(subscriptions_of(organization=organization))
    owned = {subscription.product_id for subscription in subscriptions}
    for subscription in subscriptions:
        subscription.other_editions = [
            edition
            for edition in Edition.objects.filter(product=subscription.product, is_active=True).order_by("rank")
            if edition.pk != subscription.edition_id
        ]
    return render(
        request,
        "billing/billing.html",
        {
            "organization": organization,
            "is_admin": is_admin,
            "subscriptions": subscriptions,
            "seats_used": seats_in_use(organization=organization),
            "other_products": [
                product for product in products_for_sale()
                if product.pk not in owned and not trial_used(organization=organization, product=product)
            ],
            "account": billing_account_of(organization),
            "invoices": invoices_of(organization=organization)[:50],
            "request_key": uuid.uuid4().hex,
            "cancellation_reasons": CANCELLATION_REASONS,
        },
    )


def _checkout_choice(request: HttpRequest, subscription):
    data = request.POST if request.method == "POST" else request.GET
    editions = list(
        Edition.objects.filter(product=subscription.product, is_active=True, monthly_price_minor__gt=0).order_by("rank")
    )
    edition = next((e for e in editions if e.code == data.get("edition")), None) or next(
        (e for e in editions if e.pk == subscription.edition_id), editions[0] if editions else None
    )
    try:
        seats = int(data.get("seats") or max(1, seats_in_use(organization=subscription.organization)))
    except ValueError:
        seats = -1
    interval = data.get("interval") or Subscription.Interval.MONTH
    return editions, edition, seats, interval


@never_cache
@login_required
def checkout(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Pick edition, seats and billing period, see the exact price, enter a card, pay."""
    organization, is_admin = _admin_organization(request)
    try:
        subscription = get_subscription_for_user(user=request.user, subscription_public_id=subscription_id)
    except NotFound:
        raise Http404 from None
    if subscription.organization_id != organization.pk or not is_admin:
        raise Http404
    editions, edition, seats, interval = _checkout_choice(request, subscription)
    error = ""
    quote = None
    if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
        # Already paid for (Back after paying, an old tab): say so, with no button to pay again.
        return render(
            request,
            "billing/checkout.html",
            {"subscription": subscription, "paid_invoice": documents.invoice_paid_last(subscription=subscription)},
            status=400 if request.method == "POST" else 200,
        )
    if edition is not None:
        try:
            quote = checkout_quote(subscription=subscription, edition=edition, seats=seats, interval=interval)
        except CheckoutInvalid as refusal:
            error = refusal.message
    if request.method == "POST" and quote is not None:
        try:
            setup_intent_id = request.POST.get("setup_intent", "")
            if setup_intent_id:
                card_setup_complete(organization=organization, actor=request.user, setup_intent_id=setup_intent_id)
            payment = subscription_checkout(
                subscription=subscription, actor=request.user, edition=edition, seats=seats, interval=interval
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            return redirect("payment_status", payment_id=payment.public_id)
    account = billing_account_of(organization)
    setup = None
    if not request.htmx and (not account.has_card or request.GET.get("new_card") or request.POST.get("setup_intent")):
        try:
            setup = card_setup_start(organization=organization, actor=request.user)
        except FlywheelError as refusal:
            error = error or refusal.message
    template = "billing/_quote.html" if request.htmx and request.method == "GET" else "billing/checkout.html"
    return render(
        request,
        template,
        {
            "subscription": subscription,
            "editions": editions,
            "edition": edition,
            "seats": seats,
            "interval": interval,
            "quote": quote,
            "error": error,
            "account": account,
            "setup": setup,
            "stripe_js_url": settings.STRIPE_JS_URL,
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        },
        status=400 if error and request.method == "POST" else 200,
    )


@never_cache
@login_required
def payment_status(request: HttpRequest, payment_id: uuid.UUID) -> HttpResponse:
    """Where a payment lands: polls until Stripe's answer is recorded."""
    try:
        payment = get_payment_for_user(user=request.user, payment_public_id=payment_id)
    except NotFound:
        raise Http404 from None
    if request.method == "POST" and payment.stripe_payment_intent_id:
        # After 3-D Secure in the browser: read the intent back from Stripe.
        try:
            payment_apply_intent(intent=gateway.payment_intent_retrieve(payment.stripe_payment_intent_id))
        except FlywheelError as error:
            messages.error(request, error.message)
        return redirect("payment_status", payment_id=payment.public_id)
    if request.htmx and payment.status == payment.Status.REQUIRES_ACTION:
        # The bank wants the customer: reload the whole page, which brings Stripe.js.
        return HttpResponseClientRefresh()
    template = "billing/_payment.html" if request.htmx else "billing/payment.html"
    return render(
        request,
        template,
        {"payment": payment, "stripe_js_url": settings.STRIPE_JS_URL, "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY},
    )


def _with_quote_key(request: HttpRequest) -> HttpResponse:
    """The same price page, with a key of its own in the address. Confirming uses it as the
    request key, so the page (Back, a reload, another tab) can tell before its button whether
    this price was already confirmed, and a second confirmation finds the first one's payment."""
    query = request.GET.copy()
    query["quote"] = uuid.uuid4().hex
    return redirect(f"{request.path}?{query.urlencode()}")


def _admin_subscription(request: HttpRequest, subscription_id: uuid.UUID) -> Subscription:
    organization, is_admin = _admin_organization(request)
    try:
        subscription = get_subscription_for_user(user=request.user, subscription_public_id=subscription_id)
    except NotFound:
        raise Http404 from None
    if subscription.organization_id != organization.pk or not is_admin:
        raise Http404
    return subscription


def _quote_key(request: HttpRequest) -> str:
    key = (request.POST.get("request_key") if request.method == "POST" else request.GET.get("quote")) or ""
    return key if 0 < len(key) <= 64 else ""


@never_cache
@login_required
def add_seats(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Add seats: the exact prorated charge is shown, one click confirms it. A price already
    confirmed says so (and links its invoice) instead of offering to pay again."""
    subscription = _admin_subscription(request, subscription_id)
    organization = subscription.organization
    key = _quote_key(request)
    if request.method == "GET" and not key:
        return _with_quote_key(request)
    data = request.POST if request.method == "POST" else request.GET
    try:
        seats = int(data.get("seats") or 1)
    except ValueError:
        seats = 0
    done = documents.invoice_of_request(organization=organization, request_key=key)
    error = ""
    quote = None
    if done is None:
        try:
            quote = seats_quote(subscription=subscription, seats=seats)
        except CheckoutInvalid as refusal:
            error = refusal.message
    if request.method == "POST" and (quote is not None or done is not None):
        try:
            payment = subscription_add_seats(
                subscription=subscription,
                actor=request.user,
                seats=seats,
                request_key=key,
                quote_token=request.POST.get("quote_token", ""),
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            return redirect("payment_status", payment_id=payment.public_id)
    return render(
        request,
        "billing/add_seats.html",
        {
            "subscription": subscription,
            "seats": seats,
            "quote": quote,
            "done": done,
            "done_payment": done.payments.order_by("-created_at").first() if done else None,
            "error": error,
            "account": billing_account_of(organization),
            "request_key": key or uuid.uuid4().hex,
        },
        status=400 if error and request.method == "POST" else 200,
    )


@never_cache
@login_required
def change_edition(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Change edition: the exact price (the new edition for the rest of the period, the credit
    for the unused old one, the total) is shown first, one click confirms it. A stale price is
    refused with the new one shown; a price already confirmed says so instead of a button."""
    subscription = _admin_subscription(request, subscription_id)
    organization = subscription.organization
    key = _quote_key(request)
    if request.method == "GET" and not key:
        return _with_quote_key(request)
    data = request.POST if request.method == "POST" else request.GET
    edition = Edition.objects.filter(product=subscription.product, code=data.get("edition", ""), is_active=True).first()
    if edition is None:
        messages.error(request, "Choose an edition of this product.")
        return redirect("billing")
    done = documents.invoice_of_request(organization=organization, request_key=key)
    error = ""
    if request.method == "POST" and done is None:
        try:
            outcome = subscription_change_edition(
                subscription=subscription,
                actor=request.user,
                edition=edition,
                request_key=key,
                quote_token=request.POST.get("quote_token", ""),
            )
        except FlywheelError as refusal:
            error = refusal.message
        else:
            if isinstance(outcome, Payment):
                return redirect("payment_status", payment_id=outcome.public_id)
            messages.success(
                request,
                f"{subscription.product.name} moves to {outcome.pending_edition.name} on {day(outcome.current_period_end)}."
                if outcome.pending_edition_id
                else f"{subscription.product.name} is now on {outcome.edition.name}.",
            )
            return redirect("billing")
    elif request.method == "POST" and done is not None:
        payment = done.payments.order_by("-created_at").first()
        if payment is not None:
            return redirect("payment_status", payment_id=payment.public_id)
    subscription.refresh_from_db()
    quote = None
    if done is None:
        try:
            quote = edition_change_quote(subscription=subscription, edition=edition)
        except CheckoutInvalid as refusal:
            error = error or refusal.message
    return render(
        request,
        "billing/change_edition.html",
        {
            "subscription": subscription,
            "edition": edition,
            "quote": quote,
            "done": done,
            "done_payment": done.payments.order_by("-created_at").first() if done else None,
            "error": error,
            "account": billing_account_of(organization),
            "request_key": key,
        },
        status=400 if error and request.method == "POST" else 200,
    )


@login_required
@require_POST
def subscription_manage(request: HttpRequest, subscription_id: uuid.UUID) -> HttpResponse:
    """Billing-page actions on one subscription: change edition, remove seats, pay now,
    cancel, keep (withdraw a cancellation)."""
    organization, is_admin = _admin_organization(request)
    try:
        subscription = get_subscription_for_user(user=request.user, subscription_public_id=subscription_id)
    except NotFound:
        raise Http404 from None
    if subscription.organization_id != organization.pk or not is_admin:
        raise Http404
    action = request.POST.get("action", "")
    try:
        if action == "change_edition":
            edition = Edition.objects.filter(product=subscription.product, code=request.POST.get("edition", "")).first()
            if edition is None:
                raise CheckoutInvalid("Choose an edition of this product.")
            if edition.rank > subscription.edition.rank:
                # Money moves: the price is shown first, on its own page.
                return redirect(f"{reverse('change_edition', args=[subscription.public_id])}?edition={edition.code}")
            outcome = subscription_change_edition(
                subscription=subscription, actor=request.user, edition=edition, request_key=""
            )
            messages.success(
                request,
                f"{subscription.product.name} moves to {outcome.pending_edition.name} at the end of the period."
                if outcome.pending_edition_id
                else "No edition change is waiting any more.",
            )
        elif action == "remove_seats":
            try:
                seats = int(request.POST.get("seats", ""))
            except ValueError:
                raise CheckoutInvalid("Enter how many seats to remove.") from None
            outcome = subscription_remove_seats(subscription=subscription, actor=request.user, seats=seats)
            messages.success(request, f"From the next renewal {subscription.product.name} has {outcome.pending_seat_limit} seats.")
        elif action == "cancel":
            outcome = subscription_cancel(
                subscription=subscription, actor=request.user, reason=request.POST.get("reason", "")
            )
            messages.success(
                request,
                f"{subscription.product.name} ends on {day(outcome.current_period_end)}, the end of the paid period."
                if outcome.cancel_at_period_end
                else f"{subscription.product.name} is cancelled.",
            )
        elif action == "keep":
            subscription_keep(subscription=subscription, actor=request.user)
            messages.success(request, f"{subscription.product.name} will renew as before.")
        elif action == "pay_now":
            payment = subscription_pay_now(subscription=subscription, actor=request.user)
            return redirect("payment_status", payment_id=payment.public_id)
        else:
            raise CheckoutInvalid(f"Unknown action {action!r}.")
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    return redirect("billing")


@login_required
@require_POST
def product_trial_start(request: HttpRequest) -> HttpResponse:
    """Try another product with one click: a trial inside the same organization.

    A product whose one trial the organization already used is bought instead: asked for a
    trial, nothing is created and the admin is told what buying costs; asked to buy (`buy`),
    its checkout opens (the subscription waits, unusable, until paid)."""
    organization, is_admin = _admin_organization(request)
    if not is_admin:
        raise Http404
    edition = (
        Edition.objects.select_related("product")
        .filter(product__code=request.POST.get("product", ""), product__is_active=True, is_active=True, trial_days__gt=0)
        .order_by("rank")
        .first()
    )
    if edition is None:
        messages.error(request, "That product has no trial.")
        return redirect("billing")
    if trial_spent(organization=organization, product=edition.product) and request.POST.get("buy") != "1":
        messages.error(
            request,
            f"{organization.name} has had its {edition.product.name} trial already. Buying {edition.product.name} "
            f"{edition.name} costs {money(edition.monthly_price_minor, edition.currency)} per seat a month: "
            "use its Buy button; nothing is charged before you confirm the price.",
        )
        return redirect(_back(request))
    try:
        subscription = subscription_start_trial(organization=organization, edition=edition, actor=request.user)
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
        return redirect("billing")
    if subscription.status == Subscription.Status.SUSPENDED:
        messages.info(request, f"Choose the seats and the billing period of {edition.product.name}; nothing is charged until you pay.")
        return redirect("checkout", subscription_id=subscription.public_id)
    messages.success(request, f"Your {edition} trial has started; its workspace is being prepared.")
    return redirect("home")


def _back(request: HttpRequest) -> str:
    """Where a refused form goes back to: the page it came from when that is /app/ or /billing/."""
    referer = request.headers.get("referer", "")
    home_path = reverse("home")
    return "home" if referer.split("?")[0].endswith(home_path) else "billing"


@login_required
@require_POST
def payment_terms(request: HttpRequest) -> HttpResponse:
    """An admin asks to pay by invoice with a purchase order (staff approve it in the admin),
    or goes back to card payments."""
    organization, is_admin = _admin_organization(request)
    if not is_admin:
        raise Http404
    try:
        payment_terms_request(
            organization=organization, actor=request.user, po_number=request.POST.get("po_number", ""),
            billing_email=request.POST.get("billing_email", ""),
        )
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, "Your request to pay by invoice was sent; we will answer by email.")
    return redirect("billing")


@login_required
@require_POST
def billing_details(request: HttpRequest) -> HttpResponse:
    """An admin sets who invoices are made out to (legal name, address, tax ID)."""
    organization, is_admin = _admin_organization(request)
    if not is_admin:
        raise Http404
    try:
        billing_details_update(
            organization=organization,
            actor=request.user,
            legal_name=request.POST.get("legal_name", ""),
            billing_address=request.POST.get("billing_address", ""),
            tax_id=request.POST.get("tax_id", ""),
        )
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, "Billing details saved. New invoices carry them; issued ones keep what they say.")
    return redirect("billing")


@staff_required
def sales_leads(request: HttpRequest) -> HttpResponse:
    """Staff: organizations whose yearly spend passed the sales threshold."""
    since = timezone.now() - timedelta(days=365)
    # The threshold and the totals are in the catalog's currency (it prices every edition in one).
    currencies = set(Edition.objects.values_list("currency", flat=True).distinct())
    return render(
        request,
        "billing/sales_leads.html",
        {
            "currency": currencies.pop().upper() if len(currencies) == 1 else "",
            "since": since,
            "threshold_minor": settings.SALES_THRESHOLD_MINOR,
            "leads": organizations_over_sales_threshold(minimum_minor=settings.SALES_THRESHOLD_MINOR, since=since),
        },
    )


# Invoices and credit notes as documents (billing/documents.py) ---------------------------------


def _document_response(
    request: HttpRequest, document, *, pdf_url: str, as_pdf: bool, failed_payment: Payment | None = None
) -> HttpResponse:
    from .documents import document_pdf

    if as_pdf:
        return HttpResponse(
            document_pdf(document),
            content_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{document.filename}"'},
        )
    return render(
        request, "billing/invoice.html", {"document": document, "pdf_url": pdf_url, "failed_payment": failed_payment}
    )


@login_required
def invoice_page(request: HttpRequest, invoice_id: uuid.UUID, as_pdf: bool = False) -> HttpResponse:
    """An invoice, for members of its organization (404 for anyone else): HTML or PDF."""
    from django.urls import reverse

    from .documents import get_invoice_for_user, invoice_document
    from .selectors import invoice_failed_payment

    try:
        invoice = get_invoice_for_user(user=request.user, invoice_public_id=invoice_id)
    except NotFound:
        raise Http404 from None
    return _document_response(
        request,
        invoice_document(invoice),
        pdf_url=reverse("invoice_pdf", args=[invoice.public_id]),
        as_pdf=as_pdf,
        failed_payment=None if as_pdf else invoice_failed_payment(invoice=invoice),
    )


@login_required
def invoice_pdf(request: HttpRequest, invoice_id: uuid.UUID) -> HttpResponse:
    return invoice_page(request, invoice_id, as_pdf=True)


@login_required
def credit_note_page(request: HttpRequest, credit_note_id: uuid.UUID, as_pdf: bool = False) -> HttpResponse:
    """An issued credit note, for members of its organization (404 for anyone else)."""
    from django.urls import reverse

    from .documents import credit_note_document, get_credit_note_for_user

    try:
        credit_note = get_credit_note_for_user(user=request.user, credit_note_public_id=credit_note_id)
    except NotFound:
        raise Http404 from None
    return _document_response(
        request,
        credit_note_document(credit_note),
        pdf_url=reverse("credit_note_pdf", args=[credit_note.public_id]),
        as_pdf=as_pdf,
    )


@login_required
def credit_note_pdf(request: HttpRequest, credit_note_id: uuid.UUID) -> HttpResponse:
    return credit_note_page(request, credit_note_id, as_pdf=True)


@never_cache
@login_required
def card_update(request: HttpRequest) -> HttpResponse:
    """Replace the card on file (Stripe.js card element, SetupIntent, 3-D Secure if asked).

    With `invoice` (after a declined payment: "Try another card"), the new card then pays that
    same open invoice, at the price already shown, instead of starting over.
    """
    from .selectors import get_open_invoice_for_organization, invoice_failed_payment

    organization, is_admin = _admin_organization(request)
    if not is_admin:
        raise Http404
    retry_invoice = None
    retry_invoice_id = request.POST.get("invoice") or request.GET.get("invoice")
    if retry_invoice_id:
        try:
            retry_invoice = get_open_invoice_for_organization(
                organization=organization, invoice_public_id=uuid.UUID(str(retry_invoice_id))
            )
        except (NotFound, ValueError):
            raise Http404 from None
    error = ""
    if request.method == "POST":
        try:
            card_setup_complete(
                organization=organization, actor=request.user, setup_intent_id=request.POST.get("setup_intent", "")
            )
        except NotFound:
            error = "The card form expired; enter the card again."
        except FlywheelError as refusal:
            error = refusal.message
        else:
            account = billing_account_of(organization)
            messages.success(request, f"{account.card_brand.capitalize()} ending {account.card_last4} is now the card on file.")
            if retry_invoice is None:
                return redirect("billing")
            try:
                payment = invoice_pay_now(invoice=retry_invoice, actor=request.user)
            except FlywheelError as refusal:
                messages.error(request, refusal.message)
                return redirect("billing")
            return redirect("payment_status", payment_id=payment.public_id)
    try:
        setup = card_setup_start(organization=organization, actor=request.user)
    except FlywheelError as refusal:
        setup, error = None, error or refusal.message
    return render(
        request,
        "billing/card.html",
        {
            "setup": setup,
            "error": error,
            "retry_invoice": retry_invoice,
            "retry_failed_payment": invoice_failed_payment(invoice=retry_invoice) if retry_invoice else None,
            "account": billing_account_of(organization),
            "stripe_js_url": settings.STRIPE_JS_URL,
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        },
        status=400 if error and request.method == "POST" else 200,
    )
