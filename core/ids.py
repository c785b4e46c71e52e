"""Primary keys: time-ordered UUIDs (version 7), so new rows land at the right edge of the B-tree index and keys
are not guessable or global counters (they stay valid if tables are later distributed by tenant)."""

import os
import time
import uuid
from collections.abc import Iterable


def uuid7() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # 12 random bits
    value |= 0b10 << 62  # RFC 4122 variant
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def valid_uuids(values: Iterable[object]) -> list[str]:
    """The values that are UUIDs, as canonical strings (ids from a request: the rest could never match a row)."""
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(str(value))))
        except ValueError:
            continue
    return valid
