"""``{% load money %}`` → ``{{ amount|money:currency }}``: minor units formatted in the active language."""

from django import template

from core.money import format_money

register = template.Library()


@register.filter
def money(amount: int, currency: str) -> str:
    if amount is None or not currency:
        return ""
    return format_money(amount, currency)
