"""The option tables of softsign's optimizers: each option's name, default, range and a
one-line doc (docs/algorithms.md sections 4 and 5 explain them). Each optimizer's table is
written beside its float64 reference (reference/soft_signum.py, lion.py, soft_muon.py); this
module holds the machinery and the options they share.

The optimizers build their defaults dicts and run their checks from these tables, the float64
reference takes its defaults from them, and tests/python/test_options.py holds the classes'
signatures, the C++ bindings and the README's tables to them. The module lives in the
reference package because that package must import without the compiled library
(tests/cpp/make_golden.py loads it on its own); it needs nothing but torch.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch

__all__ = ["OPTIONS", "Option", "OptionTable", "add_pair", "check_number"]


def check_number(
    name, value, *, low=None, high=None, low_open=False, high_open=False, integer=False
):
    """Raises ValueError("Invalid <name>: ...") unless `value` is a finite number (an integer
    when `integer`) within the bounds. A one-element tensor counts as its value; one on an
    accelerator is not read (that would wait for the device) and passes."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            # torch.optim's own text for the learning rate, which users and tests match.
            what = (
                "Tensor lr must be 1-element"
                if "learning rate" in name
                else (f"a tensor {name} must have one element")
            )
            raise ValueError(f"Invalid {name}: {what}")
        if value.device.type != "cpu":
            return
        value = value.item()
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        what = "an integer" if integer else "a finite number"
        raise ValueError(f"Invalid {name}: {value!r} (expected {what})")
    if low is not None and (value < low or (low_open and value == low)):
        op = ">" if low_open else ">="
        raise ValueError(f"Invalid {name}: {value} (expected {op} {low})")
    if high is not None and (value > high or (high_open and value == high)):
        op = "<" if high_open else "<="
        raise ValueError(f"Invalid {name}: {value} (expected {op} {high})")


@dataclass(frozen=True)
class Range:
    """A number within [low, high] (either end open, or absent)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def check(self, label: str, value) -> None:
        check_number(
            label,
            value,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            integer=self.integer,
        )

    def __str__(self) -> str:
        kind = "integer " if self.integer else ""
        if self.high is None:
            return f"{kind}{'>' if self.low_open else '>='} {_number(self.low)}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{kind}{left}{_number(self.low)}, {_number(self.high)}{right}"


@dataclass(frozen=True)
class RunLength(Range):
    """An integer count of steps, or "auto": the run's length, which a trainer callback
    fills in before the first step (softsign.integrations; the Python optimizers only)."""

    def check(self, label: str, value) -> None:
        if isinstance(value, str) and value == "auto":
            return
        super().check(label, value)

    def __str__(self) -> str:
        return f'{super().__str__()}, or "auto"'


@dataclass(frozen=True)
class OneOf:
    """One of a few values (compared with ==)."""

    values: tuple

    def check(self, label: str, value) -> None:
        if not any(value is v or (type(value) is type(v) and value == v) for v in self.values):
            raise ValueError(f"Invalid {label}: {value!r} (expected one of {self.values})")

    def __str__(self) -> str:
        return ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Pair:
    """Two numbers, each within `item` (Adam's and Lion's betas)."""

    item: Range
    item_label: str

    def check(self, label: str, value) -> None:
        if isinstance(value, (str, bytes, torch.Tensor)) or not isinstance(value, Iterable):
            raise ValueError(f"Invalid {label}: {value!r} (expected two numbers)")
        items = tuple(value)
        if len(items) != 2:
            raise ValueError(f"Invalid {label}: {value!r} (expected two numbers)")
        # torch.optim.Adam's text, which users and tests match: "beta parameter at index 0".
        for i, item in enumerate(items):
            self.item.check(f"{self.item_label} parameter at index {i}", item)

    def __str__(self) -> str:
        return f"each {self.item}"


def _number(x) -> str:
    if x is None:
        return ""
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:g}".replace("e+", "e")


def _show(value) -> str:
    """A default as the docs write it: 1e-3 rather than 0.001."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e4:
        return str(int(value))
    if isinstance(value, float) and value != 0 and not 1e-2 <= abs(value) < 1e4:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


@dataclass(frozen=True)
class Option:
    """One keyword option: `check` is None for flags that take any value; `optional` lets
    None through unchecked; `label` names the option in errors ("learning rate")."""

    name: str
    default: object
    doc: str
    check: Range | OneOf | Pair | None = None  # RunLength is a Range
    optional: bool = False
    label: str = ""
    tensor: bool = True  # a one-element tensor is accepted as well

    def validate(self, value) -> None:
        label = self.label or self.name
        if value is None and self.optional:
            return
        if isinstance(value, torch.Tensor) and not self.tensor:
            raise ValueError(f"Invalid {label}: expected a float, not a tensor")
        if self.check is not None:
            self.check.check(label, value)

    def normalize(self, value):
        """The value as the param group keeps it: pairs as tuples (as torch's Adam does)."""
        if isinstance(self.check, Pair) and isinstance(value, Iterable):
            return tuple(value)
        return value


