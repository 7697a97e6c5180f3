"""The partner audit log: one row per thing a partner did for a customer (and per change of
the relation itself), readable by staff and by the customer's admins."""

from __future__ import annotations

from typing import Any

from accounts.models import Organization, User

from ..models import AuditEntry, Partner


def audit_record(
    *,
    partner: Partner | None,
    customer: Organization | None,
    actor: User | None,
    actor_side: str,
    action: str,
    summary: str,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry in the caller's transaction (so it exists exactly when the action
    does). `summary` is a sentence a customer's admin reads as it is ("Northwind Partners added
    10 seats to Tracker (invoice FW-2026-000042, billed to Northwind Partners)"); `detail` keeps
    ids and figures (no personal data of the customer's members)."""
    return AuditEntry.objects.create(
        partner=partner,
        customer=customer,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_side=actor_side,
        action=action,
        summary=summary[:400],
        detail=detail or {},
    )
