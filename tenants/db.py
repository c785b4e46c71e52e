"""Database roles: the app runs as the runtime role; migrations switch the connection to the owner role."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.db import connections


@contextlib.contextmanager
def as_owner(using: str = "default") -> Iterator[None]:
    connection = connections[using]
    owner = settings.DATABASE_OWNER_CREDENTIALS
    saved = {key: connection.settings_dict.get(key) for key in owner}
    if saved == owner:
        yield
        return
    # The runtime role's pool (if any) must not hand out its connections here: the owner gets a plain one.
    saved_options = connection.settings_dict["OPTIONS"]
    connection.close()
    connection.settings_dict.update(owner)
    connection.settings_dict["OPTIONS"] = {k: v for k, v in saved_options.items() if k != "pool"}
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)
        connection.settings_dict["OPTIONS"] = saved_options


def runtime_role() -> str:
    return settings.DATABASE_RUNTIME_ROLE


def grant_runtime_privileges(connection, append_only_tables: list[str]) -> None:
    """Run as the owner after every migrate: the runtime role may read and write rows, nothing else.

    Append-only tables (the audit log) get INSERT and SELECT only.
    """
    role = runtime_role()
    if not role or role == connection.settings_dict.get("USER"):
        return
    quoted_role = connection.ops.quote_name(role)
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {quoted_role}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted_role}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted_role}")
        cursor.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON django_migrations FROM {quoted_role}")
        for table in append_only_tables:
            cursor.execute(
                f"REVOKE UPDATE, DELETE, TRUNCATE ON {connection.ops.quote_name(table)} FROM {quoted_role}"
            )
