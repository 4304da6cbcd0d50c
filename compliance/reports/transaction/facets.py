"""Checks of single field values equivalent to their auth.016 XSD simple types, read from the
XSD itself (so they cannot drift from it).

Why: a transaction report of a million records is mostly the same XML over and over; only a
few fields change per record (reference, trading time, quantity, price, venue, the venue's
transaction id, the short-selling indicator). The writer validates each distinct shape of
``Tx`` once against the full schema (``writers.TxShape``) and checks the per-record values
here. XSD validity of a simple-typed element depends on its text alone (auth.016 has no
identity constraints, no ``xsi:type``, no substitution groups), so a shape valid with one set
of values is valid with any values each valid for its type.

``field_check(path)`` resolves the element at ``path`` (element names from ``Document``, as in
``"Document/FinInstrmRptgTxRpt/Tx/New/Tx/TradDt"``) through the XSD's declarations to its simple
type (through ``simpleContent`` extensions such as an amount with its ``Ccy`` attribute) and
builds a checker from every facet of its derivation chain: patterns (XSD regular expressions,
translated), enumerations, lengths, ``totalDigits``/``fractionDigits`` and bounds for decimals,
the lexical and value space of ``xs:dateTime``. A facet or regular-expression feature this
module does not know raises ``UnsupportedFacet`` when the check is built: never a silent pass.

The checks take the text exactly as it goes between the tags (not escaped). They are exact
for the types used here (the property tests in ``tests/compliance/reports/test_facets.py``
compare them with libxml2 around every facet boundary); wherever they refuse a value, the
writer still asks libxml2 about that record before holding it back.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from lxml import etree

from compliance.reports.xsd import AUTH016_XSD

XS = "{http://www.w3.org/2001/XMLSchema}"
_SPACES = re.compile(r"[ \t\r\n]+")


def _collapse(text: str) -> str:
    """XSD ``whiteSpace="collapse"`` (fixed for decimals and dates)."""
    if text.strip(" \t\r\n") == text and "  " not in text and "\t" not in text and "\n" not in text:
        return text
    return _SPACES.sub(" ", text).strip(" ")


class UnsupportedFacet(Exception):
    """The XSD uses a facet or a regular-expression feature these checks do not implement."""


@dataclass
class SimpleType:
    """A simple type's facets, gathered along its restriction chain down to a built-in type."""

    name: str
    builtin: str  # string | decimal | dateTime
    patterns: list[list[str]] = field(default_factory=list)  # per derivation step: any of (ORed); steps ANDed
    enumeration: set[str] | None = None
    length: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    total_digits: int | None = None
    fraction_digits: int | None = None
    min_inclusive: str | None = None
    min_exclusive: str | None = None
    max_inclusive: str | None = None
    max_exclusive: str | None = None


# ---------------------------------------------------------------- reading the XSD

_KNOWN_FACETS = {
    "pattern",
    "enumeration",
    "length",
    "minLength",
    "maxLength",
    "totalDigits",
    "fractionDigits",
    "minInclusive",
    "minExclusive",
    "maxInclusive",
    "maxExclusive",
    "annotation",
}
_BUILTINS = {"string": "string", "decimal": "decimal", "dateTime": "dateTime"}


@functools.cache
def _schema_tree() -> etree._ElementTree:
    return etree.parse(str(AUTH016_XSD))


def _named(kind: str, name: str) -> etree._Element:
    found = _schema_tree().getroot().find(f"{XS}{kind}[@name='{name}']")
    if found is None:
        raise UnsupportedFacet(f"no {kind} named {name} in {AUTH016_XSD.name}")
    return found


def _local(type_name: str) -> str:
    prefix, _, local = type_name.rpartition(":")
    return local if prefix else type_name


