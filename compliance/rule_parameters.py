"""A proposed rule version's parameters, checked against the version in force before the service
validates them (``parameters_check``): an officer changing one threshold starts from the current
version's parameters (the admin prefills them), and a proposal is the whole parameter set of the
new version, so one that leaves out a parameter the current version sets is refused rather than
let it fall back to its default unseen (``null`` returns it to the default, on purpose). Unknown
names and values of the wrong type are refused naming the parameter, what it takes and the
names the rule knows. 2017/565 Art. 72: the change is a new version, four eyes unchanged."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from django.core.exceptions import ValidationError

from compliance.pretrade.params import PRETRADE_PARAMS
from compliance.surveillance.params import DETECTOR_PARAMS

_KINDS = {
    msgspec.inspect.IntType: "a whole number",
    msgspec.inspect.FloatType: "a number",
    msgspec.inspect.DecimalType: 'a decimal number (5, 0.5 or "0.5")',
    msgspec.inspect.BoolType: "true or false",
    msgspec.inspect.StrType: "text",
    msgspec.inspect.NoneType: "null",
    msgspec.inspect.ListType: "a list",
    msgspec.inspect.TupleType: "a list",
    msgspec.inspect.VarTupleType: "a list",
}


def rule_parameter_fields(rule_type: str) -> dict[str, msgspec.structs.FieldInfo]:
    """The parameters a rule type takes (name -> its field: type and default); {} for an unknown
    type (``parameters_check`` names that)."""
    cls = PRETRADE_PARAMS.get(rule_type) or DETECTOR_PARAMS.get(rule_type)
    return {f.name: f for f in msgspec.structs.fields(cls)} if cls else {}


def _kind(tp) -> str:
    """What a parameter's type takes, in words: ``a number``, ``a whole number or null``."""
    info = msgspec.inspect.type_info(tp)
    options = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    words = []
    for option in options:
        word = _KINDS.get(type(option), "a value")
        if word not in words:
            words.append(word)
    return " or ".join(words)


def _market_defaults(rule_type: str) -> dict[str, Any]:
    """A surveillance rule type's defaults on the firm's market (``SURVEILLANCE_MARKET``'s
    profile, ``MARKET_PROFILES``): what a parameter left out, or set to null, runs at in the
    streaming stage. {} for a pre-trade type, ``otc`` or an unknown market (the stage names that)."""
    from django.conf import settings

    from compliance.surveillance.params import MARKET_PROFILES

    if rule_type not in DETECTOR_PARAMS:
        return {}
    market = getattr(settings, "SURVEILLANCE_MARKET", "otc")
    return dict(MARKET_PROFILES.get(market, {}).get(rule_type, {}))


def _default(field: msgspec.structs.FieldInfo, market: dict[str, Any] | None = None) -> Any:
    if market and field.name in market:
        return market[field.name]
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return msgspec.NODEFAULT


def _shown(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


def check_rule_parameters_proposal(*, rule_type: str, parameters: Any, current: dict | None) -> dict:
    """The parameters of a proposed version of a ``rule_type`` rule whose version in force sets
    ``current`` (None: a new rule), as they are to be stored: ``null`` values of parameters that
    have a default removed (back to the default). Raises ValidationError on ``parameters``
    listing every problem: not an object, unknown names (with the known ones), values of the
    wrong type (with what the parameter takes), a required parameter missing, a parameter the
    current version sets left out. Bounds and combinations are ``parameters_check``'s."""
    fields = rule_parameter_fields(rule_type)
    if not fields:
        return parameters
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "the parameters must be a JSON object of name: value"})
    strict = rule_type not in PRETRADE_PARAMS  # as each family converts them (pre-trade: "5" for 5)
    problems = []
    unknown = [name for name in parameters if name not in fields]
    if unknown:
        problems.append(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for a"
            f" {rule_type} rule; its parameters: {', '.join(fields)}"
        )
    kept = {}
    for name, value in parameters.items():
        field = fields.get(name)
        if field is None:
            continue
        if value is None and _default(field) is not msgspec.NODEFAULT and _default(field) is not None:
            continue  # null: back to the default, on purpose
        try:
            msgspec.convert(value, type=field.type, strict=strict)
        except msgspec.ValidationError as exc:
            # the wrong type ("Expected `float`, got `str`"); a bound ("Expected `float` > 0.0", same
            # opening) is parameters_check's to name, with the bound
            if ", got `" in str(exc):
                problems.append(f"{name} takes {_kind(field.type)}, not {_shown(value)}")
                continue
        kept[name] = value
    for name, field in fields.items():
        if field.required and name not in parameters:
            problems.append(f"{name} is required ({_kind(field.type)})")
    market = _market_defaults(rule_type)
    for name, value in (current or {}).items():
        if name in fields and name not in parameters:
            default = _default(fields[name], market)
            back = "" if default is msgspec.NODEFAULT else f" (its default: {_shown(default)})"
            problems.append(
                f"{name} is left out: the version in force sets it to {_shown(value)}; a proposal is the whole"
                f" parameter set, so keep it, or set it to null to return it to its default{back}"
            )
    if problems:
        raise ValidationError({"parameters": problems})
    return kept


def rule_parameters_help(rule_type: str, current: dict | None) -> str:
    """Every parameter of ``rule_type`` as the proposal starts from it: the value the version in
    force sets, else its default, the firm's market's where its profile sets one (for the
    admin's help text)."""
    fields = rule_parameter_fields(rule_type)
    market = _market_defaults(rule_type)
    parts = []
    for name, field in fields.items():
        if current and name in current:
            parts.append(f"{name} = {_shown(current[name])} (set)")
        else:
            default = _default(field, market)
            shown = "required" if default is msgspec.NODEFAULT else f"default {_shown(default)}"
            if name in market:  # the market profile's, not the detector's own (SURVEILLANCE_MARKET)
                from django.conf import settings

                shown += f" on the {settings.SURVEILLANCE_MARKET} market"
            parts.append(f"{name}: {shown}")
    return "; ".join(parts)
