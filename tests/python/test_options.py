"""One source for every option: the table in softsign/reference/options.py. The Python
classes' signatures and defaults, their checks, the C++ bindings, the functional API and
the tables of README.md and docs/algorithms.md must all agree with it."""

from __future__ import annotations

import ast
import inspect
import math
import re
from pathlib import Path

import pytest
import torch

import softsign
from softsign import functional, reference
from softsign.reference.options import OPTIONS, OneOf, Pair, Range

ROOT = Path(__file__).resolve().parents[2]
NAMES = list(OPTIONS)
# Options that only the Python classes have (the C++ optimizers always run their kernels).
PYTHON_ONLY = {"fused"}


def _params(name):
    """A small valid parameter list for optimizer `name`."""
    if "Muon" in name:
        return [torch.nn.Parameter(torch.ones(3, 4))]
    return [torch.nn.Parameter(torch.ones(4))]


def _required(name) -> dict:
    """Options without which the class cannot be built (a schedule needs a run length)."""
    return dict(total_steps=100) if "total_steps" in OPTIONS[name] else {}


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or (a == b and type(a) is type(b))
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return float(a) == float(b)


# ---- the Python classes --------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_signature_defaults_are_the_table(name):
    table = OPTIONS[name]
    params = inspect.signature(getattr(softsign, name)).parameters
    keywords = {k: p.default for k, p in params.items() if k != "params"}
    assert set(keywords) == set(table.names) | set(table.aliases), name
    for option in table.options:
        assert _same(keywords[option.name], option.default), option.name
    for alias in table.aliases:
        assert keywords[alias] is None, alias


@pytest.mark.parametrize("name", NAMES)
def test_a_built_optimizer_holds_the_table_defaults(name):
    cls = getattr(softsign, name)
    assert cls._table is OPTIONS[name]
    opt = cls(_params(name), **_required(name))
    for option in OPTIONS[name].options:
        want = _required(name).get(option.name, option.default)
        assert _same(opt.defaults[option.name], want), option.name
        assert _same(opt.param_groups[0][option.name], want), option.name
    extra = set(opt.defaults) - set(OPTIONS[name].names)
    assert extra <= {"step", "fit", "use_muon"}, extra


@pytest.mark.parametrize("name", NAMES)
def test_every_default_passes_its_own_check(name):
    table = OPTIONS[name]
    table.check(dict(table.defaults, **_required(name)))


def _bad_values(option):
    """Values outside an option's range, each refused with ValueError("Invalid ...")."""
    check = option.check
    if isinstance(check, OneOf):
        return ["no such value"]
    if isinstance(check, Pair):
        return [(0.5,), (0.5, -1.0), "ab"]
    if not isinstance(check, Range):
        return []
    bad = [math.nan, "1"]
    if check.low is not None:
        bad.append(check.low if check.low_open else check.low - (1 if check.integer else 0.5))
    if check.high is not None:
        bad.append(check.high if check.high_open else check.high * 2)
    if check.integer:
        bad.append(2.5)
    return bad


CASES = [
    (name, option.name, value)
    for name in NAMES
    for option in OPTIONS[name].options
    for value in _bad_values(option)
]


@pytest.mark.parametrize("name,option,value", CASES, ids=[f"{n}-{o}-{v!r}" for n, o, v in CASES])
def test_a_value_outside_the_range_is_refused(name, option, value):
    cls = getattr(softsign, name)
    with pytest.raises(ValueError, match="Invalid"):
        cls(_params(name), **dict(_required(name), **{option: value}))
    opt = cls(_params(name), **_required(name))
    group = dict(params=_params(name), **{option: value})
    with pytest.raises(ValueError, match="Invalid"):
        opt.add_param_group(group)
    assert len(opt.param_groups) == 1  # a refused group is not kept


@pytest.mark.parametrize("name", [n for n in NAMES if OPTIONS[n].aliases])
def test_aliases_name_their_option(name):
    table = OPTIONS[name]
    for alias, option in table.aliases.items():
        opt = getattr(softsign, name)(_params(name), **{alias: 3}, **_required(name))
        assert opt.defaults[option] == 3 and alias not in opt.defaults


# ---- the C++ bindings ----------------------------------------------------------------------


