from django.db import migrations

TABLES = ["tenants_auditevent", "tenants_platformauditevent"]

# Rows are never updated or deleted, by anyone (the owner included). The runtime role additionally has no
# UPDATE, DELETE or TRUNCATE grant on these tables (tenants.db.grant_runtime_privileges); only the owner may
# TRUNCATE, which the test suite's flush uses.
FUNCTION = """
CREATE OR REPLACE FUNCTION tourops_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


def _triggers(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION tourops_refuse_change();"
    )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS tourops_refuse_change() CASCADE;"),
        *[
            migrations.RunSQL(
                _triggers(table),
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};",
            )
            for table in TABLES
        ],
    ]
