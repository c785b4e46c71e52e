"""Payments in the back office.

Money rows (payments, refunds, webhook events) are read-only: money is recorded only through the payment services
(``offline``, ``refunds``: the booking page's actions and the refund list's "record the money sent back"), so every
change moves ``Booking.paid``, is audited and announced. Staff edit the configuration: gateway accounts (secrets
write-only), payment terms and exchange rates (also imported from CSV).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from core.errors import DomainError
from core.money import format_money
from payments.models import ExchangeRate, GatewayAccount, Payment, PaymentTerms, Refund, WebhookEvent
from payments.services import refunds as refund_services
from tenants import audit
from tenants.admin import AuditedModelAdmin, ReadOnlyAdmin
from tenants.admin_sites import tenant_admin_site
from tenants.routing import public_base_url

SECRET_FIELDS = ("secret_key", "webhook_secret")


def webhook_url(tenant, provider: str) -> str:
    """Where the tenant's gateway account must send its events (pasted into the gateway's dashboard)."""
    return f"{public_base_url(tenant)}/payments/webhooks/{provider}/"


# --- gateway accounts ---------------------------------------------------------------------------------------------


class GatewayAccountForm(forms.ModelForm):
    """Secrets are write-only: the inputs never carry the stored value back to the browser, and leaving one empty
    keeps what is stored (so editing the public key does not wipe the secret)."""

    secret_key = forms.CharField(
        required=False,
        max_length=255,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stripe secret key (sk_…) or PayPal client secret. Leave empty to keep the stored one.",
    )
    webhook_secret = forms.CharField(
        required=False,
        max_length=255,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stripe webhook signing secret (whsec_…); PayPal: the webhook id. Leave empty to keep the "
        "stored one.",
    )

    class Meta:
        model = GatewayAccount
        fields = ["provider", "is_active", "live", "public_key"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # (the primary key is set before the first save: uuid7 default.) A view-only form has no provider field.
        if not self.instance._state.adding and "provider" in self.fields:
            self.fields["provider"].disabled = True  # the stored secrets belong to this provider

    def clean_secret_key(self):
        value = self.cleaned_data["secret_key"]
        if not value and (self.instance._state.adding or not self.instance.secret_key):
            raise forms.ValidationError("A new gateway account needs its secret key.")
        return value

    def clean(self):
        data = super().clean()
        provider, live, key = data.get("provider"), data.get("live"), data.get("secret_key") or ""
        if provider == GatewayAccount.Provider.STRIPE and key:
            if not key.startswith(("sk_", "rk_")):
                self.add_error(
                    "secret_key", "A Stripe secret key starts with sk_ (or rk_ for a restricted key)."
                )
            elif live is not None and key.startswith(("sk_live_", "rk_live_")) != bool(live):
                self.add_error(
                    "secret_key",
                    "This is a live key but the account is not marked live."
                    if not live
                    else "This is a test key but the account is marked live.",
                )
        return data

    def save(self, commit=True):
        account = super().save(commit=False)
        for name in SECRET_FIELDS:
            if self.cleaned_data.get(name):
                setattr(account, name, self.cleaned_data[name])
        if commit:
            account.save()
        return account


@admin.register(GatewayAccount, site=tenant_admin_site)
class GatewayAccountAdmin(AuditedModelAdmin):
    form = GatewayAccountForm
    list_display = ["provider", "live", "is_active", "public_key", "secret_key_state", "webhook_secret_state"]
    readonly_fields = ["secret_key_state", "webhook_secret_state", "webhook_endpoint"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # Only the plain fields are copied onto the row by the model form; the secrets are set by the form's
        # save(), and only when something was typed.
        kwargs["fields"] = ["provider", "is_active", "live", "public_key"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        fields = ["provider", "is_active", "live", "public_key", "secret_key", "webhook_secret"]
        if obj is None:
            return fields
        shown = [
            *fields[:4],
            "secret_key_state",
            "secret_key",
            "webhook_secret_state",
            "webhook_secret",
            "webhook_endpoint",
        ]
        if not self.has_change_permission(request, obj):
            # View-only staff: every field is drawn read-only from the row, which would print the secrets.
            shown = [name for name in shown if name not in SECRET_FIELDS]
        return shown

    def get_readonly_fields(self, request, obj=None):
        # Never a secret: a read-only field shows the stored (decrypted) value.
        return [name for name in super().get_readonly_fields(request, obj) if name not in SECRET_FIELDS]

    def save_model(self, request, obj, form, change):
        """As ``AuditedModelAdmin`` does, plus a "changed" marker for each secret replaced: the audit snapshot masks
        encrypted fields, so a new secret would otherwise leave no trace. The values are never logged."""
        stored = GatewayAccount._default_manager.get(pk=obj.pk) if change else None
        before = audit.snapshot(stored) if stored is not None else None
        # The plain save, not AuditedModelAdmin's: this method writes the one audit entry itself.
        admin.ModelAdmin.save_model(self, request, obj, form, change)
        changes = audit.diff(before, audit.snapshot(obj))
        if stored is not None:
            for name in SECRET_FIELDS:
                if getattr(stored, name) != getattr(obj, name):
                    changes[name] = ["set" if getattr(stored, name) else "not set", "changed"]
        audit.record(
            audit.Action.CHANGE if change else audit.Action.CREATE,
            actor=request.user,
            target=obj,
            changes=changes,
            request=request,
        )

    @admin.display(description="Secret key")
    def secret_key_state(self, account: GatewayAccount) -> str:
        return "set" if account.secret_key else "not set"

    @admin.display(description="Webhook secret")
    def webhook_secret_state(self, account: GatewayAccount) -> str:
        return "set" if account.webhook_secret else "not set"

    @admin.display(description="Webhook URL (paste it into the gateway's dashboard)")
    def webhook_endpoint(self, account: GatewayAccount) -> str:
        return webhook_url(account.tenant, account.provider)

    def has_delete_permission(self, request, obj=None):
        return False  # switch it off instead: its payments and webhook events keep pointing at the provider


# --- payment terms ------------------------------------------------------------------------------------------------


class PaymentTermsForm(forms.ModelForm):
    class Meta:
        model = PaymentTerms
        fields = [
            "name",
            "kind",
            "is_default",
            "deposit_percent",
            "deposit_amount",
            "deposit_currency",
            "installment_count",
            "balance_days_before",
            "retry_days",
            "after_final_failure",
            "reminder_days_before",
        ]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        percent, amount, currency = (
            data.get("deposit_percent"),
            data.get("deposit_amount"),
            data.get("deposit_currency"),
        )
        if amount is not None and not currency:
            self.add_error("deposit_currency", "A fixed deposit needs its currency.")
        if currency and amount is None:
            self.add_error(
                "deposit_amount",
                f"Enter the fixed deposit in {currency} (minor units), or clear the currency.",
            )
        if (
            kind == PaymentTerms.Kind.DEPOSIT
            and percent is None
            and amount is None
            and "deposit_percent" not in (self.errors)
        ):
            self.add_error(
                "deposit_percent",
                "A deposit needs a percentage of the total, or a fixed amount with its currency (or both: the "
                "fixed amount for bookings in that currency, the percentage for the others).",
            )
        if data.get("is_default"):
            others = PaymentTerms.objects.filter(is_default=True).exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error(
                    "is_default", f"“{others.first().name}” is already the default; untick it there first."
                )
        if any(day == 0 for day in data.get("retry_days") or []):
            self.add_error("retry_days", "Retry days count from the failed charge: 1 or more.")
        return data


@admin.register(PaymentTerms, site=tenant_admin_site)
class PaymentTermsAdmin(AuditedModelAdmin):
    form = PaymentTermsForm
    list_display = [
        "name",
        "kind",
        "is_default",
        "deposit_percent",
        "deposit_amount",
        "deposit_currency",
        "installment_count",
        "balance_days_before",
    ]
    list_filter = ["kind"]
    search_fields = ["name"]


# --- money rows (read-only) ---------------------------------------------------------------------------------------


@admin.register(Payment, site=tenant_admin_site)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "booking",
        "provider",
        "method",
        "amount_received",
        "status",
        "refunded_amount",
        "provider_reference",
        "recorded_by",
    ]
    list_filter = ["status", "provider", "method"]
    search_fields = ["booking__reference", "provider_reference"]
    list_select_related = ["booking", "recorded_by"]
    date_hierarchy = "created_at"

    @admin.display(description="Amount", ordering="amount")
    def amount_received(self, payment: Payment) -> str:
        return format_money(payment.amount, payment.currency)

    @admin.display(description="Refunded", ordering="refunded")
    def refunded_amount(self, payment: Payment) -> str:
        return format_money(payment.refunded, payment.currency) if payment.refunded else "–"


class SentBackForm(forms.Form):
    reference = forms.CharField(
        max_length=255, help_text="The bank transfer (or cash receipt) that sent the money back."
    )


@admin.register(Refund, site=tenant_admin_site)
class RefundAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "booking",
        "amount_refunded",
        "status",
        "kind",
        "payment_provider",
        "reason",
        "provider_reference",
        "requested_by",
    ]
    list_filter = ["status", "kind", "payment__provider"]
    search_fields = ["booking__reference", "provider_reference", "request_key"]
    list_select_related = ["booking", "payment", "requested_by"]
    date_hierarchy = "created_at"
    actions = ["record_sent_back"]

    @admin.display(description="Amount", ordering="amount")
    def amount_refunded(self, refund: Refund) -> str:
        return format_money(refund.amount, refund.currency)

    @admin.display(description="Paid by", ordering="payment__provider")
    def payment_provider(self, refund: Refund) -> str:
        return refund.payment.get_provider_display()

    def has_record_permission(self, request) -> bool:
        return request.user.has_perm("payments.change_refund")

    @admin.action(description="Record the money sent back", permissions=["record"])
    def record_sent_back(self, request, queryset):
        """Offline refunds stay pending until staff send the money themselves: ask each one's transfer
        reference, then complete them (one refused does not undo the others)."""
        refunds = list(queryset.select_related("payment", "booking").order_by("created_at"))
        eligible = [
            refund
            for refund in refunds
            if refund.status == Refund.Status.PENDING and refund.payment.provider == Payment.Provider.OFFLINE
        ]
        skipped = len(refunds) - len(eligible)
        if not eligible:
            self.message_user(
                request,
                "None of the selected refunds is a pending offline refund: nothing to record.",
                messages.WARNING,
            )
            return None
        forms_by_refund = [
            (refund, SentBackForm(request.POST if "apply" in request.POST else None, prefix=str(refund.pk)))
            for refund in eligible
        ]
        if "apply" in request.POST and all(form.is_valid() for _, form in forms_by_refund):
            outcomes = refund_services.complete_offline_refunds(
                [(refund, form.cleaned_data["reference"]) for refund, form in forms_by_refund],
                actor=request.user,
                request=request,
            )
            done = 0
            for refund, outcome in zip(eligible, outcomes, strict=True):
                if isinstance(outcome, DomainError):
                    self.message_user(
                        request, f"{refund.booking.reference}: {outcome.message}", messages.ERROR
                    )
                else:
                    done += 1
            if done:
                self.message_user(request, f"{done} refund{'s' if done != 1 else ''} recorded as sent back.")
            return HttpResponseRedirect(request.get_full_path())
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Record the money sent back",
            "rows": [
                (refund, format_money(refund.amount, refund.currency), form)
                for refund, form in forms_by_refund
            ],
            "skipped": skipped,
            "action_name": "record_sent_back",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/payments/refund/record_sent_back.html", context)


@admin.register(WebhookEvent, site=tenant_admin_site)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "provider",
        "event_type",
        "event_id",
        "object_kind",
        "object_reference",
        "processed_at",
        "outcome",
    ]
    list_filter = ["provider", "event_type"]
    search_fields = ["event_id", "object_reference"]
    date_hierarchy = "received_at"


# --- exchange rates -----------------------------------------------------------------------------------------------


class ExchangeRateForm(forms.ModelForm):
    class Meta:
        model = ExchangeRate
        fields = ["base", "quote", "rate", "valid_on", "note"]
        help_texts = {"rate": "How many of the quote currency one unit of the base currency buys."}

    def clean_rate(self):
        rate = self.cleaned_data["rate"]
        if rate is not None and rate <= 0:
            raise forms.ValidationError("A rate is above 0.")
        return rate

    def clean(self):
        data = super().clean()
        if data.get("base") and data.get("base") == data.get("quote"):
            self.add_error("quote", f"Pick a currency other than the base ({data['base']}).")
        return data


@admin.register(ExchangeRate, site=tenant_admin_site)
class ExchangeRateAdmin(AuditedModelAdmin):
    form = ExchangeRateForm
    list_display = ["valid_on", "base", "quote", "rate", "source", "note", "created_at"]
    list_filter = ["base", "quote", "source"]
    date_hierarchy = "valid_on"
    fields = ["base", "quote", "rate", "valid_on", "note"]
    change_list_template = "admin/payments/exchangerate/change_list.html"

    def save_model(self, request, obj, form, change):
        obj.source = ExchangeRate.Source.MANUAL
        super().save_model(request, obj, form, change)
