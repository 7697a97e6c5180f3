"""How the forum names people: never by their email address, whose domain says which
organization they belong to (only staff see the asker's organization)."""

from django import template

register = template.Library()


@register.filter
def display_name(user) -> str:
    """The user's first name, else "Member" and the start of their public id (stable, and
    tells two members apart)."""
    if user is None:
        return "Deleted user"
    first_name = (user.first_name or "").strip()
    return first_name or f"Member {user.public_id.hex[:6]}"
