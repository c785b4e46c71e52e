"""``{% load money %}`` → ``{{ amount|money:currency }}``: minor units formatted in the active language."""

from django import template
from django.utils import translation

from core.money import Money

register = template.Library()


@register.filter
def money(amount: int, currency: str) -> str:
    if amount is None or not currency:
        return ""
    return Money(int(amount), currency).format(translation.get_language() or "en")
