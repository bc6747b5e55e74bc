"""The key codec: the only code that turns field values into key text and key text back.

Every `pk`, `sk` and index key dynorm writes or queries is built here, from a compiled
`KeyTemplate` such as `"ORDER#{created_at}#{id}"`. The encoding holds for *every* value:

- **Injective.** A value's text is *escaped*: each character at or below `$` (U+0000-U+0024,
  which includes the separator `#` and the escape character `$` itself) becomes `$` and two
  upper-case hex digits (`#` -> `$23`, `$` -> `$24`, space -> `$20`). Rendered values
  therefore never contain a raw `#`, and a template must separate its fields with literal
  text that starts with `#`, so a key parses back into exactly one tuple of values.
- **Canonical.** Equal values render equally: numbers are written in plain positional
  notation without trailing zeros (`Decimal("1.50")` and `Decimal("1.5")` both render `1.5`,
  `1E+2` renders `100`, `-0` renders `0`), datetimes as fixed-width UTC with microseconds.
- **Order-preserving.** The escape is monotonic, and `#` sorts below every character a
  rendered value can start with, so key text order is value order for strings, datetimes,
  dates and zero-padded integers, even when more key text follows the field.
- **Prefix-safe.** `begins_with(sk, "FILE#bob#")` can only match `owner == "bob"`: another
  owner's text (`bob$23x` for `"bob#x"`) never continues with a raw `#`.

Byte limits (2048 for a partition key, 1024 for a sort key) are checked by `Options` on the
final text, and a value that UTF-8 cannot encode (a lone surrogate) is refused here.
"""

from __future__ import annotations

import difflib
import enum
import functools
import re
import string
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from ._codec import ValueProblem, format_datetime, unwrap_optional
from ._datetime_format import DateTimeFormat
from .exceptions import ConfigurationError

__all__ = [
    "ESCAPE",
    "SEPARATOR",
    "KeyTemplate",
    "escape",
    "render_value",
    "successor",
    "unescape",
]

#: The character that separates fields in a key template.
SEPARATOR = "#"
#: The escape character: `$XX` stands for the character with code point 0xXX (<= 0x24).
ESCAPE = "$"
_LAST_ESCAPED = 0x24  # "$"

_ESCAPES = {chr(c): f"{ESCAPE}{c:02X}" for c in range(_LAST_ESCAPED + 1)}
_NEEDS_ESCAPE = re.compile("[\x00-\x24]")
_ESCAPED = re.compile(r"\$([0-9A-F]{2})")
#: One character of an escaped value (regex), used to parse keys.
_VALUE_CHAR = r"(?:[^\x00-\x24]|\$(?:[01][0-9A-F]|2[0-4]))"
_FIXED_INT = re.compile(r"^0(\d+)d$")
_FIXED_POINT = re.compile(r"^0(\d+)\.(\d+)f$")


def escape(text: str) -> str:
    """Escape a value's text so it can never contain the separator or a bare escape.

    `escape` is a character-wise, prefix-free code: `escape(a)` is a prefix of `escape(b)`
    exactly when `a` is a prefix of `b`, and `escape(a) < escape(b)` exactly when `a < b`.
    """
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)


def unescape(text: str) -> str:
    """Invert `escape`."""
    if ESCAPE not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


def decimal_text(value: Decimal) -> str:
    """Plain positional text of a finite Decimal, without trailing zeros (`1.50` -> `1.5`)."""
    if not value.is_finite():
        raise ValueProblem("is not a finite number, which a key cannot hold")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    numerals = "".join(map(str, digits)).lstrip("0")
    if not numerals:
        return "0"
    # Drop trailing zeros into the exponent.
    stripped = numerals.rstrip("0")
    exponent += len(numerals) - len(stripped)
    numerals = stripped
    if exponent >= 0:
        text = numerals + "0" * exponent
    elif -exponent >= len(numerals):
        text = "0." + "0" * (-exponent - len(numerals)) + numerals
    else:
        text = numerals[:exponent] + "." + numerals[exponent:]
    return ("-" if sign else "") + text


