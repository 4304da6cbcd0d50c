"""``model_new``: an unsaved model instance built without ``Model.__init__`` (issue 12).

``Model.__init__`` with keyword arguments walks every field, pops each keyword, evaluates each
missing default and sends ``pre_init`` / ``post_init``: ~78 us for an ``Order`` (30 fields) on
the order path, which builds an order, a fill and sometimes a position per intent. ``model_new``
gives the same instance: every concrete field's attribute set (given, or its default evaluated
as ``__init__`` would), a foreign key given as an object set as its descriptor sets it on a new
instance (type check, the router's ``_state.db`` and ``allow_relation``, the ``*_id`` attribute,
the related-object cache; other relations through the descriptor itself), a fresh
``ModelState``. ~15 us for an ``Order``.

Where it is NOT the same, it falls back to ``model(**values)``: while any ``pre_init`` or
``post_init`` receiver listens to ``model`` (none does in tradeops today). Keywords that name no
concrete field (a property, a virtual field, a typo) raise TypeError like ``__init__``; positional
arguments are not taken. tests/tradeops/test_instances.py compares it with ``__init__`` field by
field.
"""

from __future__ import annotations

from django.db import router
from django.db.models import NOT_PROVIDED, signals
from django.db.models.base import ModelState

_SPECS: dict[type, tuple] = {}


def _spec(model: type):
    """The constant defaults (attname -> value), the computed ones ((name, attname, getter)), the
    plain foreign keys (name -> (attname, the related model, the related field's attname)), the
    other relations' names, and every field's attname."""
    fields = [f for f in model._meta.concrete_fields if f.column is not None and not f.generated]
    constant, computed = {}, []
    for f in fields:
        if f.has_default() and callable(f.default) or not f.has_default() and f.db_default is not NOT_PROVIDED:
            computed.append((f.name, f.attname, f.get_default))  # a new value each time, as __init__
        else:  # None, "" or the field's one default object: __init__ hands out the same one each time
            constant[f.attname] = f.get_default()
    foreign_keys, relations = {}, set()
    for f in fields:
        if not f.is_relation:
            continue
        if f.many_to_one and len(f.related_fields) == 1 and f.remote_field.multiple:
            ((lh, rh),) = f.related_fields
            foreign_keys[f.name] = (lh.attname, f.remote_field.model._meta.concrete_model, rh.attname)
        else:
            relations.add(f.name)  # one-to-one, multi-column: through the descriptor
    attnames = frozenset(f.attname for f in fields)
    spec = _SPECS[model] = (constant, tuple(computed), foreign_keys, frozenset(relations), attnames)
    return spec


def model_new(model: type, /, **values):
    """An unsaved ``model`` instance with ``values`` (field names or attnames), the rest at their
    defaults: what ``model(**values)`` builds, without its per-field walk."""
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        return model(**values)
    constant, computed, foreign_keys, relations, attnames = _SPECS.get(model) or _spec(model)
    obj = model.__new__(model)
    state = obj._state = ModelState()
    attrs = obj.__dict__
    attrs.update(constant)
    for name, attname, default in computed:
        if name not in values and attname not in values:
            attrs[attname] = default()
    for key, value in values.items():
        if key in attnames:
            attrs[key] = value
        elif key in foreign_keys:
            # ForwardManyToOneDescriptor.__set__ on a new instance, step by step (its errors: its own)
            attname, related, related_attname = foreign_keys[key]
            if value is None:
                attrs[attname] = None
            elif not isinstance(value, related):
                setattr(obj, key, value)  # raises the descriptor's ValueError
            else:
                if state.db is None:
                    state.db = router.db_for_write(model, instance=value)
                if value._state.db is None:
                    value._state.db = router.db_for_write(type(value), instance=obj)
                if not router.allow_relation(value, obj):
                    setattr(obj, key, value)  # raises the descriptor's ValueError
                attrs[attname] = getattr(value, related_attname)
            state.fields_cache[key] = value
        elif key in relations:
            setattr(obj, key, value)  # the descriptor, as __init__ does with a related object
        else:
            raise TypeError(f"{model.__name__}() got unexpected keyword arguments: {key!r}")
    return obj