@functools.cache
def simple_type(name: str) -> SimpleType:
    """The facets of the named simple type (or of the simple content of a complex type)."""
    element = _schema_tree().getroot().find(f"{XS}simpleType[@name='{name}']")
    if element is None:
        complex_type = _named("complexType", name)
        extension = complex_type.find(f"{XS}simpleContent/{XS}extension")
        if extension is None:
            raise UnsupportedFacet(f"{name} is not a simple type nor simple content")
        return simple_type(_local(extension.get("base")))
    restriction = element.find(f"{XS}restriction")
    if restriction is None:
        raise UnsupportedFacet(f"{name}: only restrictions are supported (no list, no union)")
    base = restriction.get("base")
    if base.startswith("xs:"):
        builtin = _BUILTINS.get(base[3:])
        if builtin is None:
            raise UnsupportedFacet(f"{name}: built-in base {base} not supported")
        result = SimpleType(name, builtin)
    else:
        parent = simple_type(_local(base))
        result = SimpleType(
            name,
            parent.builtin,
            [list(p) for p in parent.patterns],
            set(parent.enumeration) if parent.enumeration is not None else None,
            parent.length,
            parent.min_length,
            parent.max_length,
            parent.total_digits,
            parent.fraction_digits,
            parent.min_inclusive,
            parent.min_exclusive,
            parent.max_inclusive,
            parent.max_exclusive,
        )
    step_patterns: list[str] = []
    enumeration: set[str] = set()
    for facet in restriction:
        if not isinstance(facet.tag, str):
            continue
        kind = facet.tag.removeprefix(XS)
        if kind not in _KNOWN_FACETS:
            raise UnsupportedFacet(f"{name}: facet {kind}")
        value = facet.get("value")
        if kind == "pattern":
            step_patterns.append(value)
        elif kind == "enumeration":
            enumeration.add(value)
        elif kind in ("length", "minLength", "maxLength", "totalDigits", "fractionDigits"):
            attr = {"minLength": "min_length", "maxLength": "max_length", "totalDigits": "total_digits"}.get(kind)
            attr = attr or {"fractionDigits": "fraction_digits"}.get(kind, kind)
            setattr(result, attr, int(value))
        elif kind != "annotation":
            setattr(result, re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), kind), value)
    if step_patterns:
        result.patterns.append(step_patterns)
    if enumeration:
        # a restriction's enumeration is a subset of its base's: the last one decides
        result.enumeration = enumeration
    return result


def _type_children(type_name: str) -> dict[str, str]:
    """Element name -> type name of the elements a complex type declares (sequence/choice)."""
    complex_type = _named("complexType", type_name)
    return {
        e.get("name"): _local(e.get("type"))
        for e in complex_type.iter(f"{XS}element")
        if e.get("name") and e.get("type")
    }


@functools.cache
def element_type(path: str) -> str:
    """The type name of the element at ``path`` (names from ``Document``, ``/``-separated)."""
    names = path.split("/")
    root = _schema_tree().getroot().find(f"{XS}element[@name='{names[0]}']")
    if root is None:
        raise UnsupportedFacet(f"no global element {names[0]}")
    type_name = _local(root.get("type"))
    for name in names[1:]:
        children = _type_children(type_name)
        if name not in children:
            raise UnsupportedFacet(f"{path}: {type_name} declares no element {name}")
        type_name = children[name]
    return type_name


# ---------------------------------------------------------------- XSD regular expressions


