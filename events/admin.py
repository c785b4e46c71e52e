from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from events.models import DeadLetter, OutboxEvent
from events.tasks import handle
from tenants.admin import ReadOnlyAdmin
from tenants.admin_sites import tenant_admin_site
from tenants.context import require_tenant_id
from tourops.celery import TENANT_HEADER


@admin.register(OutboxEvent, site=tenant_admin_site)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "name", "aggregate_type", "aggregate_id", "published_at"]
    list_filter = ["name", "aggregate_type"]
    search_fields = ["aggregate_id", "name"]
    date_hierarchy = "created_at"


@admin.register(DeadLetter, site=tenant_admin_site)
class DeadLetterAdmin(ReadOnlyAdmin):
    """Events a consumer gave up on after its retries. "Requeue" runs the consumer again (still at most once per
    event) and marks the letter resolved; a run that fails again leaves a new letter."""

    list_display = ["created_at", "consumer", "event", "attempts", "error", "resolved_at"]
    list_filter = ["consumer", ("resolved_at", admin.EmptyFieldListFilter)]
    actions = ["retry"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("events.change_deadletter")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in DeadLetter._meta.fields]

    @admin.action(description="Requeue the consumer for the selected events", permissions=["change"])
    def retry(self, request, queryset):
        tenant_id = str(require_tenant_id())
        letters = list(queryset.filter(resolved_at=None))

        def requeue():
            for letter in letters:
                handle.apply_async(
                    (str(letter.event_id), letter.consumer), headers={TENANT_HEADER: tenant_id}
                )

        transaction.on_commit(requeue)  # only once this request's changes are committed
        queryset.filter(pk__in=[letter.pk for letter in letters]).update(resolved_at=timezone.now())
        self.message_user(
            request,
            f"Requeued {len(letters)} consumer run(s); a run that fails again leaves a new entry here.",
            messages.SUCCESS,
        )
