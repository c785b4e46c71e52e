"""Payments in the back office: the pages render for finance, the booking page's payments panel and refund action
(at most the refundable amount, once per form), offline refunds recorded as sent back, write-only gateway secrets,
payment terms validation, the exchange-rate CSV import, and what read-only staff may not do."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bookings import services
from bookings.models import Booking
from payments.models import ExchangeRate, GatewayAccount, Payment, PaymentTerms, Refund
from payments.services.offline import record_offline_payment
from tenants.context import tenant_context
from tenants.models import AuditEvent
from tests.backoffice.conftest import signed_in
from tests.bookings.world import World
from tests.payments.helpers import clerk, retail_booking

pytestmark = pytest.mark.django_db

BOOKINGS = "/admin/bookings/booking/"
SECRET = "sk_test_51VerySecretValueThatMustNeverBeShown"
WEBHOOK_SECRET = "whsec_AnotherSecretNeverShownBack"


@pytest.fixture
def world():
    return World()


@pytest.fixture
def staff(world):
    return lambda role: signed_in(world.tenant, role)[1]


def _paid_booking(world: World, key: str, amount: int = 20000, reference: str = "") -> Booking:
    with tenant_context(world.tenant):
        booking = retail_booking(world, key)
        record_offline_payment(
            booking,
            amount=amount,
            method="bank_transfer",
            reference=reference or f"TRF-{key}",
            actor=clerk(world),
        )
        return Booking.objects.get(pk=booking.pk)


def _messages(response) -> str:
    return " ".join(str(message) for message in response.context["messages"])


def _refund_form_key(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)


def test_every_payments_page_renders_for_finance(world, staff):
    booking = _paid_booking(world, "a")
    client = staff("finance")
    for model in ("payment", "refund", "paymentterms", "gatewayaccount", "webhookevent", "exchangerate"):
        assert client.get(f"/admin/payments/{model}/").status_code == 200, model
    for page in ("paymentterms/add/", "gatewayaccount/add/", "exchangerate/add/", "exchangerate/import/"):
        assert client.get(f"/admin/payments/{page}").status_code == 200, page
    payments = client.get("/admin/payments/payment/").content.decode()
    assert booking.reference in payments and "€200.00" in payments and "TRF-a" in payments
    found = client.get("/admin/payments/payment/", {"q": "TRF-a"}).content.decode()
    assert booking.reference in found
    assert booking.reference not in client.get("/admin/payments/payment/", {"q": "nothing"}).content.decode()


def test_the_booking_page_shows_ledger_schedule_attempts_and_refunds(world, staff):
    booking = _paid_booking(world, "a", amount=5000)
    page = staff("finance").get(f"{BOOKINGS}{booking.pk}/change/").content.decode()
    panel = page[page.index('id="booking-payments"') :]
    ledger = re.sub(r"\s+", " ", panel[: panel.index("</dl>")])
    assert "<dt>Paid</dt><dd>€50.00</dd>" in ledger and "<dt>Balance</dt><dd>€150.00</dd>" in ledger
    assert "<dt>Refundable</dt><dd>€50.00</dd>" in ledger
    assert 'id="payments-schedule"' in panel and "€200.00" in panel
    assert "Bank transfer" in panel and "TRF-a" in panel and "Succeeded" in panel
    assert 'data-action="refund"' in page
    # Staff who may not see payments do not get the panel.
    assert (
        'id="booking-payments"' not in staff("guide").get(f"{BOOKINGS}{booking.pk}/change/").content.decode()
    )


def test_finance_refunds_once_per_form_and_an_over_refund_changes_nothing(world, staff):
    booking = _paid_booking(world, "a", amount=5000)
    client = staff("finance")
    url = f"{BOOKINGS}{booking.pk}/action/refund/"
    form = client.get(url)
    page = form.content.decode()
    assert "€50.00" in page  # the maximum
    key = _refund_form_key(page)
    assert key != _refund_form_key(client.get(url).content.decode())  # a new key per rendered form

    over = client.post(url, {"amount": "50.01", "reason": "goodwill", "idempotency_key": key})
    assert over.status_code == 200 and "At most €50.00" in str(over.context["form"].errors["amount"])
    bad = client.post(url, {"amount": "10.001", "reason": "goodwill", "idempotency_key": key})
    assert bad.status_code == 200 and "more than 2 decimals" in bad.content.decode()
    no_reason = client.post(url, {"amount": "10", "reason": "", "idempotency_key": key})
    assert no_reason.status_code == 200
    with tenant_context(world.tenant):
        assert Refund.objects.count() == 0
        assert Payment.objects.get(booking=booking).refunded == 0

    done = client.post(url, {"amount": "20.00", "reason": "goodwill", "idempotency_key": key}, follow=True)
    assert "Refund of €20.00 requested" in _messages(done) and "pending" in _messages(done)
    again = client.post(url, {"amount": "20.00", "reason": "goodwill", "idempotency_key": key}, follow=True)
    assert again.status_code == 200
    with tenant_context(world.tenant):
        refund = Refund.objects.get()
        assert (refund.amount, refund.status, refund.reason) == (2000, "pending", "goodwill")
        assert Payment.objects.get(booking=booking).refunded == 2000
        assert Booking.objects.get(pk=booking.pk).paid == 5000  # offline: paid drops when the money is sent


def test_read_only_and_sales_cannot_refund(world, staff):
    booking = _paid_booking(world, "a")
    url = f"{BOOKINGS}{booking.pk}/action/refund/"
    for role in ("read_only", "sales"):
        client = staff(role)
        assert 'data-action="refund"' not in client.get(f"{BOOKINGS}{booking.pk}/change/").content.decode()
        assert client.get(url).status_code == 403, role
        response = client.post(url, {"amount": "10", "reason": "x", "idempotency_key": f"k-{role}"})
        assert response.status_code == 403, role
        assert client.get("/admin/payments/refund/").status_code == 200  # lists stay readable
    with tenant_context(world.tenant):
        assert not Refund.objects.exists()


def test_finance_records_an_offline_refund_as_sent_back_and_paid_drops(world, staff):
    booking = _paid_booking(world, "a")
    client = staff("finance")
    client.post(
        f"{BOOKINGS}{booking.pk}/action/refund/",
        {"amount": "30", "reason": "late pickup", "idempotency_key": "k-1"},
    )
    with tenant_context(world.tenant):
        refund = Refund.objects.get()
    changelist = "/admin/payments/refund/"
    selected = {"action": "record_sent_back", "_selected_action": [str(refund.pk)]}
    asked = client.post(changelist, {**selected, "index": "0"})
    assert asked.status_code == 200 and "Reference of the transfer back" in asked.content.decode()

    missing = client.post(changelist, {**selected, "apply": "1", f"{refund.pk}-reference": ""})
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()
    with tenant_context(world.tenant):
        assert Refund.objects.get().status == "pending"

    done = client.post(
        changelist, {**selected, "apply": "1", f"{refund.pk}-reference": "BACK-7"}, follow=True
    )
    assert "1 refund recorded as sent back" in _messages(done)
    with tenant_context(world.tenant):
        refund.refresh_from_db()
        assert (refund.status, refund.provider_reference) == ("succeeded", "BACK-7")
        assert Booking.objects.get(pk=booking.pk).paid == 17000

    # A read-only user has no such action.
    read_only = staff("read_only")
    assert "record_sent_back" not in read_only.get(changelist).content.decode()


def test_several_offline_refunds_of_several_bookings_are_recorded_in_one_go(world, staff):
    """Found by a probe: recording two bookings' refunds in one request locked the second booking after the first
    one's payment (against the lock order) and answered 500 with the first one recorded."""
    bookings = [_paid_booking(world, key) for key in ("a", "b")]
    client = staff("finance")
    for number, booking in enumerate(bookings):
        client.post(
            f"{BOOKINGS}{booking.pk}/action/refund/",
            {"amount": "30", "reason": "late pickup", "idempotency_key": f"k-{number}"},
        )
    with tenant_context(world.tenant):
        refunds = list(Refund.objects.order_by("-pk"))  # the later booking's first
    selected = {"action": "record_sent_back", "_selected_action": [str(refund.pk) for refund in refunds]}
    references = {f"{refund.pk}-reference": f"BACK-{number}" for number, refund in enumerate(refunds)}

    done = client.post("/admin/payments/refund/", {**selected, "apply": "1", **references}, follow=True)

    assert done.status_code == 200 and "2 refunds recorded as sent back" in _messages(done)
    with tenant_context(world.tenant):
        assert {refund.status for refund in Refund.objects.all()} == {"succeeded"}
        assert [Booking.objects.get(pk=booking.pk).paid for booking in bookings] == [17000, 17000]


