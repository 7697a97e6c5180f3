import base64

from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from common.staff import staff_required
from experiments.analysis import baseline_of, variation_role
from experiments.models import Experiment

from .exceptions import LinkInvalid, UnsubscribeInvalid
from .models import Sequence
from .selectors import variation_reports
from .services.suppression import email_from_unsubscribe_token
from .services.suppression import unsubscribe as unsubscribe_service
from .services.tracking import send_click_record, send_open_record

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


# RFC 8058: the mail provider POSTs "List-Unsubscribe=One-Click" to the link, with no cookie and
# no CSRF token; the signed token in the URL is the authority, so no login is needed either.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET: a page that confirms with one button. POST: unsubscribe at once (one-click)."""
    try:
        email = email_from_unsubscribe_token(token)
        if request.method == "POST":
            unsubscribe_service(token=token, source="one-click" if "List-Unsubscribe" in request.POST else "link")
            return render(request, "onboarding/unsubscribed.html", {"email": email})
    except UnsubscribeInvalid as error:
        return render(request, "onboarding/link_invalid.html", {"message": error.message}, status=400)
    return render(request, "onboarding/unsubscribe_confirm.html", {"email": email, "token": token})


@never_cache
@require_GET
def open_pixel(request, token: str):
    """A 1x1 GIF that counts an open; always the same image, whatever the token."""
    send_open_record(token=token)
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click(request, token: str):
    """Count a click and redirect to the signed URL, which must be one of our own pages."""
    try:
        url = send_click_record(token=token)
    except LinkInvalid as error:
        return render(request, "onboarding/link_invalid.html", {"message": error.message}, status=400)
    return HttpResponseRedirect(url)


@staff_required
def staff_report(request):
    """Staff: onboarding emails per experiment variation: sent, opened, clicked, converted.
    Variations are named, with their role, as on the experiment pages."""
    reports = variation_reports()
    experiments = {
        experiment.key: experiment
        for experiment in Experiment.objects.filter(key__in={r.experiment_key for r in reports}).prefetch_related("variations")
    }
    sequences = dict(Sequence.objects.filter(key__in={r.sequence_key for r in reports}).values_list("key", "name"))
    for report in reports:
        experiment = experiments.get(report.experiment_key)
        variations = list(experiment.variations.all()) if experiment else []
        variation = next((v for v in variations if v.key == report.variation_key), None)
        report.experiment_name = experiment.name if experiment else report.experiment_key
        report.variation_name = (variation.name or variation.key) if variation else report.variation_key
        report.variation_role = variation_role(variation, baseline=baseline_of(variations)) if variation else ""
        report.sequence_name = sequences.get(report.sequence_key, report.sequence_key)
    return render(request, "onboarding/staff_report.html", {"reports": reports})
