"""A browser session counts only on the sites where its user may sign in."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import SimpleLazyObject

from accounts.backends import may_sign_in_here


def _bound_to_host(request, user):
    if user.is_authenticated and not may_sign_in_here(user, request):
        return AnonymousUser()
    return user


class HostBoundSessionMiddleware:
    """Sessions live in one shared store, so a session cookie carried (or replayed) onto another tenant's host
    would otherwise authenticate its user there. Here the user counts as signed in only while they are an active
    member of the host's tenant (or a platform administrator on the platform host); otherwise the request is
    anonymous and sign-in starts afresh. This also ends a removed member's sessions at their next request.

    Goes right after AuthenticationMiddleware; the check is lazy, so it runs inside the tenant context where
    the view first reads ``request.user`` (outside it, row-level security shows no membership: anonymous).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        request.user = SimpleLazyObject(lambda: _bound_to_host(request, user))
        original_auser = request.auser

        async def auser():
            return await sync_to_async(_bound_to_host)(request, await original_auser())

        request.auser = auser
        return self.get_response(request)