def test_gateway_secrets_are_write_only_and_kept_when_left_empty(world, staff):
    client = staff("finance")
    add = client.post(
        "/admin/payments/gatewayaccount/add/",
        {
            "provider": "stripe",
            "is_active": "on",
            "public_key": "pk_test_abc",
            "secret_key": SECRET,
            "webhook_secret": WEBHOOK_SECRET,
        },
    )
    assert add.status_code == 302
    with tenant_context(world.tenant):
        account = GatewayAccount.objects.get()
        assert (account.secret_key, account.webhook_secret) == (SECRET, WEBHOOK_SECRET)

    change_url = f"/admin/payments/gatewayaccount/{account.pk}/change/"
    page = client.get(change_url).content.decode()
    list_page = client.get("/admin/payments/gatewayaccount/").content.decode()
    for html in (page, list_page):
        assert SECRET not in html and WEBHOOK_SECRET not in html and "VerySecret" not in html
    assert 'type="password"' in page and ">set<" in page.replace("\n", "")
    host = world.tenant.domains.get(is_primary=True).host
    assert re.search(rf"https?://{re.escape(host)}(:\d+)?/payments/webhooks/stripe/", page)

    kept = client.post(
        change_url, {"is_active": "on", "public_key": "pk_test_new", "secret_key": "", "webhook_secret": ""}
    )
    assert kept.status_code == 302
    with tenant_context(world.tenant):
        account.refresh_from_db()
        assert (account.public_key, account.secret_key, account.webhook_secret) == (
            "pk_test_new",
            SECRET,
            WEBHOOK_SECRET,
        )
    client.post(change_url, {"is_active": "on", "public_key": "pk_test_new", "secret_key": "sk_test_rotated"})
    with tenant_context(world.tenant):
        account.refresh_from_db()
        assert account.secret_key == "sk_test_rotated" and account.webhook_secret == WEBHOOK_SECRET

    live_key_on_test = client.post(
        change_url, {"public_key": "pk", "secret_key": "sk_live_x", "is_active": "on"}
    )
    assert live_key_on_test.status_code == 200 and "live key" in live_key_on_test.content.decode()
    assert "sk_live_x" not in live_key_on_test.content.decode()


