"""Template filters for the screens' numbers and times (``tradeops.core.formatting``)."""

from django import template

from tradeops.core import formatting

register = template.Library()


@register.filter
def lots(value, instrument):
    """``{{ order.quantity|lots:order.instrument }}``: to the instrument's volume step."""
    return formatting.lots(value, getattr(instrument, "volume_step", "0.01"))


@register.filter
def price(value, instrument):
    """``{{ fill.price|price:fill.instrument }}``: to the instrument's digits."""
    return formatting.price(value, getattr(instrument, "digits", 5))


@register.filter
def money(value):
    return formatting.money(value)


@register.filter
def signed_money(value):
    return formatting.money(value, sign=True)


@register.filter
def utc(value):
    return formatting.utc(value)


@register.filter
def utc_us(value):
    return formatting.utc(value, micro=True)


@register.filter
def percent(value, places=1):
    if value is None or value == "":
        return ""
    return formatting.fixed(float(value) * 100, int(places)) + " %"


@register.filter
def pretty_name(value):
    return str(value).replace("_", " ")
