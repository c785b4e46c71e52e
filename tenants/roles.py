"""Staff roles inside a tenant and what each may do.

Permissions are derived from the role, not stored per user: changing what "finance" may do is a code change,
reviewed and tested, not an admin click. Later apps add their labels here.
"""

from __future__ import annotations

import re

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    SALES = "sales", "Sales"
    OPERATIONS = "operations", "Operations"
    FINANCE = "finance", "Finance"
    READ_ONLY = "read_only", "Read-only"
    GUIDE = "guide", "Guide"


# Roles that touch money or people's access must sign in with a second factor.
MFA_REQUIRED_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.FINANCE})
# Roles that may manage the team (memberships); only an owner may create or change an owner.
TEAM_ADMIN_ROLES = frozenset({Role.OWNER, Role.MANAGER})

ALL = frozenset({"view", "add", "change", "delete"})
WRITE = frozenset({"view", "add", "change"})
VIEW = frozenset({"view"})
NONE: frozenset[str] = frozenset()

# Keys are "app_label.model", "app_label" or "*" (most specific wins).
GRANTS: dict[str, dict[str, frozenset[str]]] = {
    Role.OWNER: {"*": ALL, "tenants.auditevent": VIEW},
    Role.MANAGER: {"*": ALL, "tenants.auditevent": VIEW},
    Role.SALES: {
        "*": VIEW,
        "bookings": WRITE,
        "partners": WRITE,
        "inventory.hold": WRITE,
        "inventory.allotment": WRITE,
        "tenants.membership": NONE,
        "tenants.auditevent": NONE,
    },
    Role.OPERATIONS: {
        "*": VIEW,
        "inventory": WRITE,
        "tours": WRITE,
        "tenants.membership": NONE,
        "tenants.auditevent": NONE,
    },
    Role.FINANCE: {
        "*": VIEW,
        "payments": WRITE,
        "tenants.membership": NONE,
        "tenants.auditevent": VIEW,
    },
    Role.READ_ONLY: {"*": VIEW, "tenants.membership": NONE, "tenants.auditevent": NONE},
    # Guides run departures: who travels and checking them in, nothing else.
    Role.GUIDE: {
        "bookings.booking": VIEW,
        "bookings.traveller": VIEW,
        "bookings.bookingitem": VIEW,
        "inventory.departure": VIEW,
    },
}

# Permissions that are not model CRUD ("app_label.codename"), granted per role.
EXTRA_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset({"tenants.manage_team", "bookings.check_in", "bookings.override_refund"}),
    Role.MANAGER: frozenset({"tenants.manage_team", "bookings.check_in", "bookings.override_refund"}),
    Role.FINANCE: frozenset({"bookings.override_refund"}),
    Role.SALES: frozenset({"bookings.check_in"}),
    Role.OPERATIONS: frozenset({"bookings.check_in"}),
    Role.GUIDE: frozenset({"bookings.check_in"}),
}

_CRUD = re.compile(r"^(view|add|change|delete)_(\w+)$")


def role_actions(role: str, app_label: str, model_name: str) -> frozenset[str]:
    grants = GRANTS.get(role, {})
    for key in (f"{app_label}.{model_name}", app_label, "*"):
        if key in grants:
            return grants[key]
    return NONE


def role_has_perm(role: str | None, perm: str) -> bool:
    """``perm`` in Django's form, "app_label.codename"."""
    if not role or "." not in perm:
        return False
    app_label, codename = perm.split(".", 1)
    crud = _CRUD.match(codename)
    if crud:
        return crud.group(1) in role_actions(role, app_label, crud.group(2))
    return perm in EXTRA_PERMISSIONS.get(role, NONE)


def role_has_module_perms(role: str | None, app_label: str) -> bool:
    if not role:
        return False
    grants = GRANTS.get(role, {})
    return any(
        actions and (key == "*" or key == app_label or key.startswith(app_label + "."))
        for key, actions in grants.items()
    )
