from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("verify/", views.verify_view, name="verify"),
    path("mfa/setup/", views.mfa_setup_view, name="mfa_setup"),
    path("mfa/recovery-codes/", views.recovery_codes_view, name="recovery_codes"),
    path("logout/", views.logout_view, name="logout"),
    path("password/reset/", views.PasswordLinkRequestView.as_view(), name="password_reset"),
    path("password/reset/sent/", views.PasswordLinkSentView.as_view(), name="password_reset_done"),
    path(
        "password/set/<uidb64>/<token>/", views.SetPasswordByLinkView.as_view(), name="password_reset_confirm"
    ),
    path("password/set/done/", views.PasswordSetDoneView.as_view(), name="password_reset_complete"),
]