def _top_level_split(text: str, sep: str = ",") -> list[str]:
    """`text` split at the `sep` characters outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _binding_defaults(cls) -> dict:
    """{option: default} of a bound C++ optimizer: its default-constructed C++ options,
    which the binding's keyword arguments start from (Note [one option list])."""
    return {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in cls.defaults().items()}


@pytest.mark.parametrize("name", NAMES)
def test_cpp_binding_defaults_are_the_table(name):
    try:
        from softsign import _C
    except ImportError:
        pytest.skip("softsign._C (the C++ bindings) is not built")
    assert hasattr(_C, name), f"softsign._C has no {name}"
    bound = _binding_defaults(getattr(_C, name))
    table = OPTIONS[name]
    missing = set(table.names) - PYTHON_ONLY - set(bound)
    assert not missing, f"softsign._C.{name} lacks {sorted(missing)}"
    # use_muon is a group key, not a keyword of the Python classes; the C++ Muon shares
    # SoftMuon's options struct, whose soft-map options it never reads.
    allowed = {"use_muon"} | ({"soft_map", "soft_steps"} if name == "Muon" else set())
    extra = set(bound) - set(table.names) - allowed
    assert not extra, f"softsign._C.{name} takes {sorted(extra)}, which {name} does not"
    for option in table.options:
        if option.name in bound:
            assert _same(bound[option.name], option.default), option.name


# ---- the functional API --------------------------------------------------------------------

# (function, its parameter) -> (optimizer, option) whose default it must share.
FUNCTIONAL = [
    (functional.temperature_schedule, "eps", "SoftSignum", "eps"),
    (functional.temperature_schedule, "newton_iters", "SoftSignum", "newton_iters"),
    (functional.temperature_schedule, "tmax", "SoftSignum", "tmax"),
    (functional.newton_schulz5, "steps", "Muon", "ns_steps"),
    (functional.soft_spectral_map, "method", "SoftMuon", "soft_map"),
    (functional.soft_spectral_map, "steps", "SoftMuon", "soft_steps"),
    (reference.temperature_schedule, "eps", "SoftSignum", "eps"),
    (reference.temperature_schedule, "newton_iters", "SoftSignum", "newton_iters"),
    (reference.temperature_schedule, "tmax", "SoftSignum", "tmax"),
    (reference.newton_schulz5, "steps", "Muon", "ns_steps"),
    (reference.soft_newton_schulz, "steps", "SoftMuon", "soft_steps"),
]


@pytest.mark.parametrize(
    "function,parameter,name,option",
    FUNCTIONAL,
    ids=[f"{f.__module__}.{f.__name__}-{p}" for f, p, _, _ in FUNCTIONAL],
)
def test_functional_defaults_are_the_table(function, parameter, name, option):
    default = inspect.signature(function).parameters[parameter].default
    assert _same(default, OPTIONS[name][option].default)


@pytest.mark.parametrize(
    "op,argument,name,option",
    [
        ("newton_schulz5", "steps", "Muon", "ns_steps"),
        ("soft_spectral_map", "method", "SoftMuon", "soft_map"),
        ("soft_spectral_map", "steps", "SoftMuon", "soft_steps"),
    ],
)
def test_op_schema_defaults_are_the_table(op, argument, name, option):
    schema = getattr(torch.ops.softsign, op).default._schema
    (arg,) = [a for a in schema.arguments if a.name == argument]
    assert _same(arg.default_value, OPTIONS[name][option].default)


# ---- the docs ------------------------------------------------------------------------------

_BACKTICKED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*\*?)`")


def _doc_rows(path: Path):
    """(table index, line, {option: default}) of every markdown table with an "argument" and
    a "default" column; a cell of several options takes one default each (or one for all),
    `adamw_*` stands for every adamw_ option, "-" and "none" for no default."""
    lines = path.read_text().splitlines()
    table, header = -1, None
    for number, line in enumerate(lines, 1):
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            if "argument" in header and "default" in header:
                table += 1
            else:
                header = []
            continue
        if not header or set(cells[0]) <= set("-: "):
            continue
        names = _BACKTICKED.findall(re.sub(r"\([^)]*\)", "", cells[header.index("argument")]))
        if not names:
            continue  # a row that goes on with the one above
        text = cells[header.index("default")].replace("`", "")
        values = [_literal(v) for v in _top_level_split(text)]
        yield table, number, names, values


