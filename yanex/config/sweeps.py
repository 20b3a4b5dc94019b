"""Sweeps and their grid: ``list()``, ``range()``, ``linspace()``, ``logspace()`` and Hydra's
own sweep functions, each a :class:`Sweep` of values; the grid is the product of them.

A sweep is a value: in an override (``lr=linspace(0.001, 0.1, 5)``, Hydra's ``choice(a, b)``,
``range(start=0, stop=3)``, ``shuffle(...)``, ``sort(...)``, casts like ``int(...)``, and with
``-m`` a bare comma list), or in a config file as a plain string (``lr: linspace(0.001, 0.1,
5)``) or an OmegaConf resolver (``lr: ${linspace:0.001,0.1,5}``). Whichever way it is written,
it ends up in the config as a resolver interpolation whose value is a :class:`Sweep` (see
``resolvers``); the grid is the cartesian product of all sweeps, enumerated with numpy, and
each member is the config with one value per sweep. Hydra's ``range()`` keeps Hydra's
arguments but yanex computes its values exactly (``range(0, 1, 0.1)`` holds 0.7, where Hydra's
float steps give 0.7000000000000001); ``shuffle()`` draws its order from a seed that every
member records. A sweep is always a whole value; one inside a longer value
(``run-${list:a,b}``) is refused.

The lowest stage of the config package: it imports nothing of it. Each function counts its
values before making them, so ``range(0, 1e12)`` is refused at once. This module does not use
``from __future__ import annotations``: Hydra's parser checks the arguments of registered
functions against their real annotations.
"""

import contextlib
import dataclasses
import fnmatch
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from yanex.errors import ParamError
from yanex.grammar import FUNCTIONS, NOT_WHOLE

# Grids larger than this need a confirmation (``--yes``); larger than MAX_GRID are refused.
CONFIRM_GRID = 10_000
MAX_GRID = 100_000

# yanex's sweep functions (FUNCTIONS) are in the override grammar beside Hydra's, and are
# OmegaConf resolvers (``${linspace:0,1,5}``).
# Every function of the override grammar: Hydra's sweeps, casts and helpers, and yanex's.
GRAMMAR_FUNCTIONS = (
    *("choice", "range", "interval", "glob", "sort", "shuffle", "tag"),
    *("int", "float", "str", "bool"),
    *("list", "linspace", "logspace"),
)
# The resolver that stands for a sweep placed in a config by an override (see ``resolvers``).
PLACEHOLDER_RESOLVER = "yanex.sweep"
# A config value that is one sweep resolver call, e.g. ``${linspace:0,1,5}`` (OmegaConf allows
# spaces around the name: ``${ list : a, b }``).
_RESOLVER_NAMES = "|".join(re.escape(n) for n in (*FUNCTIONS, PLACEHOLDER_RESOLVER))
_RESOLVER_SWEEP = re.compile(rf"^\$\{{\s*(?:{_RESOLVER_NAMES})\s*:.*\}}$", re.DOTALL)
# A config value that is one call of a grammar function, e.g. ``choice(a, b)``.
_CALL = re.compile(rf"^\s*(?:{'|'.join(GRAMMAR_FUNCTIONS)})\s*\(.*\)\s*$", re.DOTALL)
# yanex 0.6's sweep in a config: words or numbers joined by commas, without spaces.
_COMMA_LIST = re.compile(r"^[\w.+\-/]+(?:,[\w.+\-/]+)+$")

Number = Union[int, float]  # noqa: UP007  (Hydra's argument check needs a typing.Union)


@dataclass(frozen=True)
class Sweep:
    """The values one parameter takes across the grid, in order, and how they were written.

    ``shuffle``: Hydra's ``shuffle()``, whose order is drawn when the grid is made (see
    :func:`shuffled`). ``glob``: Hydra's ``glob(include, exclude)``, whose values are the
    options of a config group, known only when the tree is composed (see :func:`globbed`).
    """

    expr: str
    values: tuple[Any, ...]
    shuffle: bool = False
    glob: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    # The mapping an override's dict values merge into, as Hydra merges ``model={depth: 3}``
    # into the ``model`` it replaces (None: each value replaces what was there).
    under: dict[str, Any] | None = None


