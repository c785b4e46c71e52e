"""Back-office tests: a tenant with a small catalogue, and signed-in staff clients by role on its host."""

from __future__ import annotations

import pytest

from tenants.context import tenant_context
from tenants.roles import MFA_REQUIRED_ROLES
from tests.accounts.helpers import client_for, sign_in
from tests.catalogue import make_departure, make_option, make_tour, make_unit_types
from tests.factories import enrol_totp, host_of, make_member, make_tenant, owner_of


def signed_in(tenant, role: str):
    """A verified back-office session (owners and managers enrol a TOTP device first), as (user, client)."""
    user = owner_of(tenant) if role == "owner" else make_member(tenant, role)
    device = enrol_totp(user) if role in MFA_REQUIRED_ROLES else None
    client = client_for(host_of(tenant))
    sign_in(client, user, device)
    return user, client


@pytest.fixture
def tenant(db):
    return make_tenant()


@pytest.fixture
def staff(tenant):
    """``staff(role)`` → a signed-in client for a new member of ``tenant`` with that role."""
    return lambda role: signed_in(tenant, role)[1]


@pytest.fixture
def catalogue(tenant):
    """One tour (Europe/Oslo) with a shared option, unit types and a 20-seat departure."""
    with tenant_context(tenant):
        tour = make_tour("Fjord cruise", time_zone="Europe/Oslo")
        option = make_option(tour)
        make_unit_types(tour)
        departure = make_departure(option, capacity=20)
    return {"tour": tour, "option": option, "departure": departure}


def form_errors(response) -> str:
    """Every error on the admin page's main form (field and non-field), as one string."""
    form = response.context["adminform"].form
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


def inline_data(response, rows: dict[str, list[dict]] | None = None) -> dict:
    """POST data for every inline of the admin page in ``response`` (a GET of an add page, or of a change page
    whose inlines are empty): the management forms, plus ``rows`` of new inline rows keyed by formset prefix."""
    rows = rows or {}
    data: dict = {}
    prefixes = set()
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        assert not formset.initial_forms, f"{formset.prefix} has existing rows; post them explicitly"
        prefixes.add(formset.prefix)
        new_rows = rows.get(formset.prefix, [])
        data[f"{formset.prefix}-TOTAL_FORMS"] = str(len(new_rows))
        data[f"{formset.prefix}-INITIAL_FORMS"] = "0"
        for index, row in enumerate(new_rows):
            data.update({f"{formset.prefix}-{index}-{name}": value for name, value in row.items()})
    unknown = set(rows) - prefixes
    assert not unknown, f"no inline with prefix {unknown}; the page has {sorted(prefixes)}"
    return data