def xsd_regex(pattern: str) -> re.Pattern:
    """An XSD pattern as a Python regular expression matching the whole value (XSD patterns are
    implicitly anchored; ``.`` is any character but newline and carriage return; ``^`` and
    ``$`` are plain characters). Features without an exact translation here raise."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt in ("i", "I", "c", "C", "p", "P", "w", "W", "s", "S", "d", "D"):
                raise UnsupportedFacet(f"pattern {pattern!r}: \\{nxt} not supported")
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "-" and pattern[i + 1 : i + 2] == "[":
                raise UnsupportedFacet(f"pattern {pattern!r}: character class subtraction not supported")
            if c == "]":
                in_class = False
            elif c == "[":
                out.append("\\[")
                i += 1
                continue
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
        elif c == ".":
            out.append("[^\\n\\r]")
        elif c in "^$":
            out.append("\\" + c)
        elif c == "(" and pattern[i + 1 : i + 2] == "?":
            raise UnsupportedFacet(f"pattern {pattern!r}: '(?' is not XSD syntax")
        else:
            out.append(c)
        i += 1
    return re.compile("(?:" + "".join(out) + r")\Z", re.DOTALL)


# ---------------------------------------------------------------- lexical and value checks

_XML_CHAR = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_DATETIME = re.compile(
    r"(-?)([0-9]{4,})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def datetime_error(text: str) -> str | None:
    """Why ``text`` (whitespace already collapsed) is not an ``xs:dateTime``, or None.
    XSD 1.0 as libxml2 implements it: year 0000 refused, 24:00:00 (end of the day) accepted, seconds < 60,
    time-zone offsets up to 14:00."""
    m = _DATETIME.match(text)
    if m is None:
        return "not an ISO 8601 date and time (YYYY-MM-DDThh:mm:ss[.s][Z])"
    sign, year_s, month_s, day_s, hour_s, minute_s, second_s, _fraction, zone = m.groups()
    if len(year_s) > 4 and year_s[0] == "0":
        return "year with a leading zero beyond four digits"
    year, month, day = int(year_s), int(month_s), int(day_s)
    if year == 0:
        return "year 0000"
    if not 1 <= month <= 12:
        return f"month {month_s}"
    if not 1 <= day <= _DAYS[month - 1] or (month == 2 and day == 29 and not _leap(-year if sign else year)):
        return f"day {day_s} of month {month_s}"
    end_of_day = (hour_s, minute_s, second_s) == ("24", "00", "00") and not (_fraction or ".").strip(".0")
    if (int(hour_s) > 23 and not end_of_day) or int(minute_s) > 59 or int(second_s) > 59:
        return f"time {hour_s}:{minute_s}:{second_s}"
    if zone and zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if minutes > 59 or hours * 60 + minutes > 14 * 60:
            return f"time zone {zone}"
    return None


def _digits(text: str) -> tuple[int, int]:
    """(total digits, fraction digits) of a decimal lexical form, as values count them:
    leading zeros of the integer part and trailing zeros of the fraction do not count."""
    text = text.lstrip("+-")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    whole = whole.lstrip("0")
    total = len(whole) + len(fraction)
    return max(total, 1), len(fraction)


Check = Callable[[str], str | None]


def compile_check(st: SimpleType) -> Check:
    """A function ``text -> None`` (valid) or the reason the text is not valid for ``st``."""
    patterns = [[xsd_regex(p) for p in step] for step in st.patterns]
    enumeration = st.enumeration
    collapse = st.builtin != "string"

    def bound(name: str) -> Decimal | None:
        value = getattr(st, name)
        if value is None:
            return None
        if st.builtin != "decimal":
            raise UnsupportedFacet(f"{st.name}: {name} on {st.builtin}")
        return Decimal(value)

    lo_in, lo_ex, hi_in, hi_ex = (
        bound(n) for n in ("min_inclusive", "min_exclusive", "max_inclusive", "max_exclusive")
    )
    if st.builtin != "string" and (st.length, st.min_length, st.max_length) != (None, None, None):
        raise UnsupportedFacet(f"{st.name}: length facets on {st.builtin}")
    if st.builtin != "decimal" and (st.total_digits, st.fraction_digits) != (None, None):
        raise UnsupportedFacet(f"{st.name}: digit facets on {st.builtin}")

    slow = _checker(st, patterns, enumeration, collapse, lo_in, lo_ex, hi_in, hi_ex)
    fast = _fast_accept(st, patterns, enumeration, lo_in, lo_ex, hi_in, hi_ex)
    if fast is None:
        return slow

    def check(text: str) -> str | None:
        return None if fast(text) else slow(text)

    check.accept = lambda text: fast(text) or slow(text) is None
    return check


_SAFE = re.compile(r"[0-9A-Za-z.:+\- ]*\Z")  # no markup, no character XML cannot carry
_CANONICAL_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?\Z")
_CANONICAL_DATETIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?Z\Z"
)


def _fast_accept(st: SimpleType, patterns, enumeration, lo_in, lo_ex, hi_in, hi_ex) -> Callable[[str], bool] | None:
    """A cheaper test that only says yes for texts the full check accepts (the common, canonical
    forms the builder writes); a no sends the text to the full check. None: no shortcut."""
    if st.builtin == "string":
        if enumeration is not None or st.length is not None or st.min_length is not None or st.max_length is not None:
            return None
        if len(patterns) != 1 or len(patterns[0]) != 1:
            return None
        pattern = patterns[0][0].match
        safe = _SAFE.match
        return lambda text: safe(text) is not None and pattern(text) is not None
    if st.builtin == "dateTime":
        dates: dict[str, bool] = {}
        canonical = _CANONICAL_DATETIME.match
        steps = [[p.match for p in step] for step in patterns]
        single = steps[0][0] if len(steps) == 1 and len(steps[0]) == 1 else None

        def accept_datetime(text: str) -> bool:
            m = canonical(text)
            if m is None:
                return False
            day = m.group(1)
            known = dates.get(day)
            if known is None:
                known = datetime_error(day + "T00:00:00Z") is None
                if len(dates) < 10_000:
                    dates[day] = known
            return known and (single(text) is not None if single else all(any(m(text) for m in step) for step in steps))

        return accept_datetime
    # decimal: canonical text (no sign, no leading or trailing zeros) counted directly
    if patterns or enumeration is not None or hi_in is not None or hi_ex is not None:
        return None
    if (lo_in is not None and lo_in != 0) or (lo_ex is not None and lo_ex != 0):
        return None
    canonical = _CANONICAL_DECIMAL.match
    total_max = st.total_digits if st.total_digits is not None else 10**9
    fraction_max = st.fraction_digits if st.fraction_digits is not None else 10**9
    zero_ok = lo_ex is None

    def accept_decimal(text: str) -> bool:
        if canonical(text) is None:
            return False
        whole, _, fraction = text.partition(".")
        if whole == "0":
            if not fraction:
                return zero_ok
            whole = ""
        return len(fraction) <= fraction_max and len(whole) + len(fraction) <= total_max

    return accept_decimal


def _checker(st: SimpleType, patterns, enumeration, collapse, lo_in, lo_ex, hi_in, hi_ex) -> Check:
    """The full check: every facet, the built-in type's lexical and value space."""

    def check(text: str) -> str | None:
        if _XML_CHAR.search(text):
            return "contains a character XML cannot carry"
        if "<" in text or "&" in text:
            return "contains markup ('<' or '&')"
        value = _collapse(text) if collapse else text
        for step in patterns:
            if not any(p.match(value) for p in step):
                return f"does not match the pattern {' | '.join(p.pattern[3:-3] for p in step)!r}"
        if enumeration is not None and value not in enumeration:
            return f"not one of {sorted(enumeration)}"
        if st.builtin == "string":
            n = len(value)
            if st.length is not None and n != st.length:
                return f"length {n}, the schema wants {st.length}"
            if st.min_length is not None and n < st.min_length:
                return f"length {n}, the schema wants at least {st.min_length}"
            if st.max_length is not None and n > st.max_length:
                return f"length {n}, the schema allows at most {st.max_length}"
            return None
        if st.builtin == "dateTime":
            return datetime_error(value)
        if not _DECIMAL.match(value):
            return "not a decimal number"
        total, fraction = _digits(value)
        if st.fraction_digits is not None and fraction > st.fraction_digits:
            return f"{fraction} fraction digits, the schema allows at most {st.fraction_digits}"
        if st.total_digits is not None and total > st.total_digits:
            return f"{total} digits, the schema allows at most {st.total_digits}"
        if lo_in is not None or lo_ex is not None or hi_in is not None or hi_ex is not None:
            try:
                number = Decimal(value)
            except InvalidOperation:
                return "not a decimal number"
            if lo_in is not None and number < lo_in:
                return f"less than {st.min_inclusive}"
            if lo_ex is not None and number <= lo_ex:
                return f"not more than {st.min_exclusive}"
            if hi_in is not None and number > hi_in:
                return f"more than {st.max_inclusive}"
            if hi_ex is not None and number >= hi_ex:
                return f"not less than {st.max_exclusive}"
        return None

    return check


