import pytest

from tests.factories import host_of, make_tenant


@pytest.mark.django_db
def test_retail_home_served_on_tenant_host(client):
    tenant = make_tenant("alpha")
    response = client.get("/", HTTP_HOST=host_of(tenant))
    assert response.status_code == 200
    assert b"Alpha Tours" in response.content


@pytest.mark.django_db
def test_unknown_host_is_404_without_tenant_data(client):
    make_tenant("alpha")
    response = client.get("/", HTTP_HOST="nobody.testserver")
    assert response.status_code == 404
    assert b"Alpha" not in response.content


@pytest.mark.django_db
def test_healthz(client):
    response = client.get("/healthz", HTTP_HOST="whatever.example")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok"}
