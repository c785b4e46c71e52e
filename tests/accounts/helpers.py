"""Helpers for the sign-in, MFA, lock-out, JWT and back-office tests: every request goes to a real host."""

from __future__ import annotations

from django.test import Client
from django_otp.oath import TOTP

from tests.factories import PASSWORD, totp_now

PLATFORM_HOST = "platform.localhost"


def client_for(host: str, **defaults) -> Client:
    """A test client whose every request carries ``host`` (a tenant's domain or the platform host)."""
    return Client(HTTP_HOST=host, **defaults)


def password_login(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post("/accounts/login/", {"email": email, "password": password}, **extra)


def after_password(client: Client, user, password: str = PASSWORD):
    """The correct password at /accounts/login/; returns the redirect to the next step."""
    response = password_login(client, user.email, password)
    assert response.status_code == 302, response.content[:500]
    return response


def sign_in(client: Client, user, device=None) -> None:
    """A fully signed-in back-office session: password, then (given a device) the current TOTP code."""
    response = after_password(client, user)
    if device is not None:
        assert response["Location"].startswith("/accounts/verify/")
        response = client.post("/accounts/verify/", {"token": totp_now(device)})
        assert response.status_code == 302, response.content[:500]
    assert response["Location"] == "/admin/"


def valid_codes(device) -> set[str]:
    """Every code the device accepts right now (its tolerance covers the neighbouring time steps)."""
    codes = set()
    for drift in range(-device.tolerance, device.tolerance + 1):
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + drift)
        codes.add(f"{totp.token():0{device.digits}d}")
    return codes


def wrong_code(device) -> str:
    valid = valid_codes(device)
    return next(f"{n:06d}" for n in range(123456, 10**6) if f"{n:06d}" not in valid)


def admin_reachable(client: Client) -> bool:
    """True if the back office (or platform admin) index opens; False if it sends the user to sign in."""
    response = client.get("/admin/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302, response.status_code
    final = client.get("/admin/", follow=True)
    assert final.redirect_chain, "expected a redirect to sign in"
    assert final.redirect_chain[-1][0].split("?")[0].startswith("/accounts/"), final.redirect_chain
    return False


def api_post(client: Client, path: str, data: dict, **extra):
    return client.post(path, data, content_type="application/json", **extra)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