def _stripe_account(world: World) -> GatewayAccount:
    with tenant_context(world.tenant):
        return GatewayAccount.objects.create(
            provider="stripe",
            public_key="pk_test_abc",
            secret_key=SECRET,
            webhook_secret=WEBHOOK_SECRET,
        )


def test_view_only_staff_see_a_gateway_account_without_its_secrets(world, staff):
    account = _stripe_account(world)

    response = staff("read_only").get(f"/admin/payments/gatewayaccount/{account.pk}/change/")

    html = response.content.decode()
    assert response.status_code == 200
    assert SECRET not in html and WEBHOOK_SECRET not in html and "VerySecret" not in html
    assert 'name="secret_key"' not in html and 'name="webhook_secret"' not in html
    assert ">set<" in html.replace("\n", "")  # only whether each secret is set
    assert "pk_test_abc" in html


def test_changing_a_gateway_secret_is_audited_without_its_value(world, staff):
    account = _stripe_account(world)
    change_url = f"/admin/payments/gatewayaccount/{account.pk}/change/"

    changed = staff("finance").post(
        change_url,
        {"is_active": "on", "public_key": "pk_test_abc", "secret_key": "sk_test_rotatedSecretValue"},
    )

    assert changed.status_code == 302
    with tenant_context(world.tenant):
        entries = list(
            AuditEvent.objects.filter(target_type="payments.gatewayaccount", target_id=str(account.pk))
        )
        assert GatewayAccount.objects.get().secret_key == "sk_test_rotatedSecretValue"
    logged = [entry.changes for entry in entries]
    assert any("changed" in str(changes.get("secret_key")) for changes in logged), logged
    assert not any("webhook_secret" in changes for changes in logged), logged  # left empty: kept, not changed
    assert "rotatedSecretValue" not in json.dumps(logged) and "VerySecret" not in json.dumps(logged)


