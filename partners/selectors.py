"""Reads for the trade side."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from partners.models import Agency, Contract


def contract_on(agency: Agency, day: dt.date) -> Contract | None:
    """The agency's contract in force on ``day`` (periods never overlap, see partners.services.save_contract)."""
    return (
        Contract.objects.filter(agency=agency, valid_from__lte=day)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=day))
        .first()
    )
