"""What each role may do in the back office's team pages, and the rules behind them."""

from __future__ import annotations

import pytest

from accounts.models import User
from core.errors import DomainError
from tenants import services
from tenants.context import tenant_context
from tenants.models import AuditEvent, Membership
from tenants.roles import MFA_REQUIRED_ROLES, Role, role_has_module_perms, role_has_perm
from tests.accounts.helpers import client_for, sign_in
from tests.factories import enrol_totp, host_of, make_member, make_tenant, owner_of

MEMBERS = "/admin/tenants/membership/"
ADD_MEMBER = "/admin/tenants/membership/add/"


# --- role_has_perm (unit) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "perm", "expected"),
    [
        ("owner", "tenants.add_membership", True),
        ("owner", "tenants.delete_membership", True),
        ("owner", "tenants.change_auditevent", False),  # the audit log is read-only for everyone
        ("owner", "tenants.view_auditevent", True),
        ("owner", "tenants.manage_team", True),
        ("manager", "tenants.change_membership", True),
        ("manager", "tenants.manage_team", True),
        ("sales", "tenants.view_membership", False),
        ("sales", "tenants.manage_team", False),
        ("sales", "bookings.change_booking", True),
        ("sales", "bookings.delete_booking", False),
        ("sales", "inventory.change_departure", False),
        ("sales", "tours.view_tour", True),
        ("sales", "tenants.view_auditevent", False),
        ("operations", "inventory.add_departure", True),
        ("operations", "bookings.change_booking", False),
        ("finance", "payments.change_payment", True),
        ("finance", "payments.delete_payment", False),
        ("finance", "tenants.view_auditevent", True),
        ("finance", "tenants.view_membership", False),
        ("read_only", "tours.view_tour", True),
        ("read_only", "tours.change_tour", False),
        ("read_only", "tenants.view_membership", False),
        ("read_only", "tenants.view_auditevent", False),
        (None, "tours.view_tour", False),
        ("", "tours.view_tour", False),
        ("nonsense", "tours.view_tour", False),
        ("owner", "view_tour", False),  # not "app_label.codename"
        ("owner", "tenants.frobnicate", False),  # unknown non-CRUD permission
    ],
)
def test_role_has_perm(role, perm, expected):
    assert role_has_perm(role, perm) is expected


def test_role_has_module_perms():
    assert role_has_module_perms("owner", "tenants")
    assert role_has_module_perms("read_only", "tours")
    assert role_has_module_perms("read_only", "tenants")  # via "*": view on other tenant models
    assert not role_has_module_perms(None, "tours")
    assert not role_has_module_perms("nonsense", "tours")


def test_mfa_roles_are_the_ones_touching_money_or_access():
    assert {Role.OWNER, Role.MANAGER, Role.FINANCE} == MFA_REQUIRED_ROLES


# --- the back office (tenant admin) --------------------------------------------------------------------------


def _signed_in(tenant, role):
    """A verified back-office session for a member with ``role`` (owners/managers enrol a device first)."""
    user = owner_of(tenant) if role == "owner" else make_member(tenant, role)
    device = enrol_totp(user) if role in MFA_REQUIRED_ROLES else None
    client = client_for(host_of(tenant))
    sign_in(client, user, device)
    return user, client


def _membership(tenant, user) -> Membership:
    with tenant_context(tenant):
        return Membership.objects.get(user=user)


def _form_errors(response) -> str:
    form = response.context["adminform"].form
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"), [("owner", 200), ("manager", 200), ("sales", 403), ("read_only", 403)]
)
def test_membership_changelist_by_role(role, status):
    tenant = make_tenant()
    _, client = _signed_in(tenant, role)

    response = client.get(MEMBERS)

    assert response.status_code == status
    if status == 200:
        assert f"owner@{tenant.slug}.example".encode() in response.content
    assert client.get(ADD_MEMBER).status_code == status


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["sales", "read_only", "operations", "finance"])
def test_roles_without_team_rights_cannot_add_members(role):
    tenant = make_tenant()
    _, client = _signed_in(tenant, role)

    response = client.post(ADD_MEMBER, {"email": "new@example.com", "role": "read_only"})

    assert response.status_code == 403
    assert not User.objects.filter(email="new@example.com").exists()


@pytest.mark.django_db
def test_read_only_member_reaches_the_back_office_but_not_the_audit_log():
    tenant = make_tenant()
    _, client = _signed_in(tenant, "read_only")
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/tenants/auditevent/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owner_and_manager_can_add_a_member(role):
    tenant = make_tenant()
    actor, client = _signed_in(tenant, role)

    response = client.post(
        ADD_MEMBER, {"email": "New.Person@Example.com", "full_name": "New", "role": "sales"}
    )

    assert response.status_code == 302, _form_errors(response)
    user = User.objects.get(email="new.person@example.com")
    assert not user.has_usable_password()
    membership = _membership(tenant, user)
    assert membership.role == "sales" and membership.is_active
    with tenant_context(tenant):
        event = AuditEvent.objects.get(action="create", target_id=str(membership.pk))
    assert event.actor_id == str(actor.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owner_and_manager_can_add_a_member_through_the_service(role):
    tenant = make_tenant()
    actor = owner_of(tenant) if role == "owner" else make_member(tenant, role)

    with tenant_context(tenant):
        membership = services.add_member(email="New.Person@Example.com", role="sales", actor=actor)

    user = User.objects.get(email="new.person@example.com")
    assert membership.user == user
    assert _membership(tenant, user).role == "sales"


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "new_role"), [("manager", "owner"), ("sales", "read_only")])
def test_add_member_service_refuses_what_the_actor_may_not_do(role, new_role):
    tenant = make_tenant()
    actor = make_member(tenant, role)

    with tenant_context(tenant), pytest.raises(DomainError) as error:
        services.add_member(email="new@example.com", role=new_role, actor=actor)

    assert error.value.code == "permission_denied"
    assert not User.objects.filter(email="new@example.com").exists()


