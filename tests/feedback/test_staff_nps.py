"""The NPS pages as staff (and a customer's admin) read them: the month opened is the month it
says, every group has a label in words, a change inside its margin of error says so, and the
question is quoted as the product asked it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
import time_machine

from catalog.models import Product
from feedback.models import Response
from feedback.selectors import breakdown_key_label, breakdown_labels

from ..conftest import organization_on
from ..factories import UserFactory
from .helpers import responses_insert

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
DECEMBER, NOVEMBER = date(2026, 12, 1), date(2026, 11, 1)


def tracker_answers(organization, scores, *, month, **fields):
    rows = responses_insert(organization, scores, month=month, **fields)
    Response.objects.filter(pk__in=[row.pk for row in rows]).update(product=Product.objects.get(code="tracker"))


def text_of(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    block = html[start : html.index("</div>", start)]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", block[block.index(">") + 1 :])).strip()


@pytest.fixture
def answered(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 3
    organization, admin = organization_on("standard")
    return organization, admin


def staff_page(client, **params) -> str:
    client.force_login(UserFactory(is_staff=True))
    with time_machine.travel(NOW, tick=False):
        response = client.get("/staff/feedback/", params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_report_opens_on_this_month_and_labels_each_month_by_name(client, answered):
    organization, _ = answered
    tracker_answers(organization, [10, 10, 10, 9], month=DECEMBER)
    tracker_answers(organization, [0, 1, 2, 3, 4], month=NOVEMBER)

    page = staff_page(client)

    assert "<h1>NPS · December 2026" in page
    assert text_of(page, "nps-month").startswith("December 2026 (this month, so far) +100")
    assert "4 answers" in text_of(page, "nps-month")
    assert text_of(page, "nps-previous").startswith("November 2026 -100")
    assert ">This month<" not in page and ">Last month<" not in page
    # The trend is drawn from the first month with answers, each month with its margin.
    assert 'aria-label="NPS by month: Oct 2026 too few answers, Nov 2026 -100, Dec 2026 +100"' in page

    november = staff_page(client, month="2026-11")
    assert "<h1>NPS · November 2026</h1>" in november
    assert text_of(november, "nps-month").startswith("November 2026 -100")
    assert "this month" not in text_of(november, "nps-month")


def test_a_change_within_its_margin_of_error_says_so(client, answered):
    organization, _ = answered
    tracker_answers(organization, [10, 9, 2, 8], month=DECEMBER)  # +25 from 4 answers
    tracker_answers(organization, [10, 3, 2, 8], month=NOVEMBER)  # -25 from 4 answers

    change = text_of(staff_page(client), "nps-change")

    assert change.startswith("Change +50 ±")
    assert "within the margin of error" in change and "not significant" in change
    assert "a real change" not in change


def test_a_change_larger_than_its_margin_is_called_real(client, answered):
    organization, _ = answered
    tracker_answers(organization, [10] * 60, month=DECEMBER)
    tracker_answers(organization, [0] * 60, month=NOVEMBER)

    change = text_of(staff_page(client), "nps-change")

    assert change.startswith("Change +200")
    assert "a real change" in change and "within the margin of error" not in change


def test_paying_or_not_is_labelled_in_words(client, answered):
    organization, _ = answered
    tracker_answers(organization, [10, 9, 8], month=DECEMBER, paying=False)
    tracker_answers(organization, [10, 9, 8], month=DECEMBER, paying=True)

    page = staff_page(client)

    paying = page[page.index("<h2>Paying or not</h2>") :]
    assert re.search(r'<tr data-group="true"><td>Paying</td>', paying)
    assert re.search(r'<tr data-group="false"><td>Not paying \(trial or free\)</td>', paying)
    # SQLite (`make run` without DATABASE_URL) gives the boolean back as 1/0.
    labels = breakdown_labels()
    assert breakdown_key_label("paying", 0, labels) == ("false", "Not paying (trial or free)")
    assert breakdown_key_label("paying", 1, labels) == ("true", "Paying")


def test_the_question_is_quoted_as_the_product_asked_it(client, answered):
    organization, admin = answered
    tracker_answers(organization, [10, 9, 8], month=DECEMBER)
    question = "How likely are you to recommend Tracker to a friend or colleague?"

    staff = staff_page(client)
    client.force_login(admin)
    with time_machine.travel(NOW, tick=False):
        customer = client.get("/app/feedback/").content.decode()

    for page in (staff, customer):
        assert f"“{question}”" in page
        assert "recommend us" not in page
