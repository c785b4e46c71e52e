"""Versioned cache keys for availability: every seat movement on a tour bumps its version, so an answer cached
before the movement is never read again (its key is no longer asked for); the TTL only bounds how long an
unused answer lingers.

The bump happens after the commit of the transaction that moved the seats: bumping before would let a reader
re-cache the old numbers under the new version in between.
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import transaction

AVAILABILITY_TTL = 60


def availability_version_key(tenant_id: uuid.UUID | str, tour_id: uuid.UUID | str) -> str:
    return f"avail:v:{tenant_id}:{tour_id}"


def availability_version(tenant_id: uuid.UUID | str, tour_id: uuid.UUID | str) -> int:
    version = cache.get(availability_version_key(tenant_id, tour_id))
    if version is None:
        cache.add(availability_version_key(tenant_id, tour_id), 1, timeout=None)
        version = cache.get(availability_version_key(tenant_id, tour_id), 1)
    return int(version)


def availability_key(tenant_id: uuid.UUID | str, tour_id: uuid.UUID | str, *parts: object) -> str:
    """The cache key of one availability answer (``parts``: option, date range, channel, agency…)."""
    version = availability_version(tenant_id, tour_id)
    suffix = ":".join(str(part) for part in parts)
    return f"avail:{tenant_id}:{tour_id}:{version}:{suffix}"


def _bump(tenant_id: uuid.UUID | str, tour_id: uuid.UUID | str) -> None:
    key = availability_version_key(tenant_id, tour_id)
    try:
        cache.incr(key)
    except ValueError:  # no version yet: nothing cached under it either
        cache.add(key, 2, timeout=None)


def bump_availability(tenant_id: uuid.UUID | str, tour_id: uuid.UUID | str) -> None:
    """Call wherever seats move or a departure changes; runs once the surrounding transaction commits."""
    transaction.on_commit(lambda: _bump(tenant_id, tour_id))
