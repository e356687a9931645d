"""The words of one iptables-save rule: tokens, options, quoting and numbers.

``tokenize`` splits a line exactly as iptables-restore does (double quotes
group words, a backslash inside quotes takes the next character literally,
single quotes are ordinary characters), keeping each word's raw text so that
constructs the models do not know are kept verbatim.  ``options`` groups the
words into ``[!] --option [!] value...`` units; ``save_string`` quotes a
value the way iptables-save does.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_U32 = 0xFFFFFFFF
STRING_OPTIONS = frozenset({"--comment", "--log-prefix", "--nflog-prefix", "--ulog-prefix"})
"""Options whose value is any string (printed with ``save_string``), so it is taken even if it looks like an option."""
_NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class RuleError(ValueError):
    """A rule that iptables could not have printed (the caller adds file, line and text)."""


class Unsupported(Exception):
    """A construct whose syntax is clear but that the models do not know (kept as its text)."""


@dataclass(frozen=True)
class Token:
    """One word: its value after unquoting, its text as written, and whether quotes were involved."""

    value: str
    raw: str
    quoted: bool = False

    @property
    def option_like(self) -> bool:
        """An unquoted ``-x`` or ``--xyz`` word (a lone ``-`` or a quoted word is a value)."""
        return not self.quoted and len(self.value) > 1 and self.value.startswith("-")

    @property
    def bang(self) -> bool:
        return not self.quoted and self.value == "!"


@dataclass(frozen=True)
class Option:
    """``[!] NAME [!] VALUE...``: an option with its values and the tokens it was written with."""

    name: str
    negated: bool
    values: tuple[Token, ...]
    tokens: tuple[Token, ...]

    @property
    def text(self) -> str:
        return " ".join(t.raw for t in self.tokens)

    def value(self) -> str:
        """The option's single value (RuleError if it has none or several)."""
        if len(self.values) != 1:
            raise RuleError(f"{self.name} takes one value, not {len(self.values)}")
        return self.values[0].value

    def flag(self) -> None:
        """Check that the option takes no value."""
        if self.values:
            raise RuleError(f"{self.name} takes no value, got {self.values[0].value!r}")


def tokenize(line: str) -> list[Token]:
    """Split a line into words the way iptables-restore does."""
    tokens: list[Token] = []
    buf: list[str] = []
    start: int | None = None
    in_quote = escaped = quoted = False
    for i, ch in enumerate(line):
        if in_quote:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
            else:
                buf.append(ch)
            continue
        if ch in " \t":
            if start is not None:
                tokens.append(Token("".join(buf), line[start:i], quoted))
                buf, start, quoted = [], None, False
            continue
        if start is None:
            start = i
        if ch == '"':
            in_quote = quoted = True
        else:
            buf.append(ch)
    if in_quote:
        raise RuleError("unbalanced double quote")
    if start is not None:
        tokens.append(Token("".join(buf), line[start:], quoted))
    return tokens


def options(tokens: list[Token]) -> list[Option]:
    """Group words into options; ``!`` before an option or (old style) before its value negates it."""
    out: list[Option] = []
    i, n = 0, len(tokens)
    while i < n:
        start = i
        negated = tokens[i].bang
        if negated:
            i += 1
            if i == n:
                raise RuleError("'!' at the end of the rule")
        name = tokens[i]
        if not name.option_like:
            raise RuleError(f"expected an option, found {name.raw!r}")
        i += 1
        if i + 1 < n and tokens[i].bang and not tokens[i + 1].option_like and not tokens[i + 1].bang:
            if negated:
                raise RuleError(f"{name.value} is negated twice")
            negated = True
            i += 1
        values_start = i
        if name.value in STRING_OPTIONS and i < n and not tokens[i].bang:
            i += 1
        while i < n and not tokens[i].option_like and not tokens[i].bang:
            i += 1
        values = tuple(t for t in tokens[values_start:i])
        out.append(Option(name.value, negated, values, tuple(tokens[start:i])))
    return out


def save_string(value: str) -> str:
    """A value as iptables-save prints a string: bare if it is a plain word, else in escaping double quotes."""
    if value and all(ch in _NO_QUOTE for ch in value):
        return value
    escaped = "".join("\\" + ch if ch in "\"\\'" else ch for ch in value)
    return f'"{escaped}"'


def u32(text: str, what: str) -> int:
    """A 32-bit number written in decimal or ``0x`` hex."""
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_U32:
        raise RuleError(f"bad {what} {text!r} (expected a 32-bit number)")
    return value


def value_mask(text: str, what: str) -> tuple[int, int]:
    """``value[/mask]`` (mask defaults to all ones)."""
    value, slash, mask = text.partition("/")
    return u32(value, what), u32(mask, f"{what} mask") if slash else MAX_U32


def hex_mask(value: int, mask: int) -> str:
    """``0xV/0xM`` as iptables-save prints marks."""
    return f"{value:#x}/{mask:#x}"