def test_a_new_gateway_account_needs_a_secret_key(world, staff):
    response = staff("finance").post(
        "/admin/payments/gatewayaccount/add/",
        {"provider": "paypal", "is_active": "on", "public_key": "client"},
    )
    assert response.status_code == 200 and "needs its secret key" in response.content.decode()
    with tenant_context(world.tenant):
        assert not GatewayAccount.objects.exists()


def _terms(**fields) -> dict:
    return {
        "name": "Deposit 20",
        "kind": "deposit",
        "installment_count": "3",
        "balance_days_before": "30",
        "retry_days": "1,3,7",
        "after_final_failure": "flag",
        "reminder_days_before": "7",
        **fields,
    }


def test_payment_terms_explain_what_a_deposit_needs(world, staff):
    client = staff("finance")
    url = "/admin/payments/paymentterms/add/"
    nothing = client.post(url, _terms())
    assert "A deposit needs a percentage of the total, or a fixed amount" in nothing.content.decode()
    no_currency = client.post(url, _terms(deposit_amount="5000"))
    assert "A fixed deposit needs its currency." in no_currency.content.decode()
    no_amount = client.post(url, _terms(deposit_currency="EUR"))
    assert "Enter the fixed deposit in EUR" in no_amount.content.decode()
    with tenant_context(world.tenant):
        assert not PaymentTerms.objects.exists()

    assert client.post(url, _terms(deposit_percent="20")).status_code == 302
    assert (
        client.post(url, _terms(name="Fixed", deposit_amount="5000", deposit_currency="EUR")).status_code
        == 302
    )
    with tenant_context(world.tenant):
        assert sorted(PaymentTerms.objects.values_list("name", flat=True)) == ["Deposit 20", "Fixed"]


def test_exchange_rates_import_from_csv_all_or_nothing(world, staff):
    client = staff("finance")
    url = "/admin/payments/exchangerate/import/"

    def upload(text: str):
        return client.post(url, {"file": SimpleUploadedFile("rates.csv", text.encode(), "text/csv")})

    bad = upload("base,quote,rate,valid_on\nEUR,JPY,160.5,2026-06-01\nEUR,KWD,abc,2026-06-01\n")
    assert bad.status_code == 200
    assert "Row 3: rate &#x27;abc&#x27; is not a number" in bad.content.decode()  # row 1 is the header
    assert "missing" not in bad.content.decode()
    wrong_header = upload("from,to,rate\nEUR,JPY,1\n")
    assert "The header row lacks base, quote, valid_on" in wrong_header.content.decode()
    with tenant_context(world.tenant):
        assert not ExchangeRate.objects.exists()

    done = upload("base,quote,rate,valid_on\nEUR,JPY,160.5,2026-06-01\nKWD,EUR,2.95,2026-06-01\n")
    assert done.status_code == 302
    with tenant_context(world.tenant):
        assert sorted(ExchangeRate.objects.values_list("base", "quote", "source")) == [
            ("EUR", "JPY", "imported"),
            ("KWD", "EUR", "imported"),
        ]
    assert staff("read_only").get(url).status_code == 403


