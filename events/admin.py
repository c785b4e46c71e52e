from django.contrib import admin, messages
from django.utils import timezone

from events.models import DeadLetter, OutboxEvent
from events.tasks import handle
from tenants.admin import ReadOnlyAdmin
from tenants.admin_sites import tenant_admin_site
from tenants.context import require_tenant_id


@admin.register(OutboxEvent, site=tenant_admin_site)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "name", "aggregate_type", "aggregate_id", "published_at"]
    list_filter = ["name", "aggregate_type"]
    search_fields = ["aggregate_id", "name"]
    date_hierarchy = "created_at"


@admin.register(DeadLetter, site=tenant_admin_site)
class DeadLetterAdmin(ReadOnlyAdmin):
    """Events a consumer gave up on after its retries. "Retry" queues the consumer again (it still runs at most
    once per event) and marks the letter resolved."""

    list_display = ["created_at", "consumer", "event", "attempts", "error", "resolved_at"]
    list_filter = ["consumer", ("resolved_at", admin.EmptyFieldListFilter)]
    actions = ["retry"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("events.change_deadletter")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in DeadLetter._meta.fields]

    @admin.action(description="Retry the consumer for the selected events", permissions=["change"])
    def retry(self, request, queryset):
        tenant_id = str(require_tenant_id())
        letters = list(queryset.filter(resolved_at=None))
        for letter in letters:
            handle.apply_async((str(letter.event_id), letter.consumer), headers={"tenant_id": tenant_id})
        queryset.filter(pk__in=[letter.pk for letter in letters]).update(resolved_at=timezone.now())
        self.message_user(request, f"Queued {len(letters)} consumer run(s) again.", messages.SUCCESS)
