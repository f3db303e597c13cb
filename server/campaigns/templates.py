"""Organiser-written mail templates: merge fields filled in a sandbox, our own HTML around them.

Rules:
- An organiser writes a subject and a body per language. Both are TEXT with Jinja merge fields
  (ARCHITECTURE §6), rendered in a `SandboxedEnvironment` of their own (not the page templates'
  environment) with `StrictUndefined`. Missing values (no seat, no venue) are empty strings.
- The body is never HTML. Its rendered text is the plain-text part; the HTML part is our layout
  (`layout.html`, autoescaped) showing that text escaped: a paragraph per blank-line-separated
  block, line breaks kept, http(s) URLs made links through `link_wrapper`. Neither an organiser
  nor a guest's name can inject markup. `{{ ticket_buttons }}` (tickets campaigns, body only)
  places the e-ticket links; without it they follow the body.
- Only what a mail needs is reachable: the merge fields, `range`, `loop`, names the template sets
  itself, and the filters in `_FILTERS`. No other attribute of any object can be read and no
  method called, so there is no `str.format`, no `__class__` walk; no macro, include, import,
  block, namespace or dictionary literal; lists cannot hold lists.
- Every render has a budget (`_Budget`), charged BEFORE anything big is built: ranges of at most
  1,000 items, 20,000 loop steps, values of at most 256 Ki characters or 10,000 items, 1,000,000
  units of work (every character produced, compared or repeated by a loop), 256 KiB of output,
  one second. `*`, `**`, `+`, `~`, slices, comparisons, filters and tests are metered, so any
  template renders in about a second and a few megabytes at most.
- `check_templates` finds every problem it can at once: sizes, characters, syntax, and then by
  walking the syntax tree (so untaken branches too) unknown fields, forbidden constructs and
  constant expressions over a bound; last it renders each template against `sample_fields`.
  A problem names its field ("body.fr") and line, with a stable `code`.
- The subject comes out on one line: any control or line-separator character in the RESULT
  becomes a space, and the result is trimmed to 300 characters.
"""

from __future__ import annotations

import difflib
import operator
import re
import time
import traceback
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any, Literal, cast

import msgspec
from jinja2 import Environment, StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2 import filters as jinja_filters
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import SandboxedEnvironment
from jinja2.tests import TESTS as JINJA_TESTS
from jinja2.utils import pass_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape

from ticket_renderer import SUPPORTED_LANGUAGES, format_datetime, t

__all__ = [
    "Kind",
    "MergeFields",
    "MessageTemplate",
    "ProblemCode",
    "RenderedMessage",
    "TemplateError",
    "TemplateProblem",
    "TicketFields",
    "check_templates",
    "render_message",
    "sample_fields",
]

Kind = Literal["tickets", "message"]

SUBJECT_MAX_CHARS = 300
BODY_MAX_BYTES = 64 * 1024
OUTPUT_MAX_BYTES = 256 * 1024
_VALUE_MAX_CHARS = 256 * 1024
_VALUE_MAX_ITEMS = 10_000
_RANGE_MAX = 1_000
_STEPS_MAX = 20_000
_WORK_MAX = 1_000_000
_SECONDS_MAX = 1.0
_INT_BITS_MAX = 256
_FIELD_MAX_CHARS = 4096  # a merge value longer than this is cut: names and links are far shorter
_PROBLEMS_PER_FIELD = 50

# What `{{ ticket_buttons }}` renders to in the body text: a private-use character, removed from
# the organiser's source and from every merge value, so only that field can produce it.
_MARKER = "\ue000"


class TicketFields(msgspec.Struct, frozen=True):
    link: str
    code: str
    seat: str | None
    holder_name: str | None
    ticket_type: str


class MergeFields(msgspec.Struct, frozen=True, kw_only=True):
    lang: Literal["fr", "en", "de"]
    guest_name: str | None
    guest_email: str
    event_name: str
    event_starts_at: datetime  # aware; shown in event_timezone, in `lang`'s words
    event_timezone: str
    event_venue: str | None
    booking_reference: str | None
    tickets: list[TicketFields]
    ticket: TicketFields | None = None  # per-ticket messages
    unsubscribe_url: str | None = None  # message campaigns
    tracking_pixel_url: str | None = None  # added to the HTML when set
    brand_colour: str | None = None  # the event's `#RRGGBB` (validated): header and buttons
    logo_url: str | None = None  # absolute https?:// URLs of the event's images, shown on top
    banner_url: str | None = None


class MessageTemplate(msgspec.Struct, frozen=True):
    subject: str
    body: str


class ProblemCode(StrEnum):
    TOO_LONG = "too_long"  # the template itself is over its size
    BAD_CHARACTER = "bad_character"  # a lone surrogate
    EMPTY = "empty"
    SYNTAX = "syntax"
    UNKNOWN_FIELD = "unknown_field"
    NOT_AVAILABLE = "not_available"  # a real field, but not in this kind, mode or part
    FORBIDDEN = "forbidden"  # internals, methods, macros, filters not offered
    TOO_MUCH = "too_much"  # a bound of the render budget
    RUNTIME = "runtime"  # division by zero, wrong types, ...
    LANGUAGE = "language"  # a language other than fr / en / de


class TemplateProblem(msgspec.Struct, frozen=True):
    field: str  # "subject.fr", "body.en"
    line: int | None
    message: str
    code: ProblemCode = ProblemCode.RUNTIME


class RenderedMessage(msgspec.Struct, frozen=True):
    subject: str
    html: str
    text: str