@pytest.mark.django_db
def test_adding_an_existing_member_again_is_a_form_error():
    tenant = make_tenant()
    existing = make_member(tenant, "sales")
    _, client = _signed_in(tenant, "manager")

    response = client.post(ADD_MEMBER, {"email": existing.email, "role": "read_only"})

    assert response.status_code == 200
    assert "already a member" in _form_errors(response)
    assert _membership(tenant, existing).role == "sales"


@pytest.mark.django_db
def test_manager_cannot_make_someone_an_owner():
    tenant = make_tenant()
    _, client = _signed_in(tenant, "manager")
    colleague = make_member(tenant, "sales")

    added = client.post(ADD_MEMBER, {"email": "boss@example.com", "role": "owner"})
    promoted = client.post(
        f"{MEMBERS}{_membership(tenant, colleague).pk}/change/", {"role": "owner", "is_active": "on"}
    )

    assert added.status_code == 200
    assert "Only an owner can make someone an owner" in _form_errors(added)
    assert not User.objects.filter(email="boss@example.com").exists()
    assert promoted.status_code == 200
    assert "Only an owner can make someone an owner" in _form_errors(promoted)
    assert _membership(tenant, colleague).role == "sales"


@pytest.mark.django_db
def test_manager_cannot_demote_or_deactivate_an_owner():
    tenant = make_tenant()
    owner = owner_of(tenant)
    _, client = _signed_in(tenant, "manager")
    url = f"{MEMBERS}{_membership(tenant, owner).pk}/change/"

    demoted = client.post(url, {"role": "read_only", "is_active": "on"})
    deactivated = client.post(url, {"role": "owner"})

    assert demoted.status_code == 200 and deactivated.status_code == 200
    assert "change an owner" in _form_errors(demoted)
    membership = _membership(tenant, owner)
    assert membership.role == "owner" and membership.is_active


@pytest.mark.django_db
def test_manager_can_change_a_non_owner():
    tenant = make_tenant()
    _, client = _signed_in(tenant, "manager")
    colleague = make_member(tenant, "sales")
    url = f"{MEMBERS}{_membership(tenant, colleague).pk}/change/"

    response = client.post(url, {"role": "operations", "is_active": "on"})

    assert response.status_code == 302
    assert _membership(tenant, colleague).role == "operations"


@pytest.mark.django_db
def test_owner_can_make_someone_an_owner():
    tenant = make_tenant()
    _, client = _signed_in(tenant, "owner")
    colleague = make_member(tenant, "manager")

    response = client.post(
        f"{MEMBERS}{_membership(tenant, colleague).pk}/change/", {"role": "owner", "is_active": "on"}
    )

    assert response.status_code == 302
    assert _membership(tenant, colleague).role == "owner"


@pytest.mark.django_db
@pytest.mark.parametrize("change", [{"role": "manager", "is_active": "on"}, {"role": "owner"}])
def test_last_active_owner_cannot_be_demoted_or_deactivated(change):
    tenant = make_tenant()
    owner, client = _signed_in(tenant, "owner")

    response = client.post(f"{MEMBERS}{_membership(tenant, owner).pk}/change/", change)

    assert response.status_code == 200
    assert "at least one active owner" in _form_errors(response)
    membership = _membership(tenant, owner)
    assert membership.role == "owner" and membership.is_active


@pytest.mark.django_db
def test_an_owner_can_step_down_when_another_owner_remains():
    tenant = make_tenant()
    owner, client = _signed_in(tenant, "owner")
    make_member(tenant, "owner")

    response = client.post(
        f"{MEMBERS}{_membership(tenant, owner).pk}/change/", {"role": "manager", "is_active": "on"}
    )

    assert response.status_code == 302
    assert _membership(tenant, owner).role == "manager"


@pytest.mark.django_db
def test_members_cannot_be_deleted_only_deactivated():
    tenant = make_tenant()
    _, client = _signed_in(tenant, "owner")
    colleague = make_member(tenant, "sales")
    pk = _membership(tenant, colleague).pk

    assert client.get(f"{MEMBERS}{pk}/delete/").status_code == 403
    assert client.post(f"{MEMBERS}{pk}/change/", {"role": "sales"}).status_code == 302
    assert not _membership(tenant, colleague).is_active


@pytest.mark.django_db
def test_changelist_lists_only_this_tenants_members():
    tenant, other = make_tenant(), make_tenant()
    stranger = make_member(other, "sales")
    _, client = _signed_in(tenant, "owner")

    response = client.get(MEMBERS)

    assert response.status_code == 200
    assert stranger.email.encode() not in response.content
    assert f"owner@{other.slug}.example".encode() not in response.content
    with tenant_context(other):
        foreign_pk = Membership.objects.get(user=stranger).pk
    assert client.get(f"{MEMBERS}{foreign_pk}/change/").status_code in (302, 404)
    assert client.post(
        f"{MEMBERS}{foreign_pk}/change/", {"role": "owner", "is_active": "on"}
    ).status_code in (
        302,
        404,
    )
    with tenant_context(other):
        assert Membership.objects.get(user=stranger).role == "sales"