def _plain_text(value: Any) -> str:
    """The canonical text of a value, before escaping."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueProblem("is not a finite number, which a key cannot hold")
        return decimal_text(Decimal(repr(value)))
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueProblem("is binary, which key templates cannot hold")
    return str(value)


def _formatted(value: Any, spec: str, strict: bool) -> str:
    """Render a number with a format spec, refusing text that would not read back as it."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueProblem(f"is not a number, so the key format {spec!r} cannot render it")
    text = format(value, spec)
    if not strict:
        return text
    width = _FIXED_INT.match(spec) or _FIXED_POINT.match(spec)
    if width is not None and (len(text) != int(width.group(1)) or text.startswith("-")):
        raise ValueProblem(
            f"does not fit the fixed-width key format {spec!r} (negative, or too many "
            "digits), so keys would sort out of order; widen the format"
        )
    try:
        exact = Decimal(text) == Decimal(repr(value) if isinstance(value, float) else value)
    except ArithmeticError:
        exact = False
    if not exact:
        raise ValueProblem(
            f"has more digits than the key format {spec!r} keeps, so two values would share "
            "one key; widen the format"
        )
    return text


def render_value(
    value: Any,
    spec: str = "",
    *,
    strict: bool = True,
    raw: bool = False,
    fmt: DateTimeFormat | None = None,
) -> str:
    """Render one field value as key text: canonical, then escaped.

    With a format spec (numbers only: `{seq:010d}`, `{price:012.2f}`), `strict` refuses a
    value the spec would round, truncate or misorder (negative, or wider than the width).
    `raw` (a plain-value key, the whole key one field): the canonical text, not escaped.
    `fmt`: the field's datetime format (`fields.DateTime(format=...)`) renders a datetime.
    """
    if fmt is not None and isinstance(value, datetime):
        text = fmt.render(value)
    else:
        text = _formatted(value, spec, strict) if spec else _plain_text(value)
    if raw:
        _check_utf8(text)
        return text
    _check_utf8(text)
    return escape(text)


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueProblem(
            "contains a lone surrogate code point, which UTF-8 (and so DynamoDB) cannot store"
        ) from None


def successor(prefix: str) -> str | None:
    """The smallest text greater than every text that starts with `prefix` (None if none).

    Used as the inclusive upper bound of a range that must stay inside `prefix`: no key of
    the template the prefix came from equals it (the changed character is template text).
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:  # skip the surrogates: not valid in UTF-8
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def value_from_text(annotation: Any, text: str, fmt: DateTimeFormat | None = None) -> Any:
    """Read a field value back from its (unescaped) key text, as the field's type."""
    if fmt is not None:
        parsed = fmt.parse(text)
        if parsed is not None:
            return parsed
    base, _ = unwrap_optional(annotation)
    if isinstance(base, type) and issubclass(base, enum.Enum):
        for member in base:
            if _plain_text(member) == text:
                return member
        raise ValueError(f"no member of {base.__name__} renders this text")
    if typing.get_origin(base) is typing.Literal:
        for option in typing.get_args(base):
            if _plain_text(option) == text:
                return option
        raise ValueError("no Literal option renders this text")
    return _adapter(base).validate_python(text)


@functools.lru_cache(maxsize=256)
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