class TemplateError(Exception):
    """The templates cannot be rendered; `problems` says where and why."""

    def __init__(self, problems: list[TemplateProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}:{p.line}: {p.message}" for p in problems[:5]))


# --- The render budget ----------------------------------------------------------------------


class _Refused(Exception):
    """A bound of the sandbox was hit; the message is for the organiser."""

    def __init__(self, message: str, code: ProblemCode = ProblemCode.TOO_MUCH) -> None:
        super().__init__(message)
        self.code = code
        self.node: nodes.Node | None = None  # for static checks: the expression that hit it


@dataclass
class _Budget:
    deadline: float
    steps: int = 0
    work: int = 0

    def charge(self, cost: int) -> None:
        self.work += cost
        if self.work > _WORK_MAX:
            raise _Refused("the template does too much work (it builds or repeats too much text)")
        if time.monotonic() > self.deadline:
            raise _Refused("the template takes too long to render")

    def step(self, cost: int) -> None:
        self.steps += 1
        if self.steps > _STEPS_MAX:
            raise _Refused(f"the loops repeat more than {_STEPS_MAX:,} times in all")
        self.charge(cost)


# Set around each render; hooks called from the compiled template read it. Outside a render
# (static checks) there is no budget and hooks only apply the size bounds.
_BUDGET: ContextVar[_Budget | None] = ContextVar("tessera_template_budget", default=None)


def _charge(cost: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(cost)


def _weight(value: object) -> int:
    """The work of comparing or copying `value`: characters, plus one per item."""
    if isinstance(value, str):
        return len(value) + 1
    if isinstance(value, list | tuple):
        # Lists never hold lists (literals refuse them), so one level is the whole cost.
        return 1 + len(value) + sum(len(item) for item in value if isinstance(item, str))
    return 1


def _check_size(size: int, of: object) -> None:
    if isinstance(of, str) and size > _VALUE_MAX_CHARS:
        raise _Refused(f"a text of {size:,} characters is too long (limit {_VALUE_MAX_CHARS:,})")
    if isinstance(of, list | tuple) and size > _VALUE_MAX_ITEMS:
        raise _Refused(f"a list of {size:,} items is too long (limit {_VALUE_MAX_ITEMS:,})")


def _produced(value: Any) -> Any:
    """`value`, charged and checked as the result of an operation."""
    if isinstance(value, str | list | tuple):
        _check_size(len(value), value)
        _charge(_weight(value))
    return value


# --- Operators ------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bits(bits: int) -> None:
    if bits > _INT_BITS_MAX:
        raise _Refused("a number in the template is too large")


def _mul(left: Any, right: Any) -> Any:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(times, int):
            _check_size(len(sequence) * max(times, 0), sequence)
            return sequence * times
    if _is_int(left) and _is_int(right):
        _check_bits(left.bit_length() + right.bit_length())
    return left * right


def _pow(left: Any, right: Any) -> Any:
    if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        _check_bits(left.bit_length() * right)
    return left**right


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str | list | tuple) and type(left) is type(right):
        _check_size(len(left) + len(right), left)
    return left + right


def _mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        # printf formatting can pad to any width (`'%*d' % (10**9, 1)`).
        raise _Refused("formatting text with % is not available", ProblemCode.FORBIDDEN)
    return left % right


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": operator.sub,
    "*": _mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": _mod,
    "**": _pow,
}


def _text(value: Any) -> str:
    """`value` as output text; lists, loops and other objects have no text form."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool | int | float | _Record):
        return str(value)
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise _Refused(
        "a list or other object cannot be shown as text; use a loop or |join",
        ProblemCode.FORBIDDEN,
    )


def _finalize(value: Any) -> str:
    return str(_produced(_text(value)))


def _bounded_range(*args: int) -> range:
    try:
        numbers = range(*args)
        size = len(numbers)
    except OverflowError:
        size = _RANGE_MAX + 1
    if size > _RANGE_MAX:
        raise _Refused(f"range() gives at most {_RANGE_MAX:,} numbers")
    return numbers


def _metered(iterable: Iterable[Any], cost: int) -> Iterator[Any]:
    """`iterable`, one loop step of `cost` per item (the loop body's own text)."""
    budget = _BUDGET.get()
    for item in iterable:
        if budget is not None:
            budget.step(cost)
        yield item


# --- Names and objects the template sees ----------------------------------------------------

_FIELDS: dict[str, tuple[str, ...]] = {
    "guest": ("name", "first_name", "email"),
    "event": ("name", "starts_at", "venue"),
    "booking": ("reference",),
    "ticket": ("link", "code", "seat", "holder_name", "ticket_type"),
}
_SHOWN_AS = {"guest": "name", "event": "name", "booking": "reference", "ticket": "code"}
_LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length"}
    | {"depth", "depth0", "previtem", "nextitem", "cycle", "changed"}
)
_ALL_ATTRIBUTES = frozenset(name for names in _FIELDS.values() for name in names) | (
    _LOOP_ATTRIBUTES
)


class _Record:
    """A guest, event, booking or ticket: its merge fields and nothing else."""

    __slots__ = ("fields", "kind")

    def __init__(self, kind: str, fields: dict[str, str]) -> None:
        self.kind = kind
        self.fields = fields

    def __str__(self) -> str:
        return self.fields[_SHOWN_AS[self.kind]]


