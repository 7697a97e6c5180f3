"""Rendering a step's subject and bodies for one recipient (and the admin preview's sample).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.template import Context, Template
from django.template.base import TextNode, Variable, VariableNode
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from ..models import Step


@dataclass
class Rendered:
    subject: str
    text: str
    html: str


def render_step(step: Step, context: dict) -> Rendered:
    """Subject, text and HTML of a step for one recipient's context (also the admin preview)."""
    subject = template_render(step.subject, context, autoescape=False)
    return Rendered(
        subject=" ".join(subject.split()),
        text=template_render(step.text_body, context, autoescape=False),
        html=template_render(step.html_body, context, autoescape=True),
    )


# The context variables that are plain text for every recipient: a template that only prints
# them ({{ first_name }}, no filter, no tag) is its text with them put in their places.
_TEXT_VARIABLES = frozenset(
    {"first_name", "email", "organization_name", "product", "edition", "app_url", "invite_url", "billing_url", "unsubscribe_url"}
)


def template_render(source: str, context: dict, *, autoescape: bool) -> str:
    """What Template(source).render(Context(context, autoescape=autoescape)) returns.

    A template made of text and variables of the context, with or without filters (most
    steps), is split once per process into its pieces and rendered by joining them: a bare
    text variable is the recipient's value, escaped for HTML as Django escapes it
    (conditional_escape); a variable with filters (or one that is not text) is rendered by
    its own node, which reads only the variables and the autoescape, use_l10n and use_tz
    flags of what it is given. Any other template (tags, dotted lookups, literals, unknown
    names) is rendered by Django, and so is a template whose pieces raise. Creating the
    Contexts and walking the nodes cost more than the rest of an email."""
    pieces = template_pieces(source)
    if pieces is not None:
        rendered = _render_pieces(pieces, context, autoescape=autoescape)
        if rendered is not None:
            # Safe, as Django's render returns it (the admin preview escapes the subject and text itself).
            return SafeString(rendered)
    return template_compiled(source).render(Context(context, autoescape=autoescape))


class _VariableContext(dict):
    """The variables of a recipient's context and what a VariableNode reads of a Context
    besides them, with Context's defaults (no Context with its stacks per email)."""

    use_l10n = None
    use_tz = None
    template = None

    def __init__(self, variables: dict, *, autoescape: bool) -> None:
        super().__init__(variables)
        self.autoescape = autoescape


def _render_pieces(pieces: tuple[str | VariableNode, ...], context: dict, *, autoescape: bool) -> str | None:
    """The pieces joined, or None when one of them cannot be rendered here."""
    # What conditional_escape() returns for a plain str (no __html__): html.escape's text,
    # without keep_lazy's wrapper around Django's escape() (a third of the rendering's CPU).
    escape = html.escape if autoescape else str
    variables: _VariableContext | None = None
    out = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            out.append(piece)
        elif type(piece) is str:
            value = context.get(piece)
            if type(value) is not str:
                return None
            out.append(escape(value))
        else:
            if piece.filter_expression.var.lookups[0] not in context:
                return None  # Django decides: string_if_invalid, or an error
            if variables is None:
                variables = _VariableContext(context, autoescape=autoescape)
            try:
                out.append(piece.render(variables))
            except Exception:  # noqa: BLE001 - Django's own render says what is wrong, or renders it
                return None
    return "".join(out)


@lru_cache(maxsize=512)
def template_pieces(source: str) -> tuple[str | VariableNode, ...] | None:
    """The template's text and variables, alternating (text first, text last): the name of
    a bare text variable, else the VariableNode of one context variable (with filters, or a
    variable that is not text); or None when the template holds anything else: a tag, a
    lookup with a dot, a literal, a translated string."""
    pieces: list[str | VariableNode] = [""]
    for node in template_compiled(source).nodelist:
        if type(node) is TextNode:
            pieces[-1] += node.s
            continue
        variable = node.filter_expression.var if type(node) is VariableNode else None
        if (
            not isinstance(variable, Variable)
            or variable.literal is not None
            or variable.translate
            or variable.message_context
            or variable.lookups is None
            or len(variable.lookups) != 1
        ):
            return None
        bare = not node.filter_expression.filters and variable.lookups[0] in _TEXT_VARIABLES
        pieces.extend([variable.lookups[0] if bare else node, ""])
    return tuple(pieces)


def sample_context() -> dict:
    """What the admin preview renders a step with."""
    return {
        "first_name": "Ada",
        "email": "ada@example.com",
        "organization_name": "Acme Rockets",
        "product": "Tracker",
        "edition": "Standard",
        "trial_ends_at": timezone.now() + timedelta(days=14),
        "app_url": f"{settings.SITE_URL}/app/",
        "invite_url": f"{settings.SITE_URL}{reverse('members')}",
        "billing_url": f"{settings.SITE_URL}{reverse('billing')}",
        "unsubscribe_url": f"{settings.SITE_URL}{reverse('onboarding_unsubscribe', args=['sample'])}",
    }


@lru_cache(maxsize=512)
def template_compiled(source: str) -> Template:
    """Compiled once per process for each template text (a changed text is a new key)."""
    return Template(source)
