from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone
from django_otp import devices_for_user

from core.ids import uuid7
from core.pii.fields import EncryptedTextField
from tenants.context import current_tenant_id
from tenants.models import Membership
from tenants.roles import MFA_REQUIRED_ROLES, role_has_module_perms, role_has_perm


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_superuser=True, is_staff=True)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, username: str) -> User:
        return self.get(email__iexact=username)


class User(AbstractBaseUser):
    """A person who signs in, by email. Platform-level: a user may belong to several tenants (Membership).

    ``is_superuser`` means platform administrator and counts only on the platform host; inside a tenant, what a
    user may do comes from their membership role there.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    phone = EncryptedTextField(max_length=32, blank=True, help_text="Stored encrypted (AES-256-GCM).")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the platform admin.")
    is_superuser = models.BooleanField(default=False, help_text="Platform administrator.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        self.email = (self.email or "").strip().lower()
        super().save(*args, **kwargs)

    # --- roles and permissions in the current tenant ----------------------------------------------------------

    def role_in(self, tenant_id: uuid.UUID | None) -> str | None:
        if tenant_id is None or not self.is_active:
            return None
        roles = self.__dict__.setdefault("_role_cache", {})
        if tenant_id not in roles:
            roles[tenant_id] = (
                Membership.objects.filter(tenant_id=tenant_id, user_id=self.pk, is_active=True)
                .values_list("role", flat=True)
                .first()
            )
        return roles[tenant_id]

    @property
    def current_role(self) -> str | None:
        return self.role_in(current_tenant_id())

    def partner_account_in(self, tenant_id: uuid.UUID | None):
        """The user's active PartnerUser in that tenant (an agency's booker), if the agency is not closed."""
        if tenant_id is None or not self.is_active:
            return None
        accounts = self.__dict__.setdefault("_partner_cache", {})
        if tenant_id not in accounts:
            # Through the relation the partners app declares (PartnerUser.user): accounts does not know partners.
            accounts[tenant_id] = (
                self.partner_accounts.able_to_book()
                .select_related("agency")
                .filter(tenant_id=tenant_id)
                .first()
            )
        return accounts[tenant_id]

    @property
    def current_partner(self):
        return self.partner_account_in(current_tenant_id())

    def has_api_access_in(self, tenant_id: uuid.UUID | None) -> bool:
        """Staff member, or an agency's booker (the API scopes what a booker sees to their agency)."""
        return self.role_in(tenant_id) is not None or self.partner_account_in(tenant_id) is not None

    def mfa_required(self) -> bool:
        tenant_id = current_tenant_id()
        if tenant_id is None:
            return self.is_superuser  # platform administrators always
        return self.role_in(tenant_id) in MFA_REQUIRED_ROLES

    def has_confirmed_device(self) -> bool:
        return any(True for _ in devices_for_user(self, confirmed=True))

    def needs_second_factor(self) -> bool:
        """Whether a session of this user must present a second factor before it may act: if the role demands
        MFA, or if the user has enrolled a device (then it is always asked)."""
        return self.mfa_required() or self.has_confirmed_device()

    def has_perm(self, perm: str, obj=None) -> bool:
        if not self.is_active:
            return False
        tenant_id = current_tenant_id()
        if tenant_id is not None:
            return role_has_perm(self.role_in(tenant_id), perm)
        return self.is_superuser

    def has_perms(self, perm_list, obj=None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        if not self.is_active:
            return False
        tenant_id = current_tenant_id()
        if tenant_id is not None:
            return role_has_module_perms(self.role_in(tenant_id), app_label)
        return self.is_superuser
