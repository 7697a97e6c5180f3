"""The demo product's pages: the launch from Flywheel, each product's workspace with the kit,
the kit's token refresh, the one success action, signing out."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from .content import CREATED_LIMIT, PAGE_TREE, PRODUCTS, WIKI_PAGE, board_with, queue_with
from .flywheel import LaunchRefused, kit_token, launch_verify

SESSION_KEY = "workspaces"
SUCCESS_KEY = "success"


def _workspaces(request: HttpRequest) -> dict[str, dict]:
    return request.session.get(SESSION_KEY) or {}


def _signed_in(request: HttpRequest, environment: uuid.UUID) -> dict | None:
    return _workspaces(request).get(str(environment))


def _flywheel(path: str) -> str:
    return f"{settings.FLYWHEEL_URL}{path}"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "demo_product/home.html", {"flywheel_app": _flywheel("/app/")})


@never_cache
@require_GET
def workspace(request: HttpRequest, environment: uuid.UUID) -> HttpResponse:
    """A workspace. Flywheel's launch arrives with `?ticket=`: once verified, the person is
    signed in here (this product's own session) and the ticket leaves the address. Without a
    session, the person is sent to Flywheel, which launches them again (or asks them to sign
    in first)."""
    ticket = request.GET.get("ticket")
    if ticket:
        try:
            launch = launch_verify(ticket, environment=str(environment))
        except LaunchRefused as refusal:
            return render(
                request,
                "demo_product/launch_refused.html",
                {"reason": str(refusal), "retry": _flywheel(f"/w/{environment}/"), "flywheel_app": _flywheel("/app/")},
                status=403,
            )
        workspaces = _workspaces(request)
        if any(entry.get("user_id") != launch.user_id for entry in workspaces.values()):
            request.session.flush()  # another person in this browser: nothing of the first one's stays
            workspaces = {}
        else:
            request.session.cycle_key()  # a new session key at each sign-in
        previous = workspaces.get(str(environment)) or {}
        workspaces[str(environment)] = {**asdict(launch), "created": previous.get("created", [])}
        request.session[SESSION_KEY] = workspaces
        return redirect("workspace", environment=environment)
    signed_in = _signed_in(request, environment)
    if signed_in is None:
        return redirect(_flywheel(f"/w/{environment}/"))
    product = PRODUCTS.get(signed_in["product"])
    if product is None:
        return render(request, "demo_product/home.html", {"flywheel_app": _flywheel("/app/")}, status=404)
    try:
        token = kit_token(
            product=signed_in["product"], user_id=signed_in["user_id"], organization_id=signed_in["organization_id"]
        )
    except LookupError:
        token = ""  # the secret was removed since the launch: the product works, without the kit
    succeeded = request.session.pop(SUCCESS_KEY, "") == str(environment)
    initials = "".join(word[0] for word in signed_in["user_name"].split()[:2]).upper() or "?"
    return render(
        request,
        f"demo_product/{signed_in['product']}.html",
        {
            "environment": environment,
            "person": signed_in,
            "product": product,
            "created": signed_in.get("created", []),
            "succeeded": succeeded,
            "kit_token": token,
            "kit_script": _flywheel("/kit/v1/kit.js"),
            "flywheel_app": _flywheel("/app/"),
            "initials": initials,
            "board": board_with(signed_in.get("created", []), initials),
            "page_tree": PAGE_TREE,
            "wiki_page": WIKI_PAGE,
            "queue": queue_with(signed_in.get("created", []), signed_in["user_name"]),
        },
    )


@require_POST
def create(request: HttpRequest, environment: uuid.UUID) -> HttpResponse:
    """The product's one success action (a card, a page, a request). The page that follows
    reports it to Flywheel: its script calls the kit's `track('first_success')`."""
    signed_in = _signed_in(request, environment)
    if signed_in is None:
        return redirect(_flywheel(f"/w/{environment}/"))
    title = " ".join(request.POST.get("title", "").split())[:120]
    if title:
        workspaces = _workspaces(request)
        created = [title, *signed_in.get("created", [])][:CREATED_LIMIT]
        workspaces[str(environment)] = {**signed_in, "created": created}
        request.session[SESSION_KEY] = workspaces
        request.session[SUCCESS_KEY] = str(environment)
    return redirect("workspace", environment=environment)


@never_cache
@require_GET
def flywheel_token(request: HttpRequest, environment: uuid.UUID) -> JsonResponse:
    """A fresh kit token for the person signed in to this workspace (the kit's `token-url`,
    asked when its Flywheel session runs out). Same origin only: it answers no CORS request."""
    signed_in = _signed_in(request, environment)
    if signed_in is None:
        return JsonResponse({"detail": "You are signed out of this workspace: reload the page."}, status=401)
    try:
        token = kit_token(
            product=signed_in["product"], user_id=signed_in["user_id"], organization_id=signed_in["organization_id"]
        )
    except LookupError as missing:
        return JsonResponse({"detail": str(missing)}, status=503)
    return JsonResponse({"token": token})


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return render(request, "demo_product/home.html", {"flywheel_app": _flywheel("/app/"), "signed_out": True})
