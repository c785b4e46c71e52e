"""Set-password links: the "forgot password" flow and the invitation a new team member receives.

Both use Django's password-reset tokens (single use: they stop working once the password changes, and expire after
``PASSWORD_RESET_TIMEOUT``). A link is only ever sent to someone who may sign in on the host it was asked on, so a
tenant's site cannot be used to probe or reset another tenant's staff.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.backends import may_sign_in_here
from accounts.models import User


def site_url(request, tenant=None) -> str:
    """Scheme, host and port for links: the tenant's primary domain (an invitation sent from the platform admin
    points at the tenant's site), else the host of this request."""
    if tenant is None:
        return f"{request.scheme}://{request.get_host()}"
    host = tenant.domains.filter(is_primary=True).values_list("host", flat=True).first()
    port = request.get_port()
    default_port = "443" if request.is_secure() else "80"
    return f"{request.scheme}://{host}" + ("" if port == default_port else f":{port}")


def set_password_url(base_url: str, user: User) -> str:
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return base_url + reverse("accounts:password_reset_confirm", kwargs={"uidb64": uidb64, "token": token})


def _send(template: str, context: dict, to: str) -> None:
    context = {**context, "valid_days": settings.PASSWORD_RESET_TIMEOUT // 86400}
    subject = render_to_string(f"emails/accounts/{template}_subject.txt", context).strip()
    text = render_to_string(f"emails/accounts/{template}.txt", context)
    html = render_to_string(f"emails/accounts/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()


def send_invitation(request, user: User, tenant) -> None:
    """Tell someone just added to ``tenant``'s team where to sign in; someone new also gets a link to set a
    password."""
    base_url = site_url(request, tenant)
    context = {
        "site_name": tenant.name,
        "user": user,
        "sign_in_url": base_url + reverse("accounts:login"),
        "set_password_url": None if user.has_usable_password() else set_password_url(base_url, user),
    }
    _send("invitation", context, user.email)


def send_partner_invitation(request, user: User, tenant, agency) -> None:
    """Tell an agency's new booker they can book with ``tenant`` through the API (the trade portal joins later);
    someone new also gets a link to set a password."""
    base_url = site_url(request, tenant)
    context = {
        "site_name": tenant.name,
        "agency": agency,
        "user": user,
        "api_url": base_url + "/api/v1/",
        "docs_url": base_url + reverse("api-docs"),
        "set_password_url": None if user.has_usable_password() else set_password_url(base_url, user),
    }
    _send("partner_invitation", context, user.email)


class SetPasswordLinkForm(PasswordResetForm):
    """Django's reset form, limited to people who may sign in on this host, including invited members who have
    no password yet (Django's own form skips them)."""

    request = None

    def get_users(self, email):
        email = User.objects.normalize_email(email).strip().lower()
        user = User.objects.filter(email=email, is_active=True).first()
        if user is None:
            return
        tenant = getattr(self.request, "tenant", None)
        is_booker = tenant is not None and user.partner_account_in(tenant.pk) is not None
        if may_sign_in_here(user, self.request) or is_booker:  # bookers sign in to the API with this password
            yield user

    def save(self, request=None, **kwargs):
        self.request = request
        for user in self.get_users(self.cleaned_data["email"]):
            tenant = getattr(request, "tenant", None)
            context = {
                "site_name": tenant.name if tenant is not None else "tourops platform",
                "user": user,
                "set_password_url": set_password_url(site_url(request), user),
            }
            _send("password_reset", context, user.email)