class _Call:
    """A callable the sandbox lets a template call."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            _charge(_weight(value))
        return self.function(*args, **kwargs)


class _MailSandbox(SandboxedEnvironment):
    """Attributes are merge fields or loop helpers, calls are `range()` and `loop.cycle()`."""

    intercepted_binops = frozenset(_BINOPS)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False  # `getattr` below decides; nothing falls through to Jinja's defaults

    def is_safe_callable(self, obj: Any) -> bool:
        return isinstance(obj, _Call)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _charge(_weight(left) + _weight(right))
        return _produced(_BINOPS[operator](left, right))

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if isinstance(obj, _Record):
            if attribute in obj.fields:
                return obj.fields[attribute]
            return self.undefined(f"{obj.kind} has no field {attribute!r}", obj, attribute)
        if isinstance(obj, LoopContext) and attribute in _LOOP_ATTRIBUTES:
            value = getattr(obj, attribute)
            return _Call(value) if attribute in ("cycle", "changed") else value
        return self.undefined(
            f"{attribute!r} is not available here (only merge fields can be read)",
            obj,
            attribute,
            exc=SecurityError,
        )

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        if isinstance(obj, str | list | tuple) and _is_int(argument):
            try:
                return obj[argument]
            except IndexError:
                pass
        return self.undefined(obj=obj, name=argument)


# --- Filters and tests ----------------------------------------------------------------------


def _items(value: Iterable[Any]) -> list[Any]:
    """`value` as a list of at most `_VALUE_MAX_ITEMS` items, none of them a list."""
    items: list[Any] = []
    for item in _metered(value, 1):
        if isinstance(item, list | tuple):
            raise _Refused("lists inside lists are not supported", ProblemCode.FORBIDDEN)
        items.append(item)
        _check_size(len(items), items)
    return items


def _text_filter(function: Callable[[str], Any], growth: int = 1) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        text = _text(value)
        _check_size(len(text) * growth, text)
        _charge(len(text))
        return _produced(function(text))

    return apply


def _replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = _text(value), _text(old), _text(new)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    _check_size(len(text) + hits * (len(new) - len(old)), text)
    return str(_produced(text.replace(old, new, -1 if count is None else count)))


def _join(value: Iterable[Any], separator: Any = "", attribute: str | int | None = None) -> str:
    items = _items(value)
    if attribute is not None:
        getter = jinja_filters.make_attrgetter(_SANDBOX, attribute)
        items = [getter(item) for item in items]
    texts, glue, size = [], _text(separator), 0
    for item in items:
        texts.append(_text(item))
        size += len(texts[-1]) + len(glue)
        _check_size(size, glue)
    return str(_produced(glue.join(texts)))


def _truncate(
    value: Any, length: int = 255, killwords: bool = False, end: str = "...", leeway: Any = None
) -> str:
    text = _text(value)
    _charge(len(text))
    return str(_produced(jinja_filters.do_truncate(_SANDBOX, text, length, killwords, end, leeway)))


def _length(value: Any) -> int:
    if isinstance(value, str | list | tuple | range):
        return len(value)
    return len(_items(value))


def _first(value: Any) -> Any:
    for item in _metered(value, 1):
        return item
    return _SANDBOX.undefined("the list is empty")


def _last(value: Any) -> Any:
    items = value if isinstance(value, str | list | tuple) else _items(value)
    return items[-1] if items else _SANDBOX.undefined("the list is empty")


def _reverse(value: Any) -> Any:
    if isinstance(value, str):
        return _produced(value[::-1])
    return _produced(_items(value)[::-1])


def _sum(value: Iterable[Any], attribute: str | int | None = None, start: Any = 0) -> Any:
    items = _items(value)
    if attribute is not None:
        getter = jinja_filters.make_attrgetter(_SANDBOX, attribute)
        items = [getter(item) for item in items]
    if not all(isinstance(x, int | float) for x in [*items, start]):
        raise _Refused("sum adds numbers only", ProblemCode.FORBIDDEN)
    return sum(items, start)


def _on_items(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter of Jinja's that takes the environment and an iterable, fed a metered list."""

    def apply(value: Any, *args: Any, **kwargs: Any) -> Any:
        items = _items(value)
        _charge(_weight(items))
        result = function(_SANDBOX, items, *args, **kwargs)
        return _produced(list(result) if isinstance(result, Iterator) else result)

    return apply