@dataclass(frozen=True)
class FieldCheck:
    """The check of one element's text: its path, type name and the compiled check."""

    path: str
    type_name: str
    check: Check
    accept: Callable[[str], bool]  # check(text) is None, with the cheap paths first

    def error(self, text: str) -> str | None:
        reason = self.check(text)
        if reason is None:
            return None
        return f"{self.path.rsplit('/', 1)[-1]} ({self.type_name}) {text!r}: {reason}"


@functools.cache
def field_check(path: str) -> FieldCheck:
    """The check of the element at ``path``, built from the XSD (cached)."""
    type_name = element_type(path)
    st = simple_type(type_name)
    check = compile_check(st)
    accept = getattr(check, "accept", None) or (lambda text: check(text) is None)
    return FieldCheck(path, type_name, check, accept)


# ---------------------------------------------------------------- shapes of Tx

TX_PATH = "Document/FinInstrmRptgTxRpt/Tx/New/"

# A valid and distinct text per slot path: a shape is validated with these in its slots, and the
# validated tree is read back to prove each slot sits in the element its path names.
PLACEHOLDERS: dict[str, str] = {
    "TxId": "SLOTTXID",
    "Tx/TradDt": "2001-02-03T04:05:06Z",
    "Tx/Qty/Unit": "7",
    "Tx/Qty/NmnlVal": "7",
    "Tx/Pric/Pric/MntryVal/Amt": "8",
    "Tx/TradVn": "SLOT",
    "Tx/TradPlcMtchgId": "SLOTMATCHID",
    "AddtlAttrbts/ShrtSellgInd": "SSEX",
}
MEMO_LIMIT = 4096  # texts remembered as valid per field (venues, prices and quantities repeat)