def test_an_exchange_rate_entered_by_hand_is_checked_with_clear_messages(world, staff):
    client = staff("finance")
    url = "/admin/payments/exchangerate/add/"
    same = client.post(url, {"base": "EUR", "quote": "EUR", "rate": "1", "valid_on": "2026-06-01"})
    assert "Pick a currency other than the base (EUR)." in same.content.decode()
    zero = client.post(url, {"base": "EUR", "quote": "JPY", "rate": "0", "valid_on": "2026-06-01"})
    assert "A rate is above 0." in zero.content.decode()
    assert (
        client.post(
            url, {"base": "EUR", "quote": "JPY", "rate": "160.5", "valid_on": "2026-06-01"}
        ).status_code
        == 302
    )
    with tenant_context(world.tenant):
        assert list(ExchangeRate.objects.values_list("base", "quote", "source")) == [("EUR", "JPY", "manual")]


def test_staff_resume_paused_automatic_charges_with_a_note_and_the_installments_start_afresh(world, staff):
    from decimal import Decimal

    from payments.models import Installment, PaymentSchedule

    with tenant_context(world.tenant):
        PaymentTerms.objects.create(
            name="Deposit",
            kind="deposit",
            deposit_percent=Decimal(25),
            balance_days_before=0,
            is_default=True,
        )
    booking = _paid_booking(world, "paused", amount=5000)
    with tenant_context(world.tenant):
        booking = services.confirm_booking(booking)
        PaymentSchedule.objects.filter(booking=booking).update(needs_attention=True)
        Installment.objects.filter(schedule__booking=booking).update(
            attempts=3, attempts_dunned=3, dunning="gave_up", last_failure="Your card was declined."
        )
    page = staff("finance").get(f"{BOOKINGS}{booking.pk}/change/").content.decode()
    assert 'data-action="resume-charges"' in page and "Automatic charges are paused" in page
    url = f"{BOOKINGS}{booking.pk}/action/resume-charges/"
    assert staff("sales").post(url, {"note": "x"}).status_code == 403

    client = staff("finance")
    assert client.post(url, {"note": "  "}).status_code == 200  # a note is required: nothing changes
    with tenant_context(world.tenant):
        assert PaymentSchedule.objects.get(booking=booking).needs_attention

    done = client.post(url, {"note": "Customer sent a new card by phone"}, follow=True)
    assert "will be tried again from the first attempt" in _messages(done)
    with tenant_context(world.tenant):
        assert not PaymentSchedule.objects.get(booking=booking).needs_attention
        balance = Installment.objects.get(schedule__booking=booking, sequence=2)
        assert (balance.attempts, balance.attempts_dunned, balance.dunning, balance.last_failure) == (
            0,
            0,
            "",
            "",
        )
        assert AuditEvent.objects.filter(changes__note__1="Customer sent a new card by phone").exists()
    again = client.get(url, follow=True)  # no longer paused: the action is not offered
    assert "is not possible now" in _messages(again)


def test_reminder_days_beyond_thirty_are_refused_and_nothing_is_saved(world, staff):
    response = staff("finance").post("/admin/payments/paymentterms/add/", _terms(reminder_days_before="31"))
    assert response.status_code == 200
    assert "less than or equal to 30" in str(
        response.context["adminform"].form.errors["reminder_days_before"]
    )
    with tenant_context(world.tenant):
        assert not PaymentTerms.objects.exists()
