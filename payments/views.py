"""Gateway webhooks, one endpoint per gateway on each tenant's host (the tenant's own account sends there)."""

from __future__ import annotations

import logging

from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.http import client_ip
from payments.gateways.base import GatewayUnavailable, InvalidWebhook
from payments.gateways.tenant_accounts import GatewayNotConfigured
from payments.models import GatewayAccount
from payments.services import webhooks
from tenants.middleware import outside_request_transaction

logger = logging.getLogger(__name__)


@csrf_exempt  # the gateway's signature authenticates the request, not a cookie
@outside_request_transaction  # PayPal's signature is verified by calling PayPal
@require_POST
def webhook(request, provider: str):
    if provider not in GatewayAccount.Provider.values:
        raise Http404("No such gateway.")
    try:
        outcome = webhooks.receive(provider, request.body, request.headers)
    except GatewayNotConfigured:
        raise Http404("This gateway is not set up here.") from None
    except InvalidWebhook as error:
        logger.warning(
            "%s webhook refused on %s: %s (from %s)",
            provider,
            request.get_host(),
            error.message,
            client_ip(request),
        )
        return JsonResponse({"error": error.code, "detail": error.message}, status=400)
    except GatewayUnavailable:
        return JsonResponse({"error": "verification_unavailable"}, status=503)  # the gateway delivers again
    return JsonResponse({"received": outcome})