def globbed(sweep: Sweep, group: str, options: list[str]) -> Sweep:
    """A ``glob()`` sweep over a config group: the options its patterns select, in Hydra's order."""
    assert sweep.glob is not None
    include, exclude = sweep.glob
    chosen = [
        name
        for name in options
        if any(fnmatch.fnmatch(name, g) for g in include)
        and not any(fnmatch.fnmatch(name, g) for g in exclude)
    ]
    if not chosen:
        raise ParamError(
            f"{sweep.expr} selects no option of config group '{group}'",
            hint=f"Its options: {', '.join(options) or 'none'}.",
        )
    return dataclasses.replace(sweep, values=tuple(chosen), glob=None)


class SweepValueError(ValueError):
    """A sweep that cannot be expanded; the message names it and why."""


def sweep_error(exc: BaseException) -> SweepValueError | None:
    """The SweepValueError behind an OmegaConf error: OmegaConf keeps a resolver's error as
    the context of its own (as the cause only when a debugger is attached)."""
    found: BaseException | None = exc
    while found is not None:
        if isinstance(found, SweepValueError):
            return found
        found = found.__cause__ or found.__context__
    return None


def _expr(name: str, args: tuple[Any, ...]) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def _number(expr: str, what: str, value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SweepValueError(f"{expr}: {what} must be a number, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SweepValueError(f"{expr}: {what} must be finite, not {value!r}")
    return value


def _check_count(expr: str, count: int) -> None:
    if count > MAX_GRID:
        raise SweepValueError(
            f"{expr} has {count:,} values; a grid holds at most {MAX_GRID:,} experiments"
        )


def sweep_list(*values: Any) -> tuple[Any, ...]:
    """``list(a, b, ...)``: the values as given."""
    if not values:
        raise SweepValueError("list() needs at least one value: list(0.01, 0.1)")
    return values


def sweep_range(*args: Any) -> tuple[Any, ...]:
    """``range([start,] end[, step])``: as Python's, end excluded, exact for decimal steps.

    ``range(0, 1, 0.1)`` is 0.0, 0.1, ..., 0.9 (computed in decimal, not by adding floats).
    Ints stay ints when every argument is an int.
    """
    expr = _expr("range", args)
    if not 1 <= len(args) <= 3:
        raise SweepValueError(f"{expr}: give end, start and end, or start, end and step")
    names = {1: ("end",), 2: ("start", "end"), 3: ("start", "end", "step")}[len(args)]
    nums = [_number(expr, name, a) for name, a in zip(names, args, strict=True)]
    if len(nums) == 1:
        start, end, step = 0, nums[0], 1
    elif len(nums) == 2:
        start, end, step = nums[0], nums[1], 1
    else:
        start, end, step = nums
    if step == 0:
        raise SweepValueError(f"{expr}: step cannot be 0")
    from decimal import Decimal  # only for a range with a fractional step

    # repr() is the shortest text that round-trips: Decimal(repr(0.1)) is exactly 0.1.
    d_start, d_end, d_step = (Decimal(repr(x)) for x in (start, end, step))
    count = max(0, math.ceil((d_end - d_start) / d_step))
    if count == 0:
        raise SweepValueError(
            f"{expr} is empty: from {start} in steps of {step} it never reaches {end}"
        )
    _check_count(expr, count)
    as_int = all(isinstance(x, int) for x in (start, end, step))
    cast = int if as_int else float
    return tuple(cast(d_start + i * d_step) for i in range(count))


def _spaced(name: str, start: Any, end: Any, num: Any) -> tuple[Any, ...]:
    expr = _expr(name, (start, end, num))
    _number(expr, "start", start)
    _number(expr, "end", end)
    if isinstance(num, bool) or not isinstance(num, int):
        raise SweepValueError(f"{expr}: num must be a whole number, not {num!r}")
    if num < 1:
        raise SweepValueError(f"{expr}: num must be at least 1")
    _check_count(expr, num)
    import numpy

    with numpy.errstate(all="ignore"):
        space = numpy.linspace if name == "linspace" else numpy.logspace
        values = space(start, end, num).tolist()
    if not all(math.isfinite(v) for v in values):
        raise SweepValueError(f"{expr}: the values overflow a float")
    # Ints stay ints: integer bounds whose values are all whole numbers give ints.
    if isinstance(start, int) and isinstance(end, int) and all(v.is_integer() for v in values):
        return tuple(int(v) for v in values)
    # 15 significant digits: 0.02575, not 0.025750000000000002, in configs and names.
    return tuple(float(f"{v:.15g}") for v in values)


def sweep_linspace(start: Any, end: Any, num: Any) -> tuple[Any, ...]:
    """``linspace(start, end, num)``: ``num`` evenly spaced values, end included (numpy)."""
    return _spaced("linspace", start, end, num)


def sweep_logspace(start: Any, end: Any, num: Any) -> tuple[Any, ...]:
    """``logspace(start, end, num)``: 10**start .. 10**end, ``num`` values (numpy)."""
    return _spaced("logspace", start, end, num)


_COMPUTE = {
    "list": sweep_list,
    "range": sweep_range,
    "linspace": sweep_linspace,
    "logspace": sweep_logspace,
}


def make(name: str, args: tuple[Any, ...]) -> Sweep:
    """The sweep ``name(*args)`` (as a resolver gives it); raises SweepValueError for a bad one."""
    if any(isinstance(arg, Sweep) for arg in args):  # ${list:1,${range:3}}
        raise SweepValueError(f"{NOT_WHOLE}, not a value of another sweep")
    if name in ("linspace", "logspace") and len(args) != 3:
        raise SweepValueError(f"{_expr(name, args)}: give start, end and num")
    return Sweep(expr=_expr(name, args), values=_COMPUTE[name](*args))


# --- Hydra's override parser ----------------------------------------------------------------


def install(parser: Any) -> None:
    """Add yanex's ``list()``, ``linspace()`` and ``logspace()`` to a Hydra ``OverridesParser``
    (each returns a ``ChoiceSweep``, so the parser reports a sweep override), make Hydra's
    ``shuffle()`` of a plain list draw from the grid's seed, and ``sort()`` of a ``range()``
    sort the range's own values (Hydra 1.3.8 computes a reversed range from its exclusive end:
    ``sort(range(0, 5, 2), reverse=true)`` gives 3, 1, -1; fixed upstream in hydra PR #3219,
    whose answer, 4, 2, 0, is yanex's). Hydra's other functions (``choice``, ``range``,
    ``interval``, ``glob``, ``tag``, the casts) stay Hydra's."""
    from hydra.core.override_parser.types import ChoiceSweep, RangeSweep

    def h_list(*values: Any) -> ChoiceSweep:
        return ChoiceSweep(list=list(sweep_list(*values)))

    def h_linspace(start: Number, end: Number, num: int) -> ChoiceSweep:
        return ChoiceSweep(list=list(sweep_linspace(start, end, num)))

    def h_logspace(start: Number, end: Number, num: int) -> ChoiceSweep:
        return ChoiceSweep(list=list(sweep_logspace(start, end, num)))

    functions = parser.functions
    for name, fn in (("list", h_list), ("linspace", h_linspace), ("logspace", h_logspace)):
        functions.register(name, fn)

    hydra_shuffle = functions.functions["shuffle"]

    def h_shuffle(*args: Any, **kwargs: Any) -> Any:
        """Hydra's ``shuffle()``; a plain list (a value, not a sweep) is shuffled by the seed."""
        items = kwargs.get("list")
        if items is None and len(args) == 1 and isinstance(args[0], list):
            items = args[0]
        if items is None or kwargs.get("sweep") is not None:
            return hydra_shuffle(*args, **kwargs)
        values = list(items)
        _draws.shuffle(values)
        return values

    hydra_sort = functions.functions["sort"]

    def h_sort(*args: Any, **kwargs: Any) -> Any:
        """Hydra's ``sort()``; a range's values are computed first (exactly), then sorted."""
        found = kwargs.get("sweep", args[0] if len(args) == 1 else None)
        if not isinstance(found, RangeSweep):
            return hydra_sort(*args, **kwargs)
        values = sorted(sweep_range(found.start, found.stop, found.step))
        if kwargs.get("reverse", False):
            values.reverse()
        return ChoiceSweep(list=values, shuffle=found.shuffle, tags=set(found.tags))

    # Hydra checks each call against the signature registered with the name, its own.
    functions.functions["shuffle"] = h_shuffle
    functions.functions["sort"] = h_sort


class _Draws(threading.local):
    """The random order of ``shuffle()`` while one grid is made: seeded, so it can be repeated.
    The generator is made at the first shuffle (most grids have none: no ``random`` import)."""

    seed: int | None = None
    made: Any = None
    used: bool = False

    def shuffle(self, values: list[Any]) -> None:
        import random

        if self.made is None:
            self.made = random.Random(self.seed)
        self.made.shuffle(values)
        self.used = True


_draws = _Draws()


@contextlib.contextmanager
def drawing(seed: int) -> Iterator[Callable[[], bool]]:
    """Shuffles made in the block draw from ``seed``; yields a function that says whether any
    was made (then the seed is worth recording)."""
    saved = (_draws.seed, _draws.made, _draws.used)
    _draws.seed, _draws.made, _draws.used = seed, None, False
    try:
        yield lambda: _draws.used
    finally:
        _draws.seed, _draws.made, _draws.used = saved


def shuffle_sweep(sweep: Sweep) -> Sweep:
    """A ``shuffle()`` sweep in the order of the current draw (see :func:`drawing`)."""
    if not sweep.shuffle:
        return sweep
    values = list(sweep.values)
    _draws.shuffle(values)
    return dataclasses.replace(sweep, values=tuple(values), shuffle=False)


def is_resolver_sweep(text: str) -> bool:
    """Is a config string one sweep resolver call, like ``${linspace:0.001,0.1,5}``?"""
    return bool(_RESOLVER_SWEEP.match(text))


def is_call(text: str) -> bool:
    """Is a config string one call of a grammar function, like ``choice(a, b)`` (a sweep when
    the grammar reads one)?"""
    return bool(_CALL.match(text))


def is_comma_list(text: str) -> bool:
    """Is a config string in yanex 0.6's sweep form, ``quicksort,mergesort,heapsort``?"""
    return bool(_COMMA_LIST.match(text))


# --- the grid -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One experiment of a grid: its resolved parameters and the values its sweeps chose.

    ``extra`` carries what the composition adds (Hydra's group choices and overrides);
    ``source`` is a Hydra tree's composition unresolved, as Hydra's ``.hydra/config.yaml``
    holds it (None for a plain config).
    """

    config: dict[str, Any]
    varied: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] | None = None


def leaves(node: Any, prefix: str = "", dicts_only: bool = False) -> Iterator[tuple[str, Any]]:
    """``(dotted.path, value)`` for every leaf of a plain container: list items by index, or
    (``dicts_only``) each list as one leaf. An empty dict is a leaf too."""
    if isinstance(node, dict) and (node or not prefix):
        items = ((str(k), v) for k, v in node.items())
    elif isinstance(node, list) and not dicts_only:
        items = ((str(i), v) for i, v in enumerate(node))
    else:
        yield prefix, node
        return
    for key, value in items:
        yield from leaves(value, f"{prefix}.{key}" if prefix else key, dicts_only)


@dataclass
class Base:
    """One composed config of a grid: the sweeps in it, and what was fixed to compose it
    (a config group's option, when a group was swept)."""

    cfg: Any
    sweeps: list[tuple[str, Sweep]]
    varied: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)  # each fixed group option's place

    @property
    def size(self) -> int:
        return math.prod(len(sweep.values) for _, sweep in self.sweeps)


@dataclass
class Grid:
    """The sweeps of a run, found before any member is made: one or more composed configs
    (one per option of a swept config group), each with the value sweeps in it."""

    bases: list[Base]
    resolve: Callable[[Any], dict[str, Any]]  # a config with one value per sweep -> plain dict
    group_sweeps: list[tuple[str, Sweep]] = field(default_factory=list)
    # The sweeps from the slowest to the fastest varying, as Hydra's sweeper orders its jobs
    # (the order typed); sweeps not named keep their place in the config, first.
    order: list[str] = field(default_factory=list)

    @property
    def sweeps(self) -> list[tuple[str, Sweep]]:
        """Every sweep (the value sweeps of the first composition), in the grid's order."""
        return self._ordered(self.group_sweeps + (self.bases[0].sweeps if self.bases else []))

    def _ordered(self, found: list[tuple[str, Sweep]]) -> list[tuple[str, Sweep]]:
        rank = {path: i for i, path in enumerate(self.order)}
        return sorted(found, key=lambda item: rank.get(item[0], -1))

    @property
    def size(self) -> int:
        return sum(base.size for base in self.bases)

    def cross(self, outside: list[tuple[str, Sweep]], key: str, order: list[str]) -> None:
        """Make the grid its product with sweeps whose values are no config values (a run's
        dependencies, ``-D data=list(a, b)``): each member gets one value of each in
        ``extra[key]`` (``{path: value}``), never in its config. ``order`` is the new order of
        every sweep, these included (Hydra's: as typed, the last varying fastest)."""
        import itertools

        self.order = list(order)
        if not outside:
            return
        self.group_sweeps = self._ordered(self.group_sweeps + outside)
        fixed = [path for path, _ in self.group_sweeps]
        bases = []
        for base in self.bases:
            counts = [range(len(sweep.values)) for _, sweep in outside]
            for index in itertools.product(*counts):
                chosen = {p: s.values[i] for (p, s), i in zip(outside, index, strict=True)}
                places = {p: i for (p, _), i in zip(outside, index, strict=True)}
                extra = {**base.extra, key: {**base.extra.get(key, {}), **chosen}}
                positions = {**base.positions, **places}
                bases.append(dataclasses.replace(base, extra=extra, positions=positions))
        # Made in the grid's order, as the compositions of swept config groups are.
        bases.sort(key=lambda b: tuple(b.positions.get(path, 0) for path in fixed))
        self.bases = bases

    def check_size(self) -> None:
        if self.size > MAX_GRID:
            described = " x ".join(f"{len(s.values):,} ({path})" for path, s in self.sweeps)
            raise ParamError(
                f"the sweeps make a grid of {self.size:,} experiments ({described}); "
                f"at most {MAX_GRID:,} can be staged"
            )

    def members(self) -> Iterator[Member]:
        """Each member in order (the last sweep varies fastest), its config fully resolved."""
        paths = [path for path, _ in self.sweeps]
        groups = [path for path, _ in self.group_sweeps]
        # Compositions are made one per group option; when a value sweep varies slower than a
        # group, the members are put in the grid's order after they are made.
        in_order = paths[: len(groups)] == groups
        made = self._made()
        if in_order:
            yield from (member for _, member in made)
        else:
            yield from (member for _, member in sorted(made, key=lambda item: item[0]))

    def _made(self) -> Iterator[tuple[tuple[int, ...], Member]]:
        """Each member with its place in the grid (one index per sweep, in order)."""
        order = [path for path, _ in self.sweeps]
        for base in self.bases:
            if base.cfg is None:
                yield (), Member(config={}, varied=dict(base.varied), extra=base.extra)
                continue
            sweeps = self._ordered(base.sweeps)
            first: Member | None = None
            plain = _only_plain_values(base, sweeps)
            for index in _indices(sweeps):
                values = [sweep.values[i] for (_, sweep), i in zip(sweeps, index, strict=True)]
                varied = {**base.varied, **{p: v for (p, _), v in zip(sweeps, values, strict=True)}}
                varied = {path: varied[path] for path in order if path in varied}
                positions = {
                    **base.positions,
                    **dict(zip([p for p, _ in sweeps], index, strict=True)),
                }
                place = tuple(positions.get(path, 0) for path in order)
                if first is not None:
                    # Nothing interpolates and every value is a scalar: this member is the
                    # first with its own values put in, without an OmegaConf copy and
                    # resolution per member (a 1,000-member grid in milliseconds).
                    source = first.source
                    yield (
                        place,
                        Member(
                            _with(first.config, sweeps, values),
                            varied,
                            base.extra,
                            None if source is None else _with(source, sweeps, values),
                        ),
                    )
                    continue
                cfg = base.cfg.copy() if sweeps else base.cfg
                for (path, sweep), value in zip(sweeps, values, strict=True):
                    _put(cfg, path, sweep, value)
                member = Member(self.resolve(cfg), varied, base.extra, _source(cfg, base))
                if plain:
                    first = member
                yield place, member


def _only_plain_values(base: Base, sweeps: list[tuple[str, Sweep]]) -> bool:
    """Can each member be the first with its sweeps' values put in? When the config holds no
    interpolation or resolver (nothing else depends on a swept value) and every value is a
    scalar OmegaConf keeps as it is (no ``${``, not ``???``), at a path of dicts."""
    if not sweeps or any(sweep.under is not None for _, sweep in sweeps):
        return False
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(base.cfg, resolve=False)
    swept = {path for path, _ in sweeps}
    for path, leaf in leaves(container):
        if path not in swept and isinstance(leaf, str) and ("${" in leaf or leaf == "???"):
            return False
    for path, sweep in sweeps:
        node: Any = container
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        for value in sweep.values:
            if isinstance(value, str):
                if "${" in value or value == "???":
                    return False
            elif not (value is None or isinstance(value, (bool, int, float))):
                return False
    return True


def _with(config: dict[str, Any], sweeps: list[tuple[str, Sweep]], values: list[Any]) -> Any:
    """A copy of a plain config with each sweep's path set to its value."""
    copied = _copy_plain(config)
    for (path, _), value in zip(sweeps, values, strict=True):
        *parents, last = path.split(".")
        node = copied
        for part in parents:
            node = node[part]
        node[last] = value
    return copied


def _copy_plain(node: Any) -> Any:
    """A copy of the dicts and lists of a plain config (its scalars are shared, immutable)."""
    if isinstance(node, dict):
        return {key: _copy_plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy_plain(value) for value in node]
    return node


def _indices(sweeps: list[tuple[str, Sweep]]) -> Iterator[tuple[int, ...]]:
    """Every combination of one value per sweep (numpy only when there are sweeps)."""
    if not sweeps:
        yield ()
        return
    import numpy

    yield from numpy.ndindex(*(len(sweep.values) for _, sweep in sweeps))


def _put(cfg: Any, path: str, sweep: Sweep, value: Any) -> None:
    """One sweep's value at ``path``, applied as the override that chose it would be."""
    from omegaconf import OmegaConf

    if sweep.under is not None and isinstance(value, dict):
        OmegaConf.update(cfg, path, sweep.under, merge=False, force_add=True)
        OmegaConf.update(cfg, path, value, merge=True, force_add=True)
    else:
        OmegaConf.update(cfg, path, value, merge=False, force_add=True)


def _source(cfg: Any, base: Base) -> dict[str, Any] | None:
    """A Hydra composition as Hydra records it: unresolved (interpolations kept)."""
    if "hydra" not in base.extra:
        return None
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def find_in(cfg: Any) -> list[tuple[str, Sweep]]:
    """The sweeps in ``cfg`` (an unresolved OmegaConf config), each with all its values."""
    if cfg is None:
        return []
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    found: list[tuple[str, Sweep]] = []
    text = OmegaConf.to_container(cfg, resolve=False)
    plain = None  # a copy without a structured config's types: a Sweep is no float
    for path, leaf in leaves(text):
        if isinstance(leaf, str) and is_resolver_sweep(leaf):
            if plain is None:
                plain = OmegaConf.create(text)
            try:
                value = OmegaConf.select(plain, path, throw_on_resolution_failure=True)
            except OmegaConfBaseException as exc:
                reason = str(sweep_error(exc) or exc).splitlines()[0]
                raise ParamError(f"'{path}: {leaf}' cannot be expanded: {reason}") from exc
            if isinstance(value, Sweep):
                found.append((path, value))
    return found
