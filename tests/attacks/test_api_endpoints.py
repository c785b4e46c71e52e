"""Every API endpoint backed by a tenant table, discovered from the router: tenant A's rows never appear in
B's lists and are not found through B's detail URLs, even for B's owner (who may see everything of B)."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.models import TenantModel
from tests.attacks.rows import create_row
from tests.factories import enrol_totp, host_of, obtain_tokens, owner_of, totp_now
from tourops.api_urls import router


def _model_of(viewset):
    view = viewset()
    view.action, view.request, view.format_kwarg, view.kwargs = "list", None, None, {}
    return view.get_serializer_class().Meta.model


ENDPOINTS = [
    pytest.param(prefix, viewset, id=prefix)
    for prefix, viewset, _ in router.registry
    if issubclass(_model_of(viewset), TenantModel)
]


def test_endpoints_are_discovered():
    assert {"tours", "departures", "holds", "allotments", "agencies", "memberships"} <= {
        p.id for p in ENDPOINTS
    }


@pytest.mark.parametrize(("prefix", "viewset"), ENDPOINTS)
def test_other_tenants_rows_are_never_listed_or_served(prefix, viewset, tenants):
    a, b = tenants
    model = _model_of(viewset)
    victim = create_row(model, a, "a")
    create_row(model, b, "b")
    owner = owner_of(b)
    client = Client()
    access = obtain_tokens(client, b, owner, otp=totp_now(enrol_totp(owner)))["access"]
    headers = {"HTTP_HOST": host_of(b), "HTTP_AUTHORIZATION": f"Bearer {access}"}

    listed = client.get(f"/api/v1/{prefix}/", {"page_size": 200}, **headers)

    assert listed.status_code == 200, listed.content
    assert str(victim.obj.pk) not in listed.content.decode()
    assert victim.marker not in listed.content.decode()
    lookup = getattr(victim.obj, viewset.lookup_field if viewset.lookup_field != "pk" else "pk")
    detail = client.get(f"/api/v1/{prefix}/{lookup}/", **headers)
    assert detail.status_code == 404, (prefix, detail.status_code, detail.content[:300])
    assert victim.marker not in detail.content.decode()
