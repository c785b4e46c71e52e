"""ASGI entry point: HTTP through Django, WebSocket through Channels (consumers arrive with realtime/)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tourops.settings")
django_asgi_app = get_asgi_application()

from core.pii.crypto import check_keys  # noqa: E402

check_keys()  # refuse to start without the PII keysets, rather than fail at the first traveller

from channels.routing import ProtocolTypeRouter  # noqa: E402

from inventory.views_public import AvailabilityFastPath  # noqa: E402
from tourops.websocket import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Anonymous availability reads are answered from cached bytes before Django (see inventory.views_public).
        "http": AvailabilityFastPath(django_asgi_app),
        "websocket": websocket_application(),
    }
)
