from django.db import migrations

# The trigger function comes from tenants (the audit log uses it too): rows are never updated or deleted.
TABLE = "bookings_invoice"


class Migration(migrations.Migration):
    dependencies = [("bookings", "0002_invoices"), ("tenants", "0002_audit_append_only")]

    operations = [
        migrations.RunSQL(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION tourops_refuse_change();",
            f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE};",
        )
    ]
