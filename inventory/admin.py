"""Back office for seats: schedules (and the departures they generate), departures, closures, allotments, holds.

Seat counts are never written from here: capacity, status, allotments and departure generation go through
``inventory.services`` (conditional UPDATEs on the departure row); a service's DomainError is shown on the form.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.postgres.forms import SimpleArrayField
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

import inventory.services as inventory_services
from core.errors import DomainError
from inventory.models import Allotment, Closure, Departure, Hold, Schedule
from tenants import audit
from tenants.admin import AuditedModelAdmin, ReadOnlyAdmin, ServiceErrorsAsFormErrors, adopt_saved
from tenants.admin_sites import tenant_admin_site
from tours.models import Option

WEEKDAYS = [(str(1 << n), name) for n, name in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])]


def _options():
    return Option.objects.select_related("tour").order_by("tour__title", "position", "name")


def _record_change(request, before: dict, obj) -> None:
    obj.refresh_from_db()
    changes = audit.diff(before, audit.snapshot(obj))
    if changes:
        audit.record(audit.Action.CHANGE, actor=request.user, target=obj, changes=changes, request=request)


def _record_created(request, obj) -> None:
    audit.record(
        audit.Action.CREATE,
        actor=request.user,
        target=obj,
        changes=audit.diff(None, audit.snapshot(obj)),
        request=request,
    )


# --- schedules ------------------------------------------------------------------------------------------------


class ScheduleForm(forms.ModelForm):
    days = forms.MultipleChoiceField(
        choices=WEEKDAYS,
        widget=forms.CheckboxSelectMultiple,
        label="Weekdays",
        initial=[v for v, _ in WEEKDAYS],
    )
    times = SimpleArrayField(
        forms.TimeField(),
        help_text="Local start times in the tour's time zone, comma separated: 09:00,14:30.",
    )

    class Meta:
        model = Schedule
        fields = ["option", "start_date", "end_date", "times", "capacity", "cutoff_minutes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "option" in self.fields:  # read-only once the schedule exists
            self.fields["option"].queryset = _options()
        if not self.instance._state.adding:
            self.initial["days"] = [value for value, _ in WEEKDAYS if self.instance.weekdays & int(value)]

    def clean(self):
        data = super().clean()
        days = data.get("days")
        if days:
            self.instance.weekdays = sum(int(day) for day in days)
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", "Ends before it starts.")
        elif start and end and (end - start).days > 2 * 366:
            self.add_error("end_date", "At most two years at a time; extend the schedule later.")
        times = data.get("times")
        if times and len(set(times)) != len(times):
            self.add_error("times", "A start time is listed twice.")
        return data


@admin.register(Schedule, site=tenant_admin_site)
class ScheduleAdmin(ServiceErrorsAsFormErrors, AuditedModelAdmin):
    form = ScheduleForm
    list_display = [
        "option",
        "start_date",
        "end_date",
        "weekday_names",
        "start_times",
        "capacity",
        "departure_count",
    ]
    list_filter = ["option__tour"]
    search_fields = ["option__name", "option__tour__title"]
    list_select_related = ["option__tour"]
    actions = ["generate_departures"]

    def get_readonly_fields(self, request, obj=None):
        return ["option"] if obj is not None else []

    @admin.display(description="Weekdays")
    def weekday_names(self, obj) -> str:
        return " ".join(name for value, name in WEEKDAYS if obj.weekdays & int(value))

    @admin.display(description="Times")
    def start_times(self, obj) -> str:
        return ", ".join(t.strftime("%H:%M") for t in obj.times)

    @admin.display(description="Departures", ordering="departure_count")
    def departure_count(self, obj) -> int:
        return obj.departure_count

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(departure_count=Count("departures"))

    @admin.action(description="Generate departures for the selected schedules", permissions=["add_departure"])
    def generate_departures(self, request, queryset):
        created = 0
        for schedule in queryset.select_related("option__tour"):
            try:
                created += inventory_services.generate_departures(schedule)
            except DomainError as error:
                self.message_user(request, f"{schedule}: {error.message}", messages.ERROR)
                return
        self.message_user(request, f"{created} departures created (existing ones were left as they were).")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        saved = inventory_services.create_schedule(
            data["option"],
            data["start_date"],
            data["end_date"],
            obj.weekdays,
            data["times"],
            data["capacity"],
            data["cutoff_minutes"],
        )
        adopt_saved(obj, saved)
        _record_created(request, saved)

    def has_add_departure_permission(self, request) -> bool:
        return request.user.has_perm("inventory.add_departure")


# --- departures -----------------------------------------------------------------------------------------------


class DepartureAddForm(forms.ModelForm):
    starts_local = forms.DateTimeField(
        label="Starts (local time)", help_text="In the tour's time zone, e.g. 2026-07-01 09:00."
    )

    class Meta:
        model = Departure
        fields = ["option", "capacity", "cutoff_minutes", "notes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["option"].queryset = _options()


class DepartureChangeForm(forms.ModelForm):
    class Meta:
        model = Departure
        fields = ["capacity", "status", "cutoff_minutes", "notes"]


@admin.register(Departure, site=tenant_admin_site)
class DepartureAdmin(ServiceErrorsAsFormErrors, AuditedModelAdmin):
    list_display = [
        "local_start",
        "option",
        "capacity",
        "allotted",
        "held",
        "sold",
        "free_seats",
        "status",
        "manifest",
    ]
    list_filter = ["status", "tour", ("local_date", admin.DateFieldListFilter)]
    date_hierarchy = "local_date"
    search_fields = ["tour__title", "option__name", "notes"]
    list_select_related = ["tour", "option__tour"]
    ordering = ["starts_at"]
    readonly_fields = [
        "tour",
        "option",
        "local_start",
        "allotted",
        "held",
        "sold",
        "free_seats",
        "schedule",
        "manifest",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = DepartureChangeForm if obj is not None else DepartureAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["option", "starts_local", "capacity", "cutoff_minutes", "notes"]
        return [
            "tour",
            "option",
            "local_start",
            "schedule",
            "status",
            "capacity",
            ("allotted", "held", "sold", "free_seats"),
            "cutoff_minutes",
            "notes",
            "manifest",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    @admin.display(description="Starts (local)", ordering="starts_at")
    def local_start(self, obj) -> str:
        return obj.starts_at.astimezone(ZoneInfo(obj.tour.time_zone)).strftime("%Y-%m-%d %H:%M %Z")

    @admin.display(description="Free")
    def free_seats(self, obj) -> int:
        return obj.free

    @admin.display(description="Manifest")
    def manifest(self, obj) -> str:
        # Who travels: served by the bookings back office (its own permission checks).
        url = reverse("admin:bookings_departure_manifest", args=[obj.pk])
        return format_html('<a href="{}">Manifest<span class="visually-hidden"> of {}</span></a>', url, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            starts_local: dt.datetime = data["starts_local"].replace(tzinfo=None)
            saved = inventory_services.create_departure(
                data["option"],
                starts_local,
                data["capacity"],
                data["cutoff_minutes"],
                data.get("notes", ""),
            )
            adopt_saved(obj, saved)
            _record_created(request, saved)
            return
        # The form's instance carries the seat counts as read when the page loaded; saving it whole would write
        # them back over seats sold since. Each change goes to its service, plain fields by name only.
        current = Departure.objects.get(pk=obj.pk)
        before = audit.snapshot(current)
        if "capacity" in form.changed_data:
            inventory_services.change_capacity(current, data["capacity"])
        if "status" in form.changed_data:
            status_service = {
                Departure.Status.OPEN: inventory_services.reopen_departure,
                Departure.Status.CLOSED: inventory_services.close_departure,
                Departure.Status.CANCELLED: inventory_services.cancel_departure,
            }[data["status"]]
            status_service(Departure.objects.get(pk=obj.pk))
        plain = [name for name in ("cutoff_minutes", "notes") if name in form.changed_data]
        if plain:
            Departure.objects.filter(pk=obj.pk).update(**{name: data[name] for name in plain})
        _record_change(request, before, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # cancel instead: holds, bookings and manifests refer to departures


# --- closures, allotments, holds --------------------------------------------------------------------------------


@admin.register(Closure, site=tenant_admin_site)
class ClosureAdmin(ServiceErrorsAsFormErrors, AuditedModelAdmin):
    list_display = ["tour", "option", "start_date", "end_date", "reason"]
    list_filter = ["tour"]
    search_fields = ["tour__title", "reason"]
    list_select_related = ["tour", "option__tour"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "option":
            kwargs["queryset"] = _options()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # Dates decide which departures were closed; a different period is a new closure.
        return ["tour", "option", "start_date", "end_date"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        result = inventory_services.add_closure(
            data["tour"], data["start_date"], data["end_date"], data["reason"], data.get("option")
        )
        adopt_saved(obj, result.closure)
        _record_created(request, result.closure)
        if result.closed:
            self.message_user(request, f"{len(result.closed)} open departures in the period were closed.")
        if result.not_closed:
            starts = ", ".join(f"{departure.starts_at:%Y-%m-%d %H:%M} UTC" for departure in result.not_closed)
            self.message_user(
                request,
                f"{len(result.not_closed)} departures have seats held or sold and stay open: {starts}.",
                messages.WARNING,
            )


class AllotmentForm(forms.ModelForm):
    class Meta:
        model = Allotment
        fields = ["agency", "departure", "seats", "release_at"]

    def clean(self):
        data = super().clean()
        departure, release_at = data.get("departure"), data.get("release_at")
        if departure and release_at and release_at > departure.starts_at:
            self.add_error("release_at", "Release the seats before the departure starts.")
        return data


@admin.register(Allotment, site=tenant_admin_site)
class AllotmentAdmin(ServiceErrorsAsFormErrors, AuditedModelAdmin):
    form = AllotmentForm
    list_display = ["agency", "departure", "seats", "used", "remaining", "release_at", "status"]
    list_filter = ["status", "departure__tour"]
    search_fields = [
        "agency__legal_name",
        "agency__trading_name",
        "departure__tour__title",
        "departure__option__name",
    ]
    list_select_related = ["agency", "departure__option__tour"]
    autocomplete_fields = ["agency", "departure"]
    actions = ["release_allotments"]

    def get_readonly_fields(self, request, obj=None):
        return ["agency", "departure", "seats", "used", "release_at", "status"] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # Seats in a block move only through the services (create, release): the page is a view, the list
        # has the release action.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = inventory_services.create_allotment(
            data["agency"], data["departure"], data["seats"], data["release_at"]
        )
        adopt_saved(obj, saved)
        _record_created(request, saved)

    @admin.action(description="Release the unused seats to general sale", permissions=["change"])
    def release_allotments(self, request, queryset):
        active = list(queryset.filter(status=Allotment.Status.ACTIVE))
        before = [audit.snapshot(allotment) for allotment in active]
        released = inventory_services.release_allotments(active)
        for snapshot, allotment in zip(before, released, strict=True):
            _record_change(request, snapshot, allotment)
        self.message_user(request, f"{len(released)} allotments released.")


@admin.register(Hold, site=tenant_admin_site)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["departure", "channel", "agency", "seats", "seats_from_allotment", "status", "expires_at"]
    list_filter = ["status", "channel"]
    search_fields = ["idempotency_key", "departure__tour__title", "departure__option__name"]
    list_select_related = ["departure__option__tour", "agency"]
    date_hierarchy = "created_at"
