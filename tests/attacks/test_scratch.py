import threading, time
import pytest
from celery import chain
from celery.contrib.testing.worker import start_worker
from tourops.celery import app
from tenants.context import tenant_context
from tenants.models import Membership
from tests.factories import make_tenant

SEEN = {}

@app.task(name="tests.attacks.scratch_probe")
def probe(key):
    from tenants.context import current_tenant_id
    SEEN[key] = {
        "hdr": getattr(probe.request, "tenant_id", None),
        "ctx": str(current_tenant_id()),
        "count": Membership.objects.count(),
    }

@pytest.mark.django_db(transaction=True)
def test_tx():
    a = make_tenant("alpha")
    b = make_tenant("beta")
    with start_worker(app, pool="solo", perform_ping_check=False):
        with tenant_context(b):
            chain(probe.si("b1"), probe.si("b2")).delay()
            probe.apply_async(("b3",), link=probe.si("b4"))
        deadline = time.time() + 5
        while len(SEEN) < 4 and time.time() < deadline:
            time.sleep(0.05)
        print(SEEN, b.pk)
