from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.passwords import send_invitation
from tenants import audit
from tenants.signals import member_added


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    audit.record(audit.Action.LOGIN, actor=user, request=request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit.record(audit.Action.LOGOUT, actor=user, request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    email = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit.record(audit.Action.LOGIN_FAILED, actor_label=email, request=request)


@receiver(user_locked_out)
def _locked_out(sender, request, username=None, ip_address=None, **kwargs) -> None:
    audit.record(audit.Action.LOCKED_OUT, actor_label=str(username or "")[:254], request=request)


@receiver(member_added)
def _invite_member(sender, membership, tenant, request, **kwargs) -> None:
    send_invitation(request, membership.user, tenant)
