"""A small SOQL subset for the Salesforce fake: parse a query, then filter, sort and cut rows.

``SELECT f, ... FROM Object [WHERE ...] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]``.
Conditions are ``Field op value`` (=, !=, <>, <, <=, >, >=, LIKE, IN (...), NOT IN (...)) joined by AND/OR,
with NOT and parentheses. Values: unquoted date-time literals (``2026-08-15T12:00:00Z``, ``+00:00`` or
``+0000`` offsets, fractional seconds), unquoted date literals, 'quoted strings', numbers, true/false, null.

Field names and keywords are case-insensitive; text equality and LIKE are case-insensitive, as in SOQL.
Values are checked against field types the way Salesforce does: a quoted date-time, a date literal
against a date-time field or a number against a text field answers INVALID_QUERY_FILTER_OPERATOR.
Errors carry Salesforce's message shape: the query, a caret, ``ERROR at Row:1:Column:N``, the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.server import epoch_ms, parse_moment

NUMERIC_TYPES = frozenset({"currency", "percent", "double", "int"})
SOAP_TYPE_NAMES = {"datetime": "dateTime", "currency": "double", "percent": "double", "int": "double"}

# Looks a field up by name in any case: (canonical name, type), or None when the object has no such field.
FieldLookup = Callable[[str], "tuple[str, str] | None"]
Row = dict[str, Any]


class SoqlError(Exception):
    def __init__(self, error_code: str, detail: str, query: str = "", column: int | None = None) -> None:
        super().__init__(detail)
        self.error_code = error_code
        self.detail = detail
        self.query = query
        self.column = column

    def body(self) -> list[dict[str, str]]:
        if self.column is None:
            message = self.detail
        else:
            # Salesforce's shape: the query, a caret under the offending token, the position, the reason.
            caret = " " * (self.column - 1) + "^"
            message = f"\n{self.query}\n{caret}\nERROR at Row:1:Column:{self.column}\n{self.detail}"
        return [{"message": message, "errorCode": self.error_code}]


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.:]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc", "nulls", "first",
     "last", "limit", "offset", "true", "false", "null"}
)  # fmt: skip


@dataclass
class _Token:
    kind: str
    text: str
    column: int  # 1-based


@dataclass
class Query:
    fields: list[str]  # canonical names, in SELECT order
    where: Callable[[Row], bool] | None
    order_by: list[tuple[str, str, bool, bool]]  # name, type, descending, nulls first
    limit: int | None
    offset: int

    def apply(self, rows: list[Row]) -> list[Row]:
        """The rows this query selects, in its order (rows keep their input order where it says none)."""
        if self.where is not None:
            rows = [row for row in rows if self.where(row)]
        # One stable sort per key, last key first, gives the multi-key order.
        for name, kind, descending, nulls_first in reversed(self.order_by):
            present = [row for row in rows if row.get(name) is not None]
            missing = [row for row in rows if row.get(name) is None]
            present.sort(key=lambda row, n=name, k=kind: _comparable(k, row[n]), reverse=descending)
            rows = missing + present if nulls_first else present + missing
        rows = rows[self.offset :]
        return rows if self.limit is None else rows[: self.limit]


def parse(text: str, *, sobject: str, field_type: FieldLookup) -> Query:
    """Parse ``text`` as a query on ``sobject``; raises SoqlError with Salesforce's code and message."""
    return _Parser(text, sobject, field_type).parse()