@dataclass(frozen=True)
class OptionTable:
    """The options of one optimizer, in the order its param groups hold them; `rules` check
    what no single option can (Nesterov needs momentum); `aliases` maps the authors' names to
    ours."""

    owner: str
    options: tuple[Option, ...]
    rules: tuple[Callable[[Mapping], None], ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    @property
    def defaults(self) -> dict:
        return {o.name: o.default for o in self.options}

    def __getitem__(self, name: str) -> Option:
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return any(o.name == name for o in self.options)

    def resolve_aliases(self, values: dict) -> dict:
        """`values` (changed in place) with each alias folded into its option; an alias that
        contradicts its option raises."""
        for alias_name, name in self.aliases.items():
            if alias_name not in values:
                continue
            alias_value = values.pop(alias_name)
            if alias_value is None:
                continue
            value = values.get(name)
            if value is not None and value != alias_value:
                raise ValueError(f"Invalid {alias_name}: {alias_value} contradicts {name}={value}")
            values[name] = alias_value
        return values

    def fill(self, given: Mapping) -> dict:
        """The table's defaults overridden by `given` (aliases resolved), in table order; an
        unknown name raises ValueError. Nothing is checked."""
        given = self.resolve_aliases(dict(given))
        unknown = set(given) - set(self.names)
        if unknown:
            raise ValueError(f"Invalid options for {self.owner}: unknown {sorted(unknown)}")
        return {o.name: o.normalize(given.get(o.name, o.default)) for o in self.options}

    def collect(self, given: Mapping) -> dict:
        """`fill`, then every option and rule checked: a constructor's defaults dict. Rules
        marked per_group (a required option, such as the schedule) are left to the groups,
        as torch.optim does for its required options: the param group dicts may give them."""
        values = self.fill(given)
        self.check(values, per_group=False)
        return values

    def check(self, values: Mapping, per_group: bool = True) -> None:
        """Checks the options present in `values` (a param group holds other keys as well),
        then the rules (without those marked per_group unless `per_group`)."""
        for option in self.options:
            if option.name in values:
                option.validate(values[option.name])
        for rule in self.rules:
            if per_group or not getattr(rule, "per_group", False):
                rule(values)

    def markdown(self) -> str:
        """The table as markdown rows (argument | default | range | meaning), for the docs;
        tests/python/test_options.py reads the docs' tables back against this table."""
        aliases = {name: alias for alias, name in self.aliases.items()}
        lines = ["| argument | default | range | meaning |", "|---|---|---|---|"]
        for o in self.options:
            name = f"`{o.name}`" + (f" (`{aliases[o.name]}`)" if o.name in aliases else "")
            shown = "none" if o.default is None and o.optional else f"`{_show(o.default)}`"
            limits = "" if o.check is None else f"`{o.check}`"
            lines.append(f"| {name} | {shown} | {limits} | {o.doc} |")
        return "\n".join(lines)


# ---- the options --------------------------------------------------------------------------

NONNEGATIVE = Range(low=0.0)
UNIT = Range(low=0.0, high=1.0)


def lr_option(default: float, *, tensor: bool = True) -> Option:
    doc = "step size" + (" (a float or a one-element tensor)" if tensor else " (a float)")
    return Option("lr", default, doc, NONNEGATIVE, label="learning rate", tensor=tensor)


def weight_decay_option(doc="decoupled weight decay: p *= 1 - lr * weight_decay first") -> Option:
    # Labels "... value" give torch.optim's texts ("Invalid weight_decay value: -1.0").
    return Option("weight_decay", 0.0, doc, NONNEGATIVE, label="weight_decay value")


MAXIMIZE = Option("maximize", False, "ascend the objective (step on -g) instead of descending")
FUSED = Option(
    "fused",
    None,
    "None: the fused kernel where the device has one (CPU, CUDA); True: require it; "
    "False: plain PyTorch ops",
    OneOf((None, True, False)),
)

SCHEDULE = (
    Option(
        "total_steps",
        None,
        'planned number of step() calls; with alpha_sign it sets S and T; "auto": filled '
        "in by a trainer callback (softsign.integrations)",
        RunLength(low=1, integer=True),
        optional=True,
    ),
    Option(
        "alpha_sign",
        0.9,
        "share of total_steps in the sign phase: S = round(alpha_sign * total_steps); 0 fits "
        "at the first step",
        Range(low=0.0, high=1.0),
    ),
    Option(
        "sign_steps",
        None,
        "explicit S (alias sign_iters)",
        Range(low=0, integer=True),
        optional=True,
    ),
    Option(
        "transition_steps",
        None,
        "explicit T (alias transition_iters; 2 or more to soften)",
        Range(low=1, integer=True),
        optional=True,
    ),
    Option(
        "eps",
        1e-4,
        "saturation level: the soft map reaches 1 - eps at each quantile",
        Range(low=0.0, high=1.0, low_open=True, high_open=True),
    ),
    Option("newton_iters", 10, "Newton steps per quantile", Range(low=0, integer=True)),
    # tau reaches the kernels in float32: keep it finite there.
    Option("tmax", 1e9, "upper clamp of tau", Range(low=1.0, high=1e38)),
)
SCHEDULE_ALIASES = {"sign_iters": "sign_steps", "transition_iters": "transition_steps"}


def needs_a_schedule(values: Mapping) -> None:
    """Checked per param group: the schedule may be given in the group dicts alone."""
    if values.get("total_steps") is None and (
        values.get("sign_steps") is None or values.get("transition_steps") is None
    ):
        raise ValueError(
            "Invalid schedule: pass total_steps (the transition starts at "
            "round(alpha_sign * total_steps)), or both sign_steps and transition_steps, or "
            'total_steps="auto" for a trainer callback to fill in (softsign.integrations)'
        )


needs_a_schedule.per_group = True


# Each optimizer's table sits beside its float64 reference (reference/<module>.py), which
# adds it here on import; importing any module of this package imports them all.
OPTIONS: dict[str, OptionTable] = {}


def add_pair(plain: str, options: tuple, *, rules: tuple = ()) -> None:
    """Adds the tables of `plain` and of its soft version Soft<plain>: the same options with
    the schedule's after them."""
    OPTIONS[plain] = OptionTable(plain, options, rules=rules)
    OPTIONS["Soft" + plain] = OptionTable(
        "Soft" + plain,
        options + SCHEDULE,
        rules=rules + (needs_a_schedule,),
        aliases=SCHEDULE_ALIASES,
    )
