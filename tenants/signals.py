from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import Signal, receiver

from tenants.models import Domain, Tenant
from tenants.routing import forget_hosts

# Someone was added to a tenant's team from a page (after the commit): ``membership``, ``tenant``, ``request``.
# The accounts app invites them.
member_added = Signal()


@receiver([post_save, post_delete], sender=Domain)
def _domain_changed(sender, instance: Domain, **kwargs) -> None:
    forget_hosts([instance.host])


@receiver([post_save, post_delete], sender=Tenant)
def _tenant_changed(sender, instance: Tenant, **kwargs) -> None:
    forget_hosts(list(Domain.objects.filter(tenant_id=instance.pk).values_list("host", flat=True)))


@receiver(pre_save, sender=Domain)
def _domain_renamed(sender, instance: Domain, **kwargs) -> None:
    if instance.pk:
        forget_hosts(list(Domain.objects.filter(pk=instance.pk).values_list("host", flat=True)))
