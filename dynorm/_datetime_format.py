"""Per-field datetime storage formats (`fields.DateTime(format=...)`).

dynorm stores a datetime as fixed-width UTC text ending in `Z`
(`2026-12-01T10:00:00.000000Z`). A field mapped onto another library's attribute may store
another text: PynamoDB's `UTCDateTimeAttribute` writes `2026-12-01T10:00:00.000000+0000`.
A format is a pattern of strftime-like directives, or the name of a preset:

| Directive | Stored as |
|---|---|
| `%Y` | the year, 4 digits (zero-padded) |
| `%m` `%d` `%H` `%M` `%S` | month, day, hour, minute, second, 2 digits |
| `%f` | microseconds, 6 digits (left out: a value must have none) |
| `%z` | the UTC offset, always `+0000` when written (any `+hhmm` / `-hhmm` is read) |
| `%%` | a `%` |

Every value is written in UTC. A pattern needs `%Y %m %d %H %M %S` (each once), so a stored
text reads back as exactly the value written; it is *sortable* (text order is time order)
when those come in that order, then `%f` if present, as in every preset: only a sortable
format takes range lookups, `order_by` and sort keys. Checked when the class is created.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ._codec import AttributeValue, FieldCodec, ValueProblem, as_utc, from_wire

__all__ = ["PRESETS", "DateTimeFormat", "with_format"]

#: The named formats.
PRESETS = {
    "dynorm": "%Y-%m-%dT%H:%M:%S.%fZ",
    "pynamodb": "%Y-%m-%dT%H:%M:%S.%f%z",
    "iso": "%Y-%m-%dT%H:%M:%S.%f+00:00",
}
_WIDTH = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "f": 6}
_NEEDED = ("Y", "m", "d", "H", "M", "S")
_DIRECTIVE = re.compile(r"%(.)", re.DOTALL)


class DateTimeFormat:
    """One compiled storage format: renders an aware datetime, parses its text back."""

    __slots__ = ("_regex", "directives", "name", "pattern", "sortable", "tokens")

    def __init__(self, spec: str) -> None:
        """Compile `spec` (a preset name or a pattern); ValueError says what is wrong."""
        if not isinstance(spec, str) or not spec:
            raise ValueError("a datetime format is a preset name or a pattern such as '%Y-%m-%d'")
        self.name = spec
        self.pattern = PRESETS.get(spec, spec)
        tokens: list[tuple[bool, str]] = []  # (is a directive, its letter or the literal)
        regex: list[str] = []
        position = 0
        for match in _DIRECTIVE.finditer(self.pattern):
            literal = self.pattern[position : match.start()]
            position = match.end()
            letter = match[1]
            if literal:
                tokens.append((False, literal))
                regex.append(re.escape(literal))
            if letter == "%":
                tokens.append((False, "%"))
                regex.append("%")
            elif letter == "z":
                tokens.append((True, "z"))
                regex.append(r"(?P<z>Z|[+-]\d{4})")
            elif letter in _WIDTH:
                tokens.append((True, letter))
                regex.append(f"(?P<{letter}>\\d{{{_WIDTH[letter]}}})")
            else:
                raise ValueError(
                    f"the directive %{letter} is not supported; use %Y %m %d %H %M %S %f %z"
                )
        if position < len(self.pattern):
            tail = self.pattern[position:]
            if "%" in tail:
                raise ValueError("the pattern ends with a lone '%'; write '%%' for a '%'")
            tokens.append((False, tail))
            regex.append(re.escape(tail))
        directives = [letter for is_directive, letter in tokens if is_directive]
        for letter in directives:
            if directives.count(letter) > 1:
                raise ValueError(f"the directive %{letter} appears twice; give each once")
        missing = [f"%{d}" for d in _NEEDED if d not in directives]
        if missing:
            raise ValueError(
                f"the pattern lacks {' '.join(missing)}, so a stored value would not read "
                "back as the datetime written; add them"
            )
        self.tokens = tuple(tokens)
        self.directives = tuple(directives)
        ordered = [d for d in directives if d != "z"]
        self.sortable = ordered in (list(_NEEDED), [*_NEEDED, "f"])
        self._regex = re.compile("".join(regex), re.DOTALL)

    def render(self, value: datetime) -> str:
        """The stored text of an aware datetime (in UTC); ValueProblem names the problem."""
        v = as_utc(value)
        if v.microsecond and "f" not in self.directives:
            raise ValueProblem(
                f"has microseconds, which the datetime format {self.name!r} does not store; "
                "drop them (value.replace(microsecond=0)) or store %f"
            )
        parts = {
            "Y": f"{v.year:04d}",
            "m": f"{v.month:02d}",
            "d": f"{v.day:02d}",
            "H": f"{v.hour:02d}",
            "M": f"{v.minute:02d}",
            "S": f"{v.second:02d}",
            "f": f"{v.microsecond:06d}",
            "z": "+0000",
        }
        return "".join(parts[text] if is_directive else text for is_directive, text in self.tokens)

    def parse(self, text: str) -> datetime | None:
        """The aware UTC datetime a stored text holds; None if it is not in this format."""
        match = self._regex.fullmatch(text)
        if match is None:
            return None
        groups = match.groupdict()
        offset = timedelta(0)
        zone = groups.get("z")
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        try:
            local = datetime(
                int(groups["Y"]),
                int(groups["m"]),
                int(groups["d"]),
                int(groups["H"]),
                int(groups["M"]),
                int(groups["S"]),
                int(groups.get("f") or 0),
                tzinfo=timezone(offset),
            )
            return local.astimezone(timezone.utc)
        except (ValueError, OverflowError):
            return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DateTimeFormat) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"DateTimeFormat({self.name!r})"


def with_format(codec: FieldCodec, formats: Mapping[str, DateTimeFormat]) -> FieldCodec:
    """A field's codec storing its datetimes in the field's format (when it declares one).

    The decoder reads the format's text, and passes any other stored text on to pydantic
    (an item written before the format was declared, in dynorm's own form, still reads).
    """
    fmt = formats.get(codec.name)
    if fmt is None:
        return codec

    def encode(value: Any) -> AttributeValue | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueProblem("is not a datetime")
        return {"S": fmt.render(value)}

    def decode(av: Mapping[str, Any]) -> Any:
        text = av.get("S")
        if not isinstance(text, str):
            return from_wire(av)
        parsed = fmt.parse(text)
        return text if parsed is None else parsed

    return dataclasses.replace(codec, encode=encode, decode=decode)