class KeyTemplate:
    """A compiled key template such as `"ORDER#{created_at}#{id}"`.

    Every field must be followed by the end of the template or by literal text that starts
    with `#`; fields may carry a numeric format spec (`{seq:010d}`).
    """

    def __init__(self, source: str, model: str, known_fields: Iterable[str], role: str) -> None:
        self.source = source
        self.model = model
        self.role = role
        self.parts: list[tuple[str, str | None, str]] = []
        known = set(known_fields)
        try:
            parsed = list(string.Formatter().parse(source))
        except ValueError as exc:
            raise ConfigurationError(
                f"Cannot parse the {role} template {source!r} of {model}: {exc}.",
                code="key-template",
            ) from None
        for literal, field_name, spec, conversion in parsed:
            if field_name is not None:
                if field_name == "" or conversion:
                    raise ConfigurationError(
                        f"Cannot use an empty field or a !conversion in the {role} template "
                        f"{source!r} of {model}; name a field, e.g. '{{id}}'.",
                        code="key-template",
                    )
                if field_name not in known:
                    raise ConfigurationError(
                        f"Cannot compile the {role} template {source!r} of {model}: it names "
                        f"the unknown field {field_name!r}.{suggest(field_name, known)}",
                        code="key-template",
                    )
            self.parts.append((literal, field_name, spec or ""))
        for (_, name, _), (literal, _, _) in zip(self.parts, self.parts[1:]):
            if name is not None and not literal.startswith(SEPARATOR):
                raise ConfigurationError(
                    f"Cannot compile the {role} template {source!r} of {model}: the field "
                    f"{name!r} is followed by {literal[:1] or 'another field'!r}; separate "
                    f"key fields with {SEPARATOR!r} (e.g. '{{a}}#{{b}}') so every key parses "
                    "back into one set of values.",
                    code="key-template",
                )
        self.fields: tuple[str, ...] = tuple(f for _, f, _ in self.parts if f is not None)
        if len(set(self.fields)) != len(self.fields):
            raise ConfigurationError(
                f"Cannot compile the {role} template {source!r} of {model}: it names a field "
                "twice; name each field once.",
                code="key-template",
            )
        first = self.parts[0] if self.parts else ("", None, "")
        #: The literal text before the first field: every key of this template starts with it.
        self.prefix: str = first[0]
        pattern = "".join(
            re.escape(literal) + (f"({_VALUE_CHAR}*)" if name is not None else "")
            for literal, name, _ in self.parts
        )
        self._pattern = re.compile(pattern, re.DOTALL)
        #: A plain-value key (see `make_raw`): the value's own text, not escaped.
        self.raw = False
        #: The datetime formats of its fields that declare one (set at class creation).
        self.formats: dict[str, DateTimeFormat] = {}

    @property
    def is_single(self) -> bool:
        """Whether the template is exactly one field: no literal text, no format spec."""
        return (
            len(self.parts) == 1
            and self.parts[0][0] == ""
            and self.parts[0][1] is not None
            and self.parts[0][2] == ""
        )

    def make_raw(self) -> None:
        """Store this one-field key as the value itself, not escaped.

        For a key attribute that *is* a field, or a table dynorm does not manage: one field
        and no literal text is already injective.
        """
        assert self.is_single
        self.raw = True
        self._pattern = re.compile("(.*)", re.DOTALL)

    def value_text(
        self, value: Any, spec: str = "", *, strict: bool = True, name: str | None = None
    ) -> str:
        """One field value's text in this template (escaped unless the key is raw).

        `name`: the field, whose datetime format renders it (the only field of a raw key).
        """
        if name is None and self.raw:
            name = self.fields[0]
        fmt = None if name is None else self.formats.get(name)
        return render_value(value, spec, strict=strict, raw=self.raw, fmt=fmt)

    def check_specs(self, is_number: Callable[[str], bool]) -> None:
        """Refuse a format spec on a field that is not a number (called at class creation)."""
        for _, name, spec in self.parts:
            if name is not None and spec and not is_number(name):
                raise ConfigurationError(
                    f"Cannot use the format spec {spec!r} on {self.model}.{name} in the "
                    f"{self.role} template {self.source!r}: only number fields take a spec "
                    "(e.g. '{seq:010d}'); drop it.",
                    code="key-template",
                )

    def render(self, values: Mapping[str, Any]) -> str | None:
        """Render the key from field values; None when any field is None (sparse index)."""
        out: list[str] = []
        for literal, name, spec in self.parts:
            out.append(literal)
            if name is not None:
                value = values[name]
                if value is None:
                    return None
                out.append(render_value(value, spec, raw=self.raw, fmt=self.formats.get(name)))
        return "".join(out)

    def render_prefix(self, values: Mapping[str, Any]) -> tuple[str, int]:
        """Render the longest prefix fixed by `values`: literals and leading given fields.

        Returns (text, n): `n` is how many leading fields `values` fixed. The text always ends
        with the literal after the last fixed field, so it is a prefix of exactly those keys
        whose leading fields equal the given values.
        """
        out: list[str] = []
        fixed = 0
        for literal, name, spec in self.parts:
            out.append(literal)
            if name is None:
                break
            if name not in values:
                break
            fmt = self.formats.get(name)
            out.append(render_value(values[name], spec, raw=self.raw, fmt=fmt))
            fixed += 1
        return "".join(out), fixed

    def parse(self, text: str) -> dict[str, str] | None:
        """Split a key into each field's unescaped text; None if the key is not this template's."""
        match = self._pattern.fullmatch(text)
        if match is None:
            return None
        if self.raw:
            return {self.fields[0]: match.group(1)}
        return {name: unescape(raw) for name, raw in zip(self.fields, match.groups())}

    def __repr__(self) -> str:
        return f"KeyTemplate({self.source!r})"


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ' Perhaps you meant ...?' for the closest of `choices`, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Perhaps you meant {close[0]!r}?" if close else ""
