"""Row locks on agencies (the mechanism and the global lock order are ``core.locking``'s)."""

from __future__ import annotations

import uuid

from core.locking import lock_row
from partners.models import Agency


def lock_agency(agency: Agency | uuid.UUID) -> Agency:
    """The agency row, locked and fresh: every change of an agency's account (its credit, its payments, its
    contracts) is decided under it, on committed numbers."""
    return lock_row(Agency, pk=agency.pk if isinstance(agency, Agency) else agency)
