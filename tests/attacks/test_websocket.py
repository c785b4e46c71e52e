"""WebSocket isolation: the tenant comes from the Host, database access runs in its context, a session counts
only on its own tenant's host, and a cross-site page cannot open a socket."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.test import Client
from django.urls import path

from tenants.models import Membership
from tests.factories import PASSWORD, host_of, make_member, make_tenant
from tourops.websocket import tenant_database_sync_to_async, websocket_application

pytestmark = pytest.mark.django_db(transaction=True)


class ProbeConsumer(AsyncJsonWebsocketConsumer):
    """Reports who it is talking to and which membership rows its database access can see."""

    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send_json(
            {
                "tenant": self.scope["tenant"].slug,
                "user": user.email if user.is_authenticated else None,
                "members": await self.visible_members(),
            }
        )

    @tenant_database_sync_to_async
    def visible_members(self):
        return sorted(Membership._base_manager.values_list("user__email", flat=True))


APP = websocket_application([path("ws/probe/", ProbeConsumer.as_asgi())])


def _probe(host: str, origin: str | None = None, session: str | None = None) -> tuple[bool, object]:
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if session is not None:
        headers.append((b"cookie", f"sessionid={session}".encode()))

    # channels.testing.WebsocketCommunicator needs daphne; the ASGI messages are simple enough to speak directly.
    async def run():
        scope = {
            "type": "websocket",
            "path": "/ws/probe/",
            "headers": headers,
            "query_string": b"",
            "subprotocols": [],
        }
        communicator = ApplicationCommunicator(APP, scope)
        await communicator.send_input({"type": "websocket.connect"})
        answer = await communicator.receive_output(5)
        if answer["type"] == "websocket.close":
            return False, answer.get("code")
        assert answer["type"] == "websocket.accept", answer
        message = json.loads((await communicator.receive_output(5))["text"])
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await communicator.wait(5)
        return True, message

    return async_to_sync(run)()


def _session_on(tenant, user) -> str:
    client = Client(HTTP_HOST=host_of(tenant))
    response = client.post("/accounts/login/", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client.cookies["sessionid"].value


@pytest.fixture
def tenants():
    a, b = make_tenant("wsa"), make_tenant("wsb")
    return a, b, make_member(a, "sales"), make_member(b, "sales")


def test_consumer_sees_only_the_hosts_tenant_and_its_signed_in_member(tenants):
    a, _, member_a, _ = tenants
    connected, message = _probe(host_of(a), origin=f"http://{host_of(a)}", session=_session_on(a, member_a))

    assert connected
    assert message == {
        "tenant": "wsa",
        "user": member_a.email,
        "members": sorted([member_a.email, "owner@wsa.example"]),
    }


def test_another_tenants_session_is_anonymous_and_sees_only_this_tenant(tenants):
    a, b, member_a, member_b = tenants

    connected, message = _probe(host_of(b), session=_session_on(a, member_a))

    assert connected
    assert message["tenant"] == "wsb" and message["user"] is None
    assert member_a.email not in message["members"] and member_b.email in message["members"]


@pytest.mark.parametrize("host", ["nobody.example", ""])
def test_unknown_host_is_refused(tenants, host):
    assert _probe(host) == (False, 4404)


@pytest.mark.parametrize("origin", ["https://evil.example", "http://wsb.localhost", "null"])
def test_cross_site_origin_is_refused(tenants, origin):
    a, _, member_a, _ = tenants
    assert _probe(host_of(a), origin=origin, session=_session_on(a, member_a)) == (False, 4403)


def test_client_without_origin_connects(tenants):
    a, *_ = tenants
    connected, message = _probe(host_of(a))
    assert connected and message["user"] is None