def _renderer(segments: tuple[str, ...]) -> Callable[[tuple[str, ...]], str]:
    """segment 0, slot 0, segment 1, ... joined; unrolled for the arities records have (a
    million renders: str.format re-parses a 1 KB template each time, three times slower)."""
    n = len(segments) - 1
    if n == 5:
        a, b, c, d, e, f = segments
        return lambda v: "".join((a, v[0], b, v[1], c, v[2], d, v[3], e, v[4], f))
    if n == 6:
        a, b, c, d, e, f, g = segments
        return lambda v: "".join((a, v[0], b, v[1], c, v[2], d, v[3], e, v[4], f, v[5], g))
    if n == 7:
        a, b, c, d, e, f, g, h = segments
        return lambda v: "".join((a, v[0], b, v[1], c, v[2], d, v[3], e, v[4], f, v[5], g, v[6], h))

    def render(slots: tuple[str, ...]) -> str:
        parts = [segments[0]]
        for text, segment in zip(slots, segments[1:], strict=True):
            parts += (text, segment)
        return "".join(parts)

    return render


class TxShape:
    """A ``<Tx>`` element with holes: ``segments`` (constant XML, one more than the slots) and
    ``paths`` (each slot's element, relative to ``Tx/New``). The builder makes one per
    (instrument, account, decision maker, side, optional elements); the writer validates it once
    with the placeholders against the full XSD and each record's slot texts with
    ``slot_errors``. Compared by identity."""

    __slots__ = ("segments", "paths", "checks", "_accepts", "_render", "_memo")

    def __init__(self, segments: tuple[str, ...], paths: tuple[str, ...]):
        if len(segments) != len(paths) + 1:
            raise ValueError("a shape has one more segment than slots")
        self.segments = segments
        self.paths = paths
        self.checks = tuple(field_check(TX_PATH + p) for p in paths)
        self._accepts = tuple(c.accept for c in self.checks)
        self._render = _renderer(segments)
        self._memo: tuple[set, ...] = tuple(set() for _ in paths)

    def render(self, slots: tuple[str, ...]) -> str:
        return self._render(slots)

    def placeholder_slots(self) -> tuple[str, ...]:
        return tuple(PLACEHOLDERS[p] for p in self.paths)

    def slot_errors(self, slots: tuple[str, ...]) -> list[str]:
        """Why slot texts are not valid for their elements' types (empty: all valid)."""
        errors = []
        for text, accept, memo, check in zip(slots, self._accepts, self._memo, self.checks, strict=True):
            if text in memo:
                continue
            if accept(text):
                if len(memo) < MEMO_LIMIT:
                    memo.add(text)
            else:
                errors.append(check.error(text))
        return errors
