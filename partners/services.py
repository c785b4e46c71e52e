"""Writes for the trade side: agencies, their bookers and their contracts. Every write is validated and audited."""

from __future__ import annotations

import datetime as dt
import uuid
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from accounts.models import User
from accounts.passwords import send_partner_invitation
from core.errors import ConflictError, DomainError
from core.locking import lock_row
from partners.locks import lock_agency
from partners.models import Agency, Contract, PartnerUser
from tenants import audit
from tenants.models import Membership, Tenant
from tenants.services import find_or_create_user

AGENCY_FIELDS = {
    "legal_name",
    "trading_name",
    "country",
    "tax_id",
    "currency",
    "email",
    "phone",
    "address",
    "status",
}
CONTRACT_FIELDS = {
    "model",
    "commission_percent",
    "payment_terms_days",
    "credit_limit",
    "valid_from",
    "valid_to",
    "notes",
}


def _unknown(changes: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise DomainError(
            f"These fields cannot be set here: {', '.join(unknown)}.",
            code="invalid",
            fields={name: ["Not editable."] for name in unknown},
        )


@transaction.atomic
def create_agency(*, actor: User | None, request: HttpRequest | None = None, **fields: Any) -> Agency:
    _unknown(fields, AGENCY_FIELDS)
    if Agency.objects.filter(legal_name__iexact=fields.get("legal_name", "")).exists():
        raise ConflictError(
            "An agency with this legal name exists already.",
            code="agency_exists",
            fields={"legal_name": ["Already in use."]},
        )
    return audit.save_audited(Agency(**fields), actor=actor, request=request)


@transaction.atomic
def update_agency(
    agency: Agency, *, actor: User | None, request: HttpRequest | None = None, **changes: Any
) -> Agency:
    _unknown(changes, AGENCY_FIELDS)
    agency = lock_agency(agency)
    if "currency" in changes and changes["currency"] != agency.currency and agency.contracts.exists():
        raise DomainError(
            "The currency of an agency with contracts cannot change: credit limits are in it.",
            code="currency_locked",
            fields={"currency": ["Locked by existing contracts."]},
        )
    for name, value in changes.items():
        setattr(agency, name, value)
    return audit.save_audited(agency, actor=actor, request=request)


@transaction.atomic
def add_partner_user(
    agency: Agency,
    *,
    email: str,
    actor: User | None,
    full_name: str = "",
    is_agency_admin: bool = False,
    request: HttpRequest | None = None,
) -> PartnerUser:
    """Give a person (found or created by email, without a password until they set one) access as a booker of
    ``agency``. Staff and bookers are kept apart: one person is not both in the same tenant."""
    user = find_or_create_user(email, full_name)
    if PartnerUser.objects.filter(user=user).exists():
        raise ConflictError(f"{user.email} already books for an agency here.", code="already_partner_user")
    if Membership.objects.filter(user=user).exists():
        raise ConflictError(f"{user.email} is a staff member here.", code="already_member")
    partner_user = audit.save_audited(
        PartnerUser(user=user, agency=agency, is_agency_admin=is_agency_admin), actor=actor, request=request
    )
    if request is not None:
        tenant = Tenant.objects.get(pk=partner_user.tenant_id)
        transaction.on_commit(partial(send_partner_invitation, request, user, tenant, agency))
    return partner_user


@transaction.atomic
def set_partner_user_active(
    partner_user: PartnerUser, active: bool, *, actor: User | None, request: HttpRequest | None = None
) -> PartnerUser:
    partner_user = lock_row(PartnerUser, pk=partner_user.pk)
    partner_user.is_active = active
    return audit.save_audited(partner_user, actor=actor, request=request)


def _overlapping(
    agency: Agency, valid_from: dt.date, valid_to: dt.date | None, exclude: uuid.UUID | None = None
) -> QuerySet[Contract]:
    contracts = Contract.objects.filter(agency=agency).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gte=valid_from)
    )
    if valid_to is not None:
        contracts = contracts.filter(valid_from__lte=valid_to)
    return contracts.exclude(pk=exclude) if exclude else contracts


@transaction.atomic
def save_contract(
    agency: Agency,
    contract: Contract | None = None,
    *,
    actor: User | None,
    request: HttpRequest | None = None,
    **fields: Any,
) -> Contract:
    """Create (``contract`` None) or change a contract. An agency has one contract in force on any day: periods
    may not overlap (end the old one first)."""
    _unknown(fields, CONTRACT_FIELDS)
    lock_agency(agency)  # serialises contract changes of one agency
    contract = (
        Contract(agency=agency) if contract is None else Contract.objects.get(pk=contract.pk, agency=agency)
    )
    for name, value in fields.items():
        setattr(contract, name, value)
    if (
        contract.valid_from
        and _overlapping(agency, contract.valid_from, contract.valid_to, contract.pk).exists()
    ):
        raise ConflictError(
            "Another contract of this agency is in force in that period; end it before this one starts.",
            code="contract_overlap",
            fields={"valid_from": ["Overlaps another contract."]},
        )
    return audit.save_audited(contract, actor=actor, request=request)
