from django import forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from accounts.models import User
from tenants.admin import AuditedModelAdmin
from tenants.admin_sites import platform_admin_site


class PlatformUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ["email", "full_name"]


class PlatformUserChangeForm(UserChangeForm):
    phone = forms.CharField(required=False, max_length=32)

    class Meta:
        model = User
        fields = ["email", "full_name", "phone", "is_active", "is_staff", "is_superuser"]


class PlatformUserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    form = PlatformUserChangeForm
    add_form = PlatformUserCreationForm
    list_display = ["email", "full_name", "is_active", "is_superuser", "date_joined"]
    list_filter = ["is_active", "is_superuser"]
    search_fields = ["email", "full_name"]
    ordering = ["email"]
    filter_horizontal: list = []
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["full_name", "phone"]}),
        ("Platform access", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})
    ]
    readonly_fields = ["last_login", "date_joined"]


platform_admin_site.register(User, PlatformUserAdmin)
