from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from tenants import audit


@transaction.atomic
def update_profile(user: User, *, actor: User, request: HttpRequest | None = None, **changes: str) -> User:
    """Change a user's own details (name, phone); the change is audited without the personal values."""
    allowed = {"full_name", "phone"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not editable here: {', '.join(sorted(unknown))}")
    before = audit.snapshot(user)
    for name, value in changes.items():
        setattr(user, name, value)
    user.full_clean(exclude=["password", "email"])
    user.save(update_fields=[*changes])
    audit.record(
        audit.Action.CHANGE,
        actor=actor,
        target=user,
        changes=audit.diff(before, audit.snapshot(user)),
        request=request,
    )
    return user