def _literal(text: str):
    if text.lower() in ("-", "none", ""):
        return None
    return ast.literal_eval(text)


def _doc_tables(path: Path) -> dict[int, dict]:
    """{table index: {option: (default, line)}} of a markdown file."""
    tables: dict[int, dict] = {}
    for table, line, names, values in _doc_rows(path):
        everything = [n for name in NAMES for n in OPTIONS[name].names]
        expanded = []
        for name in names:
            if name.endswith("*"):
                expanded += [n for n in dict.fromkeys(everything) if n.startswith(name[:-1])]
            else:
                expanded.append(name)
        if len(values) == 1:
            values = values * len(expanded)
        assert len(values) == len(expanded), f"{path.name}:{line}: {names} vs {values}"
        for name, value in zip(expanded, values):
            tables.setdefault(table, {})[name] = (value, line)
    return tables


def _optimizers_of(rows: dict) -> list[str]:
    """The optimizers a docs table describes: those whose options include all of its rows
    (it documents that class), or all of whose options it lists (a class taking a subset
    with the same defaults, as Signum of SoftSignum's table)."""
    names = set(rows)
    out = []
    for name in NAMES:
        own = set(OPTIONS[name].names)
        if names <= own or own <= names:
            out.append(name)
    return out


DOCS = [ROOT / "README.md", ROOT / "docs" / "algorithms.md"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_tables_state_the_table_defaults(path):
    if not path.exists():
        pytest.skip(f"{path.name} not in this checkout")
    tables = _doc_tables(path)
    assert tables, f"{path.name} has no table of options"
    for rows in tables.values():
        owners = _optimizers_of(rows)
        first = min(line for _, line in rows.values())
        assert owners, f"{path.name}:{first}: a table of {sorted(rows)} fits no optimizer"
        for owner in owners:
            for option, (value, line) in rows.items():
                if option in OPTIONS[owner]:
                    want = OPTIONS[owner][option].default
                    assert _same(value, want), f"{path.name}:{line}: {owner}.{option}"


@pytest.mark.parametrize("name", NAMES)
def test_the_docs_state_every_option(name):
    covered = set()
    for path in DOCS:
        if path.exists():
            for rows in _doc_tables(path).values():
                if name in _optimizers_of(rows):
                    covered |= set(rows)
    missing = set(OPTIONS[name].names) - covered
    assert not missing, f"no docs table states {name}'s {sorted(missing)}"


def _docstring_args(cls) -> dict[str, str]:
    """{name: text} of the Args section of a class docstring."""
    doc = inspect.getdoc(cls)
    lines = doc[doc.index("Args:") :].splitlines()[1:]
    args, name = {}, None
    for line in lines:
        if not line.strip():
            break
        match = re.match(r"    (\w+): (.*)", line)
        if match:
            name = match.group(1)
            args[name] = match.group(2)
        elif name is not None:
            args[name] += " " + line.strip()
    return args


@pytest.mark.parametrize("name", NAMES)
def test_docstrings_state_the_table_defaults(name):
    args = _docstring_args(getattr(softsign, name))
    table = OPTIONS[name]
    assert set(table.names) | set(table.aliases) <= set(args), sorted(set(table.names) - set(args))
    for option in table.options:
        match = re.search(r"Default (.+?)\.(?:\s|$)", args[option.name])
        stated = _literal(match.group(1)) if match else None  # no default: a required one
        assert _same(stated, option.default), f"{name} docstring: {option.name}"


@pytest.mark.parametrize("name", NAMES)
def test_the_generated_markdown_reads_back(name, tmp_path):
    """OptionTable.markdown() writes a table the docs check above accepts as this class's."""
    path = tmp_path / "options.md"
    path.write_text(OPTIONS[name].markdown() + "\n")
    (rows,) = _doc_tables(path).values()
    assert name in _optimizers_of(rows)
    assert set(rows) == set(OPTIONS[name].names)
    for option, (value, _) in rows.items():
        assert _same(value, OPTIONS[name][option].default), option
