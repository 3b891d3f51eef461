"""Latent arithmetic expressions such as `smiling_woman - neutral_woman + 0.5*glasses`, parsed into
weighted names. Pure Python (no torch): the API checks expressions before any job runs."""

from __future__ import annotations

import re

from workers.shared.budgets import MAX_WEIGHT


class ExpressionError(ValueError):
    """A latent expression that does not parse; `position` is the 0-based index of the offending character."""

    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at character {position})")
        self.message = message
        self.position = position


MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[a-z0-9_]+")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SPACE = re.compile(r"\s*")


def parse_expression(text: str) -> list[tuple[float, str]]:
    """'smiling_woman - neutral_woman + 0.5*glasses' → [(1.0, 'smiling_woman'), (-1.0, 'neutral_woman'),
    (0.5, 'glasses')].

    Grammar: expression = [sign] term (sign term)*; term = [number '*'] name; sign = '+' | '-';
    name = [a-z0-9_]{1,64}. A run of digits is a coefficient when a '*' follows it, else a name.
    """
    return _Parser(text).expression()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.position = 0

    def skip_space(self) -> None:
        self.position = _SPACE.match(self.text, self.position).end()

    def peek(self) -> str:
        """The next non-space character, or '' at the end."""
        self.skip_space()
        return self.text[self.position : self.position + 1]

    def fail(self, message: str, position: int | None = None) -> ExpressionError:
        return ExpressionError(message, self.position if position is None else position)

    def expression(self) -> list[tuple[float, str]]:
        if not self.peek():
            raise self.fail("the expression is empty", 0)
        sign = 1.0
        if self.peek() in "+-":
            sign = self.sign()
        terms = [self.term(sign)]
        while self.peek():
            if self.peek() not in "+-":
                raise self.unexpected("'+' or '-'")
            terms.append(self.term(self.sign()))
        return terms

    def sign(self) -> float:
        at = self.position
        self.position += 1
        if not self.peek():
            raise self.fail(f"'{self.text[at]}' has nothing after it", at)
        return -1.0 if self.text[at] == "-" else 1.0

    def term(self, sign: float) -> tuple[float, str]:
        start = self.position
        number = _NUMBER.match(self.text, start)
        if number:
            self.position = number.end()
            if self.peek() == "*":
                weight = float(number.group())
                if weight > MAX_WEIGHT:  # 1e999 parses as inf: too
                    raise self.fail(
                        f"{number.group()} is too large: weights are at most {MAX_WEIGHT:g}", start
                    )
                star = self.position
                self.position += 1
                if not self.peek():
                    raise self.fail("'*' has nothing after it", star)
                return sign * weight, self.name()
            self.position = start
            name = _NAME.match(self.text, start)
            if not name or name.end() < number.end():
                raise self.fail(f"the number {number.group()} needs '* name' after it", start)
        return sign, self.name()

    def name(self) -> str:
        start = self.position
        match = _NAME.match(self.text, start)
        if not match:
            raise self.unexpected("a name")
        if len(match.group()) > MAX_NAME_LENGTH:
            raise self.fail(f"names are at most {MAX_NAME_LENGTH} characters", start + MAX_NAME_LENGTH)
        self.position = match.end()
        return match.group()

    def unexpected(self, expected: str) -> ExpressionError:
        character = self.text[self.position]
        if _NAME.match(character) and expected != "a name":
            return self.fail(f"expected {expected} between two names")
        if not (_NAME.match(character) or character in "+-*."):
            return self.fail(f"unexpected character {character!r} (names use a-z, 0-9 and _)")
        return self.fail(f"expected {expected}, found {character!r}")
