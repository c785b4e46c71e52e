"""Shared by the API tests: an authenticated client per user, and a small world to act on."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from partners.models import PartnerUser
from tenants.context import tenant_context
from tests.catalogue import (
    make_agency,
    make_contract,
    make_departure,
    make_option,
    make_tour,
    make_unit_types,
)
from tests.factories import PASSWORD, enrol_totp, host_of, make_member, make_tenant, obtain_tokens, totp_now


class Api:
    def __init__(self, tenant, user, device=None):
        self.client = Client()
        self.host = host_of(tenant)
        self.auth = obtain_tokens(self.client, tenant, user, otp=totp_now(device) if device else None)[
            "access"
        ]

    def __call__(self, method, path, data=None, **headers):
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        return getattr(self.client, method)(
            path,
            data,
            content_type="application/json",
            HTTP_HOST=self.host,
            HTTP_AUTHORIZATION=f"Bearer {self.auth}",
            **extra,
        )


@pytest.fixture
def world():
    tenant = make_tenant()
    with tenant_context(tenant):
        tour = make_tour(time_zone="Europe/Oslo")
        option = make_option(tour)
        make_unit_types(tour)
        departure = make_departure(option, capacity=10)
        agency = make_agency()
        make_contract(agency)
        booker = User.objects.create_user("booker@agency.example", PASSWORD)
        PartnerUser.objects.create(user=booker, agency=agency)
    return tenant, tour, option, departure, agency, booker


def staff_api(tenant, role):
    user = make_member(tenant, role)
    return Api(tenant, user, enrol_totp(user) if role in ("owner", "manager", "finance") else None)
