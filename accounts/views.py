"""Staff sign-in: password, then the second factor (or its enrolment when the role demands one)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from accounts import mfa
from accounts.forms import LoginForm, TokenForm
from accounts.passwords import SetPasswordLinkForm
from core.errors import DomainError
from tenants import audit


def _next_url(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return "/admin/"


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def _after_password(request, next_url: str):
    user = request.user
    if mfa.is_verified(user):
        return redirect(next_url)
    if mfa.has_confirmed_device(user):
        return redirect(_with_next("accounts:verify", next_url))
    if user.mfa_required():
        return redirect(_with_next("accounts:mfa_setup", next_url))
    return redirect(next_url)


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request):
    next_url = _next_url(request)
    if request.user.is_authenticated:
        return _after_password(request, next_url)
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = auth.authenticate(
            request, email=form.cleaned_data["email"], password=form.cleaned_data["password"]
        )
        if user is not None:
            auth.login(request, user, backend="accounts.backends.EmailBackend")
            return _after_password(request, next_url)
        form.add_error(None, "Email or password is not correct, or this account has no access to this site.")
    return render(
        request, "accounts/login.html", {"form": form, "next": next_url}, status=400 if form.errors else 200
    )


@sensitive_post_parameters("token")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def verify_view(request):
    next_url = _next_url(request)
    if mfa.is_verified(request.user):
        return redirect(next_url)
    if not mfa.has_confirmed_device(request.user):
        return redirect(_with_next("accounts:mfa_setup", next_url))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = mfa.verify_second_factor(request.user, form.cleaned_data["token"], request=request)
        if device is not None:
            otp_login(request, device)
            return redirect(next_url)
        form.add_error("token", "That code is not valid (or was already used). Try the current code.")
    return render(
        request, "accounts/verify.html", {"form": form, "next": next_url}, status=400 if form.errors else 200
    )


@sensitive_post_parameters("token")
@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_setup_view(request):
    next_url = _next_url(request)
    if mfa.has_confirmed_device(request.user) and not mfa.is_verified(request.user):
        # Replacing an authenticator needs the current one (or a recovery code) first.
        return redirect(_with_next("accounts:verify", request.get_full_path()))
    device = mfa.pending_totp_device(request.user)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = mfa.confirm_totp_enrolment(request.user, form.cleaned_data["token"], request=request)
        except DomainError as error:
            form.add_error("token", error.message)
        else:
            device.refresh_from_db()
            otp_login(request, device)
            return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": next_url})
    return render(
        request,
        "accounts/mfa_setup.html",
        {
            "form": form,
            "next": next_url,
            "qr_code": mfa.qr_code_svg_data_uri(device),
            "secret": mfa.base32_secret(device),
        },
        status=400 if form.errors else 200,
    )


@never_cache
@login_required
@require_POST
def recovery_codes_view(request):
    if not mfa.is_verified(request.user):
        return redirect(_with_next("accounts:verify", reverse("accounts:mfa_setup")))
    codes = mfa.issue_recovery_codes(request.user, request=request)
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": "/admin/"})


@require_POST
def logout_view(request):
    auth.logout(request)
    return redirect("accounts:login")


class PasswordLinkRequestView(auth_views.PasswordResetView):
    """Asks for an email and sends a set-password link if that person may sign in here; the answer is the same
    either way, so the page does not reveal who has an account."""

    form_class = SetPasswordLinkForm
    template_name = "accounts/password_reset.html"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordLinkSentView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class SetPasswordByLinkView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_set.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.record(audit.Action.PASSWORD_SET, actor=form.user, request=self.request)
        return response


class PasswordSetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_set_done.html"