class _Parser:
    def __init__(self, text: str, sobject: str, field_type: FieldLookup) -> None:
        self.text = text
        self.sobject = sobject
        self.field_type = field_type
        self.tokens = self._tokenize(text)
        self.position = 0

    def _tokenize(self, text: str) -> list[_Token]:
        tokens, index = [], 0
        while index < len(text):
            match = _TOKEN.match(text, index)
            if match is None:
                raise self._error("MALFORMED_QUERY", f"unexpected token: '{text[index]}'", index + 1)
            if match.lastgroup != "ws":
                tokens.append(_Token(match.lastgroup or "", match.group(), index + 1))
            index = match.end()
        tokens.append(_Token("eof", "<EOF>", len(text) + 1))
        return tokens

    def _error(self, code: str, detail: str, column: int) -> SoqlError:
        return SoqlError(code, detail, self.text, column)

    # token helpers

    def _peek(self) -> _Token:
        return self.tokens[self.position]

    def _next(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _is(self, *words: str) -> bool:
        token = self._peek()
        return token.kind == "ident" and token.text.lower() in words

    def _expect_word(self, word: str) -> _Token:
        token = self._next()
        if token.kind != "ident" or token.text.lower() != word:
            raise self._unexpected(token)
        return token

    def _expect_punct(self, text: str) -> None:
        token = self._next()
        if token.kind != "punct" or token.text != text:
            raise self._unexpected(token)

    def _unexpected(self, token: _Token) -> SoqlError:
        shown = token.text if token.kind == "eof" else f"'{token.text}'"
        return self._error("MALFORMED_QUERY", f"unexpected token: {shown}", token.column)

    # grammar

    def parse(self) -> Query:
        self._expect_word("select")
        select_tokens = [self._field_token()]
        while self._peek().kind == "punct" and self._peek().text == ",":
            self._next()
            select_tokens.append(self._field_token())
        self._expect_word("from")
        entity = self._next()
        if entity.kind != "ident" or entity.text.lower() in _KEYWORDS:
            raise self._unexpected(entity)
        if entity.text.lower() != self.sobject.lower():
            raise SoqlError(
                "INVALID_TYPE",
                f"\n{self.text}\n{' ' * (entity.column - 1)}^\nERROR at Row:1:Column:{entity.column}\n"
                f"sObject type '{entity.text}' is not supported. If you are attempting to use a custom object, "
                "be sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            )
        fields = [self._resolve(token) for token in select_tokens]
        seen: set[str] = set()
        for name, token in zip(fields, select_tokens, strict=True):
            if name in seen:
                raise self._error("MALFORMED_QUERY", f"duplicate field selected: {name}", token.column)
            seen.add(name)
        where = None
        if self._is("where"):
            self._next()
            where = self._or()
        order_by: list[tuple[str, str, bool, bool]] = []
        if self._is("order"):
            self._next()
            self._expect_word("by")
            order_by.append(self._order_item())
            while self._peek().kind == "punct" and self._peek().text == ",":
                self._next()
                order_by.append(self._order_item())
        limit = offset = None
        if self._is("limit"):
            self._next()
            limit = self._integer()
        if self._is("offset"):
            self._next()
            offset = self._integer()
        if self._peek().kind != "eof":
            raise self._unexpected(self._peek())
        return Query(fields, where, order_by, limit, offset or 0)

    def _field_token(self) -> _Token:
        token = self._next()
        if token.kind != "ident" or token.text.lower() in _KEYWORDS:
            raise self._unexpected(token)
        if self._peek().kind == "punct" and self._peek().text == "(":
            raise self._error(
                "MALFORMED_QUERY", f"the fake supports plain fields only, not {token.text}(...)", token.column
            )
        return token

    def _resolve(self, token: _Token) -> str:
        found = self.field_type(token.text)
        if found is None or "." in token.text:
            raise self._error(
                "INVALID_FIELD",
                f"No such column '{token.text}' on entity '{self.sobject}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
                token.column,
            )
        return found[0]

    def _kind(self, name: str) -> str:
        found = self.field_type(name)
        assert found is not None  # resolved already
        return found[1]

    def _integer(self) -> int:
        token = self._next()
        if token.kind != "number" or not token.text.isdigit():
            raise self._unexpected(token)
        return int(token.text)

    def _order_item(self) -> tuple[str, str, bool, bool]:
        name = self._resolve(self._field_token())
        descending = False
        if self._is("asc", "desc"):
            descending = self._next().text.lower() == "desc"
        nulls_first = not descending  # Salesforce: nulls first ascending, last descending
        if self._is("nulls"):
            self._next()
            if not self._is("first", "last"):
                raise self._unexpected(self._peek())
            nulls_first = self._next().text.lower() == "first"
        return name, self._kind(name), descending, nulls_first

    def _or(self):
        parts = [self._and()]
        while self._is("or"):
            self._next()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda row: any(part(row) for part in parts))

    def _and(self):
        parts = [self._not()]
        while self._is("and"):
            self._next()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else (lambda row: all(part(row) for part in parts))

    def _not(self):
        if self._is("not"):
            self._next()
            inner = self._not()
            return lambda row: not inner(row)
        if self._peek().kind == "punct" and self._peek().text == "(":
            self._next()
            inner = self._or()
            self._expect_punct(")")
            return inner
        return self._condition()

    def _condition(self):
        field_token = self._field_token()
        name = self._resolve(field_token)
        kind = self._kind(name)
        if self._is("not", "in"):
            negate = self._next().text.lower() == "not"
            if negate:
                self._expect_word("in")
            self._expect_punct("(")
            values = [self._value(name, kind)]
            while self._peek().kind == "punct" and self._peek().text == ",":
                self._next()
                values.append(self._value(name, kind))
            self._expect_punct(")")

            def member(row: dict[str, Any]) -> bool:
                current = _comparable(kind, row.get(name))
                return any(current == value for value in values)

            return (lambda row: not member(row)) if negate else member
        if self._is("like"):
            self._next()
            token = self._next()
            if token.kind != "string":
                raise self._unexpected(token)
            pattern = _like_pattern(_unquote(token.text))
            return lambda row: row.get(name) is not None and pattern.fullmatch(str(row[name])) is not None
        operator = self._next()
        if operator.kind != "op":
            raise self._unexpected(operator)
        value = self._value(name, kind)
        return _comparison(name, kind, operator.text, value)

    def _value(self, name: str, kind: str) -> Any:
        token = self._next()
        if token.kind == "ident" and token.text.lower() == "null":
            return None
        if token.kind == "ident" and token.text.lower() in ("true", "false"):
            if kind != "boolean":
                raise self._type_error(name, kind, token)
            return token.text.lower() == "true"
        if token.kind == "datetime":
            if kind != "datetime":
                raise self._type_error(name, kind, token)
            return epoch_ms(parse_moment(token.text.replace(" ", "")))  # type: ignore[arg-type]
        if token.kind == "date":
            if kind != "date":
                raise self._type_error(name, kind, token)
            return token.text
        if token.kind == "number":
            if kind not in NUMERIC_TYPES:
                raise self._type_error(name, kind, token)
            return Decimal(token.text)
        if token.kind == "string":
            if kind in ("datetime", "date", "boolean") or kind in NUMERIC_TYPES:
                raise self._type_error(name, kind, token)
            return _unquote(token.text).lower()
        if token.kind == "ident":
            raise self._error(
                "MALFORMED_QUERY",
                f"the fake does not support date literals or bind variables like {token.text}",
                token.column,
            )
        raise self._unexpected(token)

    def _type_error(self, name: str, kind: str, token: _Token) -> SoqlError:
        soap = SOAP_TYPE_NAMES.get(kind, kind if kind in ("date", "boolean") else "string")
        if soap == "string":
            detail = (
                f"value of filter criterion for field '{name}' must be of type string and should be enclosed in quotes"
            )
        else:
            detail = (
                f"value of filter criterion for field '{name}' must be of type {soap} "
                "and should not be enclosed in quotes"
            )
        return self._error("INVALID_QUERY_FILTER_OPERATOR", detail, token.column)


def _comparison(name: str, kind: str, operator: str, value: Any):
    if value is None:
        if operator == "=":
            return lambda row: row.get(name) is None
        if operator in ("!=", "<>"):
            return lambda row: row.get(name) is not None
        return lambda row: False
    compare = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<>": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[operator]

    def test(row: dict[str, Any]) -> bool:
        current = _comparable(kind, row.get(name))
        if current is None:
            return operator in ("!=", "<>")
        return compare(current, value)

    return test


def _comparable(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        moment = parse_moment(value)
        return epoch_ms(moment) if moment else None
    if kind == "date":
        return str(value)[:10]
    if kind in NUMERIC_TYPES:
        return Decimal(str(value))
    if kind == "boolean":
        return bool(value)
    return str(value).lower()


def _like_pattern(pattern: str) -> re.Pattern[str]:
    parts = ["." if char == "_" else ".*" if char == "%" else re.escape(char) for char in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _unquote(literal: str) -> str:
    inner = literal[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
    return re.sub(r"\\(.)", lambda match: escapes.get(match.group(1), match.group(0)), inner)
