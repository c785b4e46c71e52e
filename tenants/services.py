"""Writes for tenancy: creating tenants and managing their teams."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest

from core.errors import DomainError
from core.locking import UPDATE, lock_rows
from tenants import audit
from tenants.context import tenant_context
from tenants.models import Domain, Membership, Tenant
from tenants.roles import Role
from tenants.signals import member_added

if TYPE_CHECKING:
    from accounts.models import User


@transaction.atomic
def create_tenant(
    *,
    slug: str,
    name: str,
    kind: str,
    base_currency: str,
    time_zone: str,
    default_language: str,
    host: str,
    owner_email: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> Tenant:
    """A tenant with its primary domain and its first owner (created if the email is new)."""
    tenant = Tenant(
        slug=slug,
        name=name,
        kind=kind,
        base_currency=base_currency,
        time_zone=time_zone,
        default_language=default_language,
    )
    tenant.full_clean()
    tenant.save()
    domain = Domain(tenant=tenant, host=host.strip().lower(), is_primary=True)
    domain.full_clean()
    domain.save()
    audit.record(
        audit.Action.CREATE,
        actor=actor,
        target=tenant,
        changes=audit.diff(None, audit.snapshot(tenant)),
        request=request,
    )
    with tenant_context(tenant):
        add_member(email=owner_email, role=Role.OWNER, actor=None, request=request)
    return tenant


def find_or_create_user(email: str, full_name: str = "") -> User:
    """The user with this email, or a new one without a password (they set one through the emailed link).
    A malformed address is a DomainError with field errors."""
    User = get_user_model()
    email = User.objects.normalize_email(email).strip().lower()
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User(email=email, full_name=full_name)
        user.set_unusable_password()
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as error:
            raise DomainError(
                "The email address is not valid.", code="invalid", fields=error.message_dict
            ) from error
        user.save()
    return user


def _actor_role(actor: User | None) -> str | None:
    return actor.current_role if actor is not None else Role.OWNER  # None: platform or system action


def check_may_assign(actor: User | None, role: str | None, current: str | None = None) -> None:
    actor_role = _actor_role(actor)
    if actor_role not in (Role.OWNER, Role.MANAGER):
        raise DomainError("Only an owner or a manager can manage the team.", code="permission_denied")
    if Role.OWNER in (role, current) and actor_role != Role.OWNER:
        raise DomainError(
            "Only an owner can make someone an owner or change an owner.", code="permission_denied"
        )


@transaction.atomic
def add_member(
    *, email: str, role: str, actor: User | None, full_name: str = "", request: HttpRequest | None = None
) -> Membership:
    """Give a person (found or created by email) a role in the current tenant."""
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.", code="invalid", fields={"role": ["Unknown role."]})
    check_may_assign(actor, role)
    user = find_or_create_user(email, full_name)
    if Membership.objects.filter(user=user).exists():
        raise DomainError(f"{user.email} is already a member of this team.", code="already_member")
    # Staff see every booking; a booker only their agency's. One person is never both (partners refuse the other
    # direction), so an agency's account cannot widen its own access. (Through the relation the partners app
    # declares on the user: tenants does not know partners.)
    if user.partner_accounts.exists():
        raise DomainError(
            f"{user.email} books for a partner agency here; use another address for a team member.",
            code="partner_account",
            fields={"email": ["This address belongs to an agency booker."]},
        )
    membership = Membership.objects.create(user=user, role=role)
    audit.record(
        audit.Action.CREATE,
        actor=actor,
        target=membership,
        changes=audit.diff(None, audit.snapshot(membership)),
        request=request,
    )
    if request is not None:  # added by someone on a page: the person is told where to sign in
        tenant = Tenant.objects.get(pk=membership.tenant_id)
        transaction.on_commit(
            partial(
                member_added.send, sender=Membership, membership=membership, tenant=tenant, request=request
            )
        )
    return membership


def check_keeps_an_owner(
    membership: Membership, role: str | None, is_active: bool, *, lock: bool = False
) -> None:
    """Refuse to demote or deactivate the last active owner. With ``lock``, every owner row is locked first, so
    two concurrent demotions of the last two owners cannot both pass."""
    if Membership.objects.filter(pk=membership.pk, role=Role.OWNER, is_active=True).exists() and (
        role != Role.OWNER or not is_active
    ):
        owners = Membership.objects.filter(role=Role.OWNER, is_active=True)
        owner_ids = (
            {owner.pk for owner in lock_rows(owners, strength=UPDATE)}
            if lock
            else set(owners.values_list("pk", flat=True))
        )
        if owner_ids == {membership.pk}:
            raise DomainError("A team must keep at least one active owner.", code="last_owner")


@transaction.atomic
def change_member(
    membership: Membership,
    *,
    actor: User | None,
    role: str | None = None,
    is_active: bool | None = None,
    request: HttpRequest | None = None,
) -> Membership:
    # Lock this membership together with every active owner, in one statement and in primary-key order: two
    # concurrent demotions of the last two owners then queue on the same rows instead of each holding its own
    # row and waiting for the other's (a deadlock); the second one sees the first's result and is refused.
    rows = lock_rows(
        Membership.objects.filter(Q(pk=membership.pk) | Q(role=Role.OWNER, is_active=True)), strength=UPDATE
    )
    locked = next((row for row in rows if row.pk == membership.pk), None)
    if locked is None:
        raise Membership.DoesNotExist(f"No membership {membership.pk} in this tenant.")
    new_role = role or locked.role
    if new_role not in Role.values:
        raise DomainError(f"Unknown role {new_role!r}.", code="invalid", fields={"role": ["Unknown role."]})
    check_may_assign(actor, new_role, locked.role)
    before = audit.snapshot(locked)
    locked.role = new_role
    if is_active is not None:
        locked.is_active = is_active
    check_keeps_an_owner(locked, locked.role, locked.is_active, lock=True)
    locked.save(update_fields=["role", "is_active"])
    audit.record(
        audit.Action.CHANGE,
        actor=actor,
        target=locked,
        changes=audit.diff(before, audit.snapshot(locked)),
        request=request,
    )
    return locked
