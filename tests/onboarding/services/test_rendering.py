"""Step templates: the pieces path renders exactly what Django's template engine renders."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.template.base import VariableNode
from django.utils.safestring import SafeString, mark_safe

from onboarding.services.rendering import template_pieces, template_render

HOSTILE = '<script>alert("x")</script> & \'quotes\''
CONTEXT = {
    "first_name": HOSTILE,
    "email": "o'brien+tag@example.com",
    "organization_name": "Smith & Sons <Ltd>",
    "product": "",
    "edition": "Standard",
    "trial_ends_at": datetime(2026, 3, 16, 12, 0, tzinfo=UTC),
    "app_url": "http://127.0.0.1:8000/app/?a=1&b=2",
    "invite_url": "http://127.0.0.1:8000/app/members/",
    "billing_url": "http://127.0.0.1:8000/app/billing/",
    "unsubscribe_url": "http://127.0.0.1:8000/email/unsubscribe/abc:def/",
    "user": None,
}

FLAT = [
    "{{ first_name }}, day 3 of your trial",
    '<p>Hello {{ first_name }} of {{organization_name}}</p><a href="{{ app_url }}">open</a>{{ unsubscribe_url }}',
    "Hello {{ first_name }},\n\nOpen {{ app_url }} ({{ email }}) {{ product }}{{ edition }}\n",
    "no variables at all {# a comment #} & <b>text</b>",
    "",
]
# Variables rendered by their own nodes, between the joined pieces.
FILTERED = [
    "{{ first_name }}, your {{ product|default:'Flywheel' }} trial",  # an empty product still says Flywheel
    "{{ trial_ends_at|date:'j F' }} <b>{{ first_name|upper }}</b>",
    "{{ trial_ends_at }}",  # not text: localized as Django localizes it
    "{{ first_name|safe }} {{ organization_name|default:email }}",
    "{{ unknown }} and {{ unknown|default:'x' }}",  # not in the context: Django decides
    "{{ product|default:edition }}",  # a filter argument from the context
    "{{ edition|date:'j F' }} {{ user }}",
]
OTHER = [
    "{% if product %}{{ product }}{% else %}your trial{% endif %}",
    "{{ user.first_name }} {{ first_name|upper }}",
    "{{ 'literal' }}",
    "{% autoescape off %}{{ first_name }}{% endautoescape %}",
    '{{ _("translated") }}',
]


@pytest.mark.parametrize("source", FLAT + FILTERED + OTHER)
@pytest.mark.parametrize("autoescape", [True, False], ids=["html", "text"])
def test_a_template_renders_as_django_renders_it(source, autoescape):
    expected = Template(source).render(Context(CONTEXT, autoescape=autoescape))
    rendered = template_render(source, CONTEXT, autoescape=autoescape)
    assert rendered == expected
    assert isinstance(rendered, SafeString)


def test_only_text_and_variables_of_the_context_take_the_pieces_path():
    assert all(template_pieces(source) is not None for source in FLAT + FILTERED)
    assert all(template_pieces(source) is None for source in OTHER)
    assert template_pieces("a {{ first_name }} b") == ("a ", "first_name", " b")
    assert [type(piece) for piece in template_pieces("{{ first_name|upper }}!")] == [str, VariableNode, str]


def test_recipient_values_are_escaped_in_html_and_left_alone_in_text():
    source = "<p>{{ first_name }}</p>"
    assert template_render(source, CONTEXT, autoescape=True) == (
        "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quotes&#x27;</p>"
    )
    assert template_render(source, CONTEXT, autoescape=False) == f"<p>{HOSTILE}</p>"
    # A value already marked safe is not escaped twice, as in Django.
    safe = {**CONTEXT, "first_name": mark_safe("<b>Ada</b>")}  # noqa: S308 - the test's own text
    assert template_render(source, safe, autoescape=True) == "<p><b>Ada</b></p>"