def _lazy(function: Callable[..., Any]) -> Callable[..., Any]:
    """map / select / reject (Jinja's, they take the context), over a metered iterable."""

    @pass_context
    def apply(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        return function(context, _metered(value, 1), *args, **kwargs)

    return apply


def _literal(*items: Any) -> list[Any]:
    if any(isinstance(item, list | tuple) for item in items):
        raise _Refused("lists inside lists are not supported", ProblemCode.FORBIDDEN)
    return list(items)


def _literal_tuple(*items: Any) -> tuple[Any, ...]:
    return tuple(_literal(*items))


def _slice(value: Any, start: Any, stop: Any, step: Any) -> Any:
    if not isinstance(value, str | list | tuple):
        raise _Refused("only text and lists can be sliced", ProblemCode.RUNTIME)
    span = slice(start, stop, step)
    size = len(range(*span.indices(len(value))))
    _charge(size)
    return value[span]


def _weighed(value: Any) -> Any:
    _charge(_weight(value))
    return value


def _metered_test(test: Callable[..., Any]) -> Callable[..., bool]:
    def apply(value: Any, *args: Any) -> bool:
        _charge(_weight(value) + sum(_weight(arg) for arg in args))
        return bool(test(value, *args))

    return apply


_LOOP_FILTER = "tessera loop"  # the names of the rewriting's filters cannot be typed in a template
_CONCAT_FILTER = "tessera concat"
_LIST_FILTER = "tessera list"
_TUPLE_FILTER = "tessera tuple"
_SLICE_FILTER = "tessera slice"
_WEIGH_FILTER = "tessera weigh"
_INTERNAL_FILTERS = {_LOOP_FILTER, _CONCAT_FILTER, _LIST_FILTER, _TUPLE_FILTER}
_INTERNAL_FILTERS |= {_SLICE_FILTER, _WEIGH_FILTER}

_FILTERS: dict[str, Callable[..., Any]] = {
    "upper": _text_filter(str.upper, 3),
    "lower": _text_filter(str.lower, 3),
    "capitalize": _text_filter(str.capitalize, 3),
    "title": _text_filter(jinja_filters.do_title, 3),
    "trim": _text_filter(str.strip),
    "string": _text_filter(str),
    "wordcount": _text_filter(jinja_filters.do_wordcount),
    "urlencode": _text_filter(jinja_filters.do_urlencode, 12),
    "replace": _replace,
    "truncate": _truncate,
    "join": _join,
    "default": jinja_filters.do_default,
    "d": jinja_filters.do_default,
    "length": _length,
    "count": _length,
    "first": _first,
    "last": _last,
    "reverse": _reverse,
    "int": jinja_filters.do_int,
    "float": jinja_filters.do_float,
    "abs": abs,
    "round": jinja_filters.do_round,
    "sum": _sum,
    "sort": _on_items(jinja_filters.do_sort),
    "unique": _on_items(jinja_filters.sync_do_unique),
    "min": _on_items(jinja_filters.do_min),
    "max": _on_items(jinja_filters.do_max),
    "map": _lazy(jinja_filters.sync_do_map),
    "select": _lazy(jinja_filters.sync_do_select),
    "reject": _lazy(jinja_filters.sync_do_reject),
    "selectattr": _lazy(jinja_filters.sync_do_selectattr),
    "rejectattr": _lazy(jinja_filters.sync_do_rejectattr),
    _LOOP_FILTER: _metered,
    _CONCAT_FILTER: lambda *parts: _produced("".join(_text(p) for p in parts)),
    _LIST_FILTER: lambda _, *items: _literal(*items),
    _TUPLE_FILTER: lambda _, *items: _literal_tuple(*items),
    _SLICE_FILTER: _slice,
    _WEIGH_FILTER: _weighed,
}
_UNSUPPORTED_TESTS = {"filter", "test", "callable", "escaped", "mapping"}
_TESTS = {
    name: _metered_test(cast("Callable[..., Any]", test))
    for name, test in JINJA_TESTS.items()
    if name not in _UNSUPPORTED_TESTS
}


def _make_sandbox() -> _MailSandbox:
    env = _MailSandbox(
        undefined=StrictUndefined,
        autoescape=False,  # the body is text; the HTML layout escapes it
        finalize=_finalize,
        optimized=False,  # no constant folding: every operation runs, metered, at render time
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.clear()
    env.globals["range"] = _Call(_bounded_range)
    env.filters = dict(_FILTERS)
    env.tests = dict(_TESTS)
    return env


# `sort(attribute=...)`, `join(attribute=...)`, ... read attributes through this sandbox too.
_SANDBOX = _make_sandbox()


# --- Static checks --------------------------------------------------------------------------

_Found = tuple[int | None, str, ProblemCode]

_STATEMENTS = {
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Block: "{% block %}",
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Dict: "a dictionary {...}",
    nodes.NSRef: "namespace attributes",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
    nodes.EvalContextModifier: "{% autoescape %}",
    nodes.Scope: "scopes",
    nodes.OverlayScope: "scopes",
    nodes.ExprStmt: "{% do %}",
    nodes.Continue: "{% continue %}",
    nodes.Break: "{% break %}",
}


class _NotStatic(Exception):
    pass


def _static(node: nodes.Node) -> Any:
    """The value of a constant expression, computed with the render's bounds."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Neg | nodes.Pos) and _is_int(value := _static(node.node)):
        return -value if isinstance(node, nodes.Neg) else value
    try:
        if isinstance(node, nodes.BinExpr) and node.operator in _BINOPS:
            return _BINOPS[node.operator](_static(node.left), _static(node.right))
        if isinstance(node, nodes.Concat):
            return _produced("".join(_text(_static(part)) for part in node.nodes))
    except _Refused as refusal:
        refusal.node = refusal.node or node
        raise
    raise _NotStatic


def _path(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_path(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_path(node.node)}[{node.arg.value!r}]"
    if isinstance(node, nodes.Const):
        return repr(node.value)[:20]
    return "(...)"


@dataclass
class _Checker:
    """Walks a parsed template and records every problem it can see without rendering."""

    part: str  # "subject" or "body"
    kind: str
    per_ticket: bool
    found: list[_Found] = field(default_factory=list)
    types: dict[str, str | None] = field(default_factory=dict)  # what each `set` name holds
    available: dict[str, str] = field(default_factory=dict)  # merge fields and their types
    refused: set[int] = field(default_factory=set)  # expressions already reported as too big

    def run(self, tree: nodes.Template) -> list[_Found]:
        self.available = {name: name for name in ("guest", "event", "booking", "tickets")}
        self.available["range"] = "range"
        if self.per_ticket:
            self.available["ticket"] = "ticket"
        if self.kind == "tickets" and self.part == "body":
            self.available["ticket_buttons"] = "text"
        for _ in range(2):  # the second pass lets loops see the types of names set later
            self.types = self._assigned_types(tree)
        self._visit(tree, in_loop=False)
        return self.found

    def _add(self, node: nodes.Node, message: str, code: ProblemCode) -> None:
        self.found.append((node.lineno, message, code))

    def _type_of(self, node: nodes.Node) -> str | None:
        """ "guest", "ticket", "tickets", "loop", ... or None when it cannot be known."""
        if isinstance(node, nodes.Name):
            if node.name in self.types:
                return self.types[node.name]
            return self.available.get(node.name, "loop" if node.name == "loop" else None)
        if (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and _is_int(node.arg.value)
            and self._type_of(node.node) == "tickets"
        ):
            return "ticket"
        if (
            isinstance(node, nodes.Filter)
            and node.node is not None
            and self._type_of(node.node) == "tickets"
        ):
            if node.name in ("first", "last"):
                return "ticket"
            if node.name in ("sort", "reverse", "unique", "select", "reject", "selectattr"):
                return "tickets"
            if node.name == "rejectattr":
                return "tickets"
        return None

    def _assigned_types(self, tree: nodes.Template) -> dict[str, str | None]:
        types: dict[str, str | None] = {}

        def assign(target: nodes.Node, kind: str | None) -> None:
            if isinstance(target, nodes.Name):
                pairs = [(target.name, kind)]
            else:  # unpacking: the parts' types are unknown
                pairs = [(name.name, None) for name in target.find_all(nodes.Name)]
            for name, value in pairs:
                types[name] = value if types.get(name, value) == value else None

        for node in tree.find_all((nodes.For, nodes.Assign, nodes.AssignBlock, nodes.With)):
            if isinstance(node, nodes.For):
                assign(node.target, "ticket" if self._type_of(node.iter) == "tickets" else None)
            elif isinstance(node, nodes.Assign):
                assign(node.target, self._type_of(node.node))
            elif isinstance(node, nodes.AssignBlock):
                assign(node.target, "text")
            elif isinstance(node, nodes.With):
                for target, value in zip(node.targets, node.values, strict=False):
                    assign(target, self._type_of(value))
        return types

    def _visit(self, node: nodes.Node, in_loop: bool) -> None:
        if type(node) in _STATEMENTS:
            self._add(node, f"{_STATEMENTS[type(node)]} is not supported", ProblemCode.FORBIDDEN)
            return
        if isinstance(node, nodes.Name):
            self._check_name(node, in_loop)
        elif isinstance(node, nodes.Getattr):
            self._check_attribute(node, node.node, node.attr)
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                self._check_attribute(node, node.node, node.arg.value)
        elif isinstance(node, nodes.Call) and not self._check_call(node):
            # One problem for a forbidden call, not a second one for the method's name.
            callee = node.node
            base = callee.node if isinstance(callee, nodes.Getattr | nodes.Getitem) else None
            parts: list[nodes.Node | None] = [base, *node.args, *node.kwargs]
            for part in [*parts, node.dyn_args, node.dyn_kwargs]:
                if part is not None:
                    self._visit(part, in_loop)
            return
        elif isinstance(node, nodes.Filter):
            if node.name not in _FILTERS or node.name in _INTERNAL_FILTERS:
                offered = sorted(set(_FILTERS) - _INTERNAL_FILTERS)
                message = f"filter `{node.name}` is not available; {_choices(node.name, offered)}"
                self._add(node, message, ProblemCode.FORBIDDEN)
        elif isinstance(node, nodes.Test):
            if node.name not in _TESTS:
                self._add(node, f"test `is {node.name}` is not available", ProblemCode.FORBIDDEN)
        elif isinstance(node, nodes.BinExpr | nodes.Concat):
            self._check_constant(node)
        elif isinstance(node, nodes.For):
            if node.recursive:
                self._add(node, "recursive loops are not supported", ProblemCode.FORBIDDEN)
            for child in (node.target, node.iter, *([node.test] if node.test else [])):
                self._visit(child, in_loop)
            for child in node.body:
                self._visit(child, True)
            for child in node.else_:
                self._visit(child, in_loop)
            return
        for child in node.iter_child_nodes():
            self._visit(child, in_loop)

    def _check_name(self, node: nodes.Name, in_loop: bool) -> None:
        name = node.name
        if node.ctx != "load" or name in self.types or name in self.available:
            return
        if name.startswith("_"):
            self._add(node, f"`{name}`: names starting with _ are internal", ProblemCode.FORBIDDEN)
        elif name == "loop":
            if not in_loop:
                self._add(node, "`loop` exists only inside {% for %}", ProblemCode.NOT_AVAILABLE)
        elif name == "ticket":
            message = "`ticket` exists only in messages sent per ticket; use `tickets`"
            self._add(node, message, ProblemCode.NOT_AVAILABLE)
        elif name == "ticket_buttons":
            where = "in the body" if self.part != "body" else "in ticket campaigns"
            self._add(node, f"`ticket_buttons` exists only {where}", ProblemCode.NOT_AVAILABLE)
        else:
            known = sorted(self.available) + sorted(self.types)
            self._add(node, _unknown(name, known), ProblemCode.UNKNOWN_FIELD)

    def _check_attribute(self, node: nodes.Node, base: nodes.Node, attr: str) -> None:
        path = f"{_path(base)}.{attr}"
        if attr.startswith("_"):
            self._add(node, f"`{path}`: names starting with _ are internal", ProblemCode.FORBIDDEN)
            return
        if isinstance(base, nodes.Const | nodes.List | nodes.Tuple):
            message = f"`{path}`: literal values have no fields; use filters (`|upper`)"
            self._add(node, message, ProblemCode.FORBIDDEN)
            return
        kind = self._type_of(base)
        if kind in _FIELDS:
            if attr not in _FIELDS[kind]:
                fields = [f"{_path(base)}.{name}" for name in _FIELDS[kind]]
                self._add(node, _unknown(path, fields), ProblemCode.UNKNOWN_FIELD)
        elif kind == "loop":
            if attr not in _LOOP_ATTRIBUTES:
                self._add(node, _unknown(path, []), ProblemCode.UNKNOWN_FIELD)
        elif kind == "tickets":
            message = f"`{path}`: `tickets` is a list; loop over it or take `tickets[0].{attr}`"
            self._add(node, message, ProblemCode.UNKNOWN_FIELD)
        elif kind is not None or attr not in _ALL_ATTRIBUTES:
            self._add(node, _unknown(path, []), ProblemCode.UNKNOWN_FIELD)

    def _check_call(self, node: nodes.Call) -> bool:
        """Whether the call is one a template may make (range, loop.cycle, loop.changed)."""
        callee = node.node
        is_range = isinstance(callee, nodes.Name) and callee.name == "range"
        is_loop_helper = (
            isinstance(callee, nodes.Getattr)
            and callee.attr in ("cycle", "changed")
            and self._type_of(callee.node) == "loop"
        )
        if not (is_range or is_loop_helper) or node.dyn_args or node.dyn_kwargs:
            message = (
                f"`{_path(callee)}(...)`: only range(), loop.cycle() and loop.changed() can be "
                "called; use filters (`|upper`) for the rest"
            )
            self._add(node, message, ProblemCode.FORBIDDEN)
            return False
        if is_range and not node.kwargs:
            try:
                _bounded_range(*(_static(arg) for arg in node.args))
            except _Refused as refusal:
                self._add(node, str(refusal), refusal.code)
            except (_NotStatic, TypeError, ValueError, ArithmeticError):
                pass  # known only at render time
        return True

    def _check_constant(self, node: nodes.Expr) -> None:
        """A constant expression (`'x' * 10**9`) over a bound, even in an untaken branch."""
        try:
            _static(node)
        except _Refused as refusal:
            culprit = refusal.node or node
            if id(culprit) not in self.refused:
                self.refused.add(id(culprit))
                self._add(culprit, str(refusal), refusal.code)
        except (_NotStatic, TypeError, ValueError, ArithmeticError):
            pass  # not constant, or an error the render will report with its line


def _choices(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean `{close[0]}`?" if close else "available: " + ", ".join(known)


def _unknown(path: str, known: list[str]) -> str:
    close = difflib.get_close_matches(path, known, n=1)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    return f"unknown field `{path}`{hint}"


# --- Rewriting: every loop, concatenation, literal, slice and comparison metered -------------


def _text_size(nodes_: Iterable[nodes.Node]) -> int:
    return sum(len(data.data) for node in nodes_ for data in node.find_all(nodes.TemplateData))


class _Meter(NodeTransformer):
    """Rewrites the checked tree so that the costly operations call the metered filters."""

    def _filter(self, name: str, node: nodes.Node, args: list[nodes.Expr]) -> nodes.Filter:
        return nodes.Filter(node, name, args, [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        cost = 1 + _text_size(node.body) + _text_size(node.else_)
        node.iter = self._filter(_LOOP_FILTER, node.iter, [nodes.Const(cost, lineno=node.lineno)])
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        first, *rest = node.nodes
        return self._filter(_CONCAT_FILTER, first, rest)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return self._filter(_LIST_FILTER, nodes.Const(None, lineno=node.lineno), node.items)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        if node.ctx != "load":
            return node
        return self._filter(_TUPLE_FILTER, nodes.Const(None, lineno=node.lineno), node.items)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if not isinstance(node.arg, nodes.Slice):
            return node
        bounds = [
            b or nodes.Const(None, lineno=node.lineno)
            for b in (node.arg.start, node.arg.stop, node.arg.step)
        ]
        return self._filter(_SLICE_FILTER, node.node, bounds)

    def visit_CondExpr(self, node: nodes.CondExpr) -> nodes.Node:
        # `{{ 's' if n > 1 }}` reads as "or nothing", not as an undefined value to refuse.
        self.generic_visit(node)
        if node.expr2 is None:
            node.expr2 = nodes.Const("", lineno=node.lineno)
        return node

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = self._filter(_WEIGH_FILTER, node.expr, [])
        for operand in node.ops:
            operand.expr = self._filter(_WEIGH_FILTER, operand.expr, [])
        return node


# --- Compiling, with its cache --------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    template: Any  # a jinja2.Template, or None when there are problems
    found: tuple[_Found, ...]


def _first_surrogate(source: str) -> int | None:
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def _compile(source: object, part: str, kind: str, per_ticket: bool) -> _Compiled:
    """The template ready to render, or the problems found before rendering."""
    if not isinstance(source, str):
        return _Compiled(None, ((None, "must be text", ProblemCode.SYNTAX),))
    return _compile_text(source, part, kind, per_ticket)


@lru_cache(maxsize=256)  # the outbox renders one campaign's few templates thousands of times
def _compile_text(source: str, part: str, kind: str, per_ticket: bool) -> _Compiled:
    if part == "subject" and len(source) > SUBJECT_MAX_CHARS:
        message = f"the subject is {len(source):,} characters long (limit {SUBJECT_MAX_CHARS})"
        return _Compiled(None, ((None, message, ProblemCode.TOO_LONG),))
    size = len(source) if len(source) > BODY_MAX_BYTES else len(source.encode("utf-8", "replace"))
    if size > BODY_MAX_BYTES:
        message = f"the text is {size:,} bytes or more (limit {BODY_MAX_BYTES:,})"
        return _Compiled(None, ((None, message, ProblemCode.TOO_LONG),))
    if part == "subject" and not source.strip():
        return _Compiled(None, ((None, "the subject is empty", ProblemCode.EMPTY),))
    surrogate = _first_surrogate(source)
    if surrogate is not None:
        line = source.count("\n", 0, surrogate) + 1
        message = f"invalid character U+{ord(source[surrogate]):04X} (a lone surrogate)"
        return _Compiled(None, ((line, message, ProblemCode.BAD_CHARACTER),))
    source = source.replace(_MARKER, "")
    try:
        tree = _SANDBOX.parse(source)
    except TemplateSyntaxError as error:
        return _Compiled(
            None, ((error.lineno, error.message or "syntax error", ProblemCode.SYNTAX),)
        )
    except RecursionError:
        return _Compiled(None, ((None, "the template nests too deeply", ProblemCode.TOO_MUCH),))
    try:
        found = _Checker(part, kind, per_ticket).run(tree)
    except RecursionError:
        found = [(None, "the template nests too deeply", ProblemCode.TOO_MUCH)]
    if found:
        return _Compiled(None, tuple(found))
    try:
        tree = _Meter().visit(tree)
        tree.set_environment(_SANDBOX)
        template = _SANDBOX.from_string(tree)
    except TemplateSyntaxError as error:
        return _Compiled(
            None, ((error.lineno, error.message or "syntax error", ProblemCode.SYNTAX),)
        )
    except (RecursionError, SyntaxError, MemoryError):  # Python's own nesting limits
        return _Compiled(None, ((None, "the template nests too deeply", ProblemCode.TOO_MUCH),))
    return _Compiled(template, ())


# --- Rendering ------------------------------------------------------------------------------


def _line_of(error: BaseException) -> int | None:
    """The template line where `error` was raised (Jinja rewrites template frames to it)."""
    lines = [
        f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == "<template>"
    ]
    return lines[-1] if lines else None


def _runtime_problem(error: Exception) -> _Found:
    line = _line_of(error)
    if isinstance(error, _Refused):
        return (line, str(error), error.code)
    if isinstance(error, SecurityError):
        return (line, str(error), ProblemCode.FORBIDDEN)
    if isinstance(error, UndefinedError):
        return (line, str(error), ProblemCode.UNKNOWN_FIELD)
    if isinstance(error, RecursionError | MemoryError):
        return (line, "the template nests or repeats too much", ProblemCode.TOO_MUCH)
    return (line, f"cannot render: {error}"[:300], ProblemCode.RUNTIME)


_PARTS = ("subject", "body")


def _new_budget() -> _Budget:
    """One budget for one mail: its subject and body share it."""
    return _Budget(deadline=time.monotonic() + _SECONDS_MAX)


def _render(template: Any, variables: dict[str, Any], budget: _Budget) -> str:
    """The template's text; raises _Rendering with the problem."""
    token = _BUDGET.set(budget)
    chunks: list[str] = []
    size = 0
    try:
        for chunk in template.generate(variables):
            chunks.append(chunk)
            size += len(chunk)
            if size > OUTPUT_MAX_BYTES:
                raise _Refused(f"the message is over {OUTPUT_MAX_BYTES // 1024} KiB")
    except Exception as error:  # every failure of an organiser's template is a problem
        raise _Rendering(_runtime_problem(error)) from None
    finally:
        _BUDGET.reset(token)
    text = "".join(chunks).encode("utf-8", "replace").decode("utf-8")  # `'\ud800'` literals
    if len(text.encode("utf-8")) > OUTPUT_MAX_BYTES:
        raise _Rendering(
            (None, f"the message is over {OUTPUT_MAX_BYTES // 1024} KiB", ProblemCode.TOO_MUCH)
        )
    return text


class _Rendering(Exception):
    def __init__(self, found: _Found) -> None:
        super().__init__(found[1])
        self.found = found


def _language(lang: str) -> str:
    return lang if lang in SUPPORTED_LANGUAGES else "en"


_AT = {"fr": " à ", "en": " at ", "de": " um "}


def _starts_at(dt: datetime, zone: str, lang: str) -> str:
    """``samedi 14 juin 2031 à 20:00``: ticket_renderer's date, joined to the time by a word."""
    date, _, clock = format_datetime(dt, zone, lang).rpartition(", ")
    return f"{date}{_AT[lang]}{clock}"


def _clean(value: str | None) -> str:
    if value is None:
        return ""
    value = value[:_FIELD_MAX_CHARS].replace(_MARKER, "")
    return value.encode("utf-8", "replace").decode("utf-8")


def _ticket_record(ticket: TicketFields) -> _Record:
    return _Record(
        "ticket",
        {
            "link": _clean(ticket.link),
            "code": _clean(ticket.code),
            "seat": _clean(ticket.seat),
            "holder_name": _clean(ticket.holder_name),
            "ticket_type": _clean(ticket.ticket_type),
        },
    )


def _variables(fields: MergeFields, kind: str) -> dict[str, Any]:
    lang = _language(fields.lang)
    name = _clean(fields.guest_name)
    words = name.split()
    variables: dict[str, Any] = {
        "guest": _Record(
            "guest",
            {
                "name": name,
                "first_name": words[0] if words else "",
                "email": _clean(fields.guest_email),
            },
        ),
        "event": _Record(
            "event",
            {
                "name": _clean(fields.event_name),
                "starts_at": _starts_at(fields.event_starts_at, fields.event_timezone, lang),
                "venue": _clean(fields.event_venue),
            },
        ),
        "booking": _Record("booking", {"reference": _clean(fields.booking_reference)}),
        "tickets": [_ticket_record(ticket) for ticket in fields.tickets],
    }
    if fields.ticket is not None:
        variables["ticket"] = _ticket_record(fields.ticket)
    if kind == "tickets":
        variables["ticket_buttons"] = _MARKER
    return variables


_SAMPLE_WORDS = {
    "fr": ("Concert de printemps", "Salle des fêtes, Lausanne", "Plein tarif"),
    "en": ("Spring concert", "Town hall, Lausanne", "Full price"),
    "de": ("Frühlingskonzert", "Festsaal, Lausanne", "Normalpreis"),
}


def sample_fields(lang: str, *, per_ticket: bool) -> MergeFields:
    """Believable fields for a preview without a recipient (English for other languages)."""
    chosen = _language(lang)
    event, venue, ticket_type = _SAMPLE_WORDS[chosen]
    tickets = [
        TicketFields(
            link="https://tickets.example.org/t/sample-a",
            code="K7Q2-M4XD",
            seat="A12",
            holder_name="Camille Martin",
            ticket_type=ticket_type,
        ),
        TicketFields(
            link="https://tickets.example.org/t/sample-b",
            code="P3LW-9TZR",
            seat="A13",
            holder_name="Alex Martin",
            ticket_type=ticket_type,
        ),
    ]
    return MergeFields(
        lang=chosen,  # type: ignore[arg-type]
        guest_name="Camille Martin",
        guest_email="camille.martin@example.org",
        event_name=event,
        event_starts_at=datetime(2031, 6, 14, 18, 0, tzinfo=UTC),
        event_timezone="Europe/Zurich",
        event_venue=venue,
        booking_reference="B7K2Q9",
        tickets=tickets,
        ticket=tickets[0] if per_ticket else None,
        unsubscribe_url="https://tickets.example.org/m/sample/unsubscribe",
    )


def _problems(field_name: str, found: Iterable[_Found]) -> list[TemplateProblem]:
    unique = sorted(set(found), key=lambda f: (f[0] or 0, f[1]))
    problems = [TemplateProblem(field_name, line, message, code) for line, message, code in unique]
    if len(problems) > _PROBLEMS_PER_FIELD:
        more = len(problems) - _PROBLEMS_PER_FIELD
        problems = problems[:_PROBLEMS_PER_FIELD]
        problems.append(
            TemplateProblem(field_name, None, f"and {more} more problems", problems[-1].code)
        )
    return problems


def check_templates(
    templates: Mapping[str, MessageTemplate], *, kind: Kind, per_ticket: bool
) -> list[TemplateProblem]:
    """Every problem of every language's subject and body, in the mapping's order."""
    if not templates:
        return [TemplateProblem("templates", None, "no language written", ProblemCode.EMPTY)]
    problems: list[TemplateProblem] = []
    for lang, template in templates.items():
        if lang not in SUPPORTED_LANGUAGES:
            message = "only fr, en and de are supported"
            problems.append(
                TemplateProblem(f"lang.{lang[:20]}", None, message, ProblemCode.LANGUAGE)
            )
            continue
        variables = _variables(sample_fields(lang, per_ticket=per_ticket), kind)
        parts = {part: _compile(getattr(template, part), part, kind, per_ticket) for part in _PARTS}
        budget = _new_budget()  # after compiling, as in render_message
        for part, compiled in parts.items():
            found = list(compiled.found)
            if compiled.template is not None:
                try:
                    _render(compiled.template, variables, budget)
                except _Rendering as rendering:
                    found.append(rendering.found)
            problems.extend(_problems(f"{part}.{lang}", found))
    return problems


# --- Text and HTML parts --------------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")
_UNSUBSCRIBE = {"fr": "Se désinscrire", "en": "Unsubscribe", "de": "Abmelden"}
_COLON = {"fr": " : ", "en": ": ", "de": ": "}  # French typography spaces its colon


def _one_line(text: str) -> str:
    spaced = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return " ".join(spaced.split())[:SUBJECT_MAX_CHARS].strip()


def _plain(text: str) -> str:
    """Body text with one kind of newline and no control characters but tabs and newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(" " if unicodedata.category(c) == "Cc" and c not in "\n\t" else c for c in text)


def _trim_url(url: str) -> str:
    while url and (url[-1] in ".,;:!?»…" or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def _linked(line: str, wrap: Callable[[str], str]) -> Markup:
    parts: list[Markup] = []
    position = 0
    for match in _URL.finditer(line):
        url = _trim_url(match.group())
        if "://" not in url or not url.split("://", 1)[1]:
            continue
        parts.append(escape(line[position : match.start()]))
        parts.append(Markup('<a href="{}">{}</a>').format(wrap(url), url))
        position = match.start() + len(url)
    parts.append(escape(line[position:]))
    return Markup("").join(parts)


def _paragraphs(text: str, wrap: Callable[[str], str]) -> list[Markup]:
    blocks = [block.strip("\n") for block in _BLANK_LINES.split(text)]
    return [
        Markup("<br>\n").join(_linked(line, wrap) for line in block.split("\n"))
        for block in blocks
        if block.strip()
    ]


def _details(ticket: TicketFields, lang: str) -> str:
    parts = [ticket.holder_name, ticket.ticket_type]
    if ticket.seat:
        parts.append(f"{t(lang, 'seat')} {ticket.seat}")
    parts.append(f"{t(lang, 'code')} {ticket.code}")
    return " · ".join(_clean(part) for part in parts if part)


def _safe_colour(colour: str | None) -> str | None:
    """`colour` if it is six hex digits (it goes into a style attribute), else None."""
    return colour if colour and _HEX_COLOUR.fullmatch(colour) else None


_HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


def _safe_url(url: str | None) -> str | None:
    """`url` if it is an absolute http(s) URL (a mail has no origin to resolve a path on)."""
    return url if url and url.startswith(("https://", "http://")) else None


@cache
def _layout() -> Any:
    env = Environment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(files("server.campaigns").joinpath("layout.html").read_text("utf-8"))


def render_message(
    template: MessageTemplate,
    fields: MergeFields,
    *,
    kind: Kind,
    link_wrapper: Callable[[str], str] | None = None,
) -> RenderedMessage:
    """The subject, HTML and text of one mail; raises TemplateError with every problem found.

    `link_wrapper` rewrites every link of the HTML part (body URLs and e-ticket buttons, in
    document order); the text part keeps the links as they are.
    """
    if kind not in ("tickets", "message"):
        raise ValueError(f"unknown campaign kind {kind!r}")
    lang = _language(fields.lang)
    per_ticket = fields.ticket is not None
    variables = _variables(fields, kind)
    parts = {part: _compile(getattr(template, part), part, kind, per_ticket) for part in _PARTS}
    budget = _new_budget()  # after compiling: the deadline bounds rendering alone
    texts: dict[str, str] = {}
    problems: list[TemplateProblem] = []
    for part, compiled in parts.items():
        found = list(compiled.found)
        if compiled.template is not None:
            try:
                texts[part] = _render(compiled.template, variables, budget)
            except _Rendering as rendering:
                found.append(rendering.found)
        problems.extend(_problems(f"{part}.{fields.lang}", found))
    if problems:
        raise TemplateError(problems)
    return _assemble(
        _one_line(texts["subject"]), _plain(texts["body"]), fields, kind, lang, link_wrapper
    )


def _assemble(
    subject: str,
    body: str,
    fields: MergeFields,
    kind: str,
    lang: str,
    link_wrapper: Callable[[str], str] | None,
) -> RenderedMessage:
    wrap = link_wrapper or (lambda url: url)
    before, marker, after = body.partition(_MARKER)
    after = after.replace(_MARKER, "")
    tickets = [] if kind != "tickets" else [fields.ticket] if fields.ticket else fields.tickets
    # Where the buttons go: at the marker, else after the body.
    if not marker:
        before, after = body, ""
    # Paragraphs, then buttons, then paragraphs: `link_wrapper` sees links in document order.
    first = _paragraphs(before, wrap)
    buttons = [
        {"href": wrap(_clean(ticket.link)), "details": _details(ticket, lang)} for ticket in tickets
    ]
    blocks = [
        {"paragraphs": first, "buttons": buttons},
        {"paragraphs": _paragraphs(after, wrap), "buttons": []},
    ]
    unsubscribe = fields.unsubscribe_url if kind == "message" else None
    html = _layout().render(
        lang=lang,
        subject=subject,
        blocks=blocks,
        button_label=t(lang, "ticket_link"),
        unsubscribe_url=unsubscribe,
        unsubscribe_label=_UNSUBSCRIBE[lang],
        tracking_pixel_url=fields.tracking_pixel_url,
        colour=_safe_colour(fields.brand_colour),
        logo_url=_safe_url(fields.logo_url),
        banner_url=_safe_url(fields.banner_url),
        event_name=fields.event_name,
    )
    listed = "\n\n".join(
        f"{t(lang, 'ticket_link')}{_COLON[lang]}{_clean(ticket.link)}\n{_details(ticket, lang)}"
        for ticket in tickets
    )
    pieces = [before.strip("\n"), listed, after.strip("\n")]
    if unsubscribe:
        pieces.append(f"-- \n{_UNSUBSCRIBE[lang]}{_COLON[lang]}{unsubscribe}")
    text = "\n\n".join(piece for piece in pieces if piece.strip()) + "\n"
    return RenderedMessage(subject=subject, html=html, text=text)
