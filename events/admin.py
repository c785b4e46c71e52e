from django.contrib import admin, messages

from events import outbox
from events.models import DeadLetter, OutboxEvent
from tenants.admin import ReadOnlyAdmin
from tenants.admin_sites import tenant_admin_site


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
        requeued = outbox.requeue_dead_letters(queryset)
        self.message_user(
            request,
            f"Requeued {requeued} consumer run(s); a run that fails again leaves a new entry here.",
            messages.SUCCESS,
        )
