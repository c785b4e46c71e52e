"""System checks that keep tenant tables fast: every composite index and unique constraint starts with tenant."""

from django.apps import apps
from django.core import checks

from tenants.models import TenantModel


def tenant_models():
    return [
        model
        for model in apps.get_models()
        if issubclass(model, TenantModel) and model._meta.managed and not model._meta.proxy
    ]


@checks.register(checks.Tags.models)
def check_tenant_leading_indexes(app_configs=None, **kwargs):
    errors = []
    for model in tenant_models():
        for index in model._meta.indexes:
            fields = [name.lstrip("-") for name in index.fields]
            if fields and fields[0] not in ("tenant", "tenant_id"):
                errors.append(
                    checks.Error(
                        f"Index {index.name} on tenant table {model._meta.label} must start with tenant.",
                        obj=model,
                        id="tenants.E001",
                    )
                )
        for constraint in model._meta.constraints:
            fields = list(getattr(constraint, "fields", ()) or ())
            if fields and fields[0] not in ("tenant", "tenant_id"):
                errors.append(
                    checks.Error(
                        f"Constraint {constraint.name} on tenant table {model._meta.label} must start with tenant.",
                        obj=model,
                        id="tenants.E002",
                    )
                )
    return errors
