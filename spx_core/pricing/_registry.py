"""What is compiled into the pricing kernels, found by following the code, and the cache key over all of it.

The kernel modules are listed once (``KERNEL_MODULES``); each names its top-level array loops in ``LOOPS``.
Everything else is found, not listed: starting from the loops, every global name a function's code reads is
resolved in that function's globals (and closure; a module's members too, for ``module.helper``), and
whatever it names is followed in turn: plain functions, numba dispatchers (``njit(inline=...)``: their ``py_func``), ``@intrinsic`` definitions (their
``_defn``) and the numeric constants and tuples numba freezes into the machine code. So a helper cannot be
left out of the cache key by forgetting to list it, nor left uncompiled: ``discover`` returns the plain
functions the loops call, which ``_compile`` makes callable from compiled code.

Pure Python (no numba), so computing the key costs no compile.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import CodeType, FunctionType, ModuleType

KERNEL_MODULES = (
    "spx_core.pricing._black",
    "spx_core.pricing._black_simd",
    "spx_core.pricing._implied_vol",
    "spx_core.pricing._implied_vol_simd",
)
# Libraries whose functions numba compiles by its own overloads (``math.exp``, ``np.int64``): referenced by
# name, never followed. Any other module a kernel reads an attribute of (``module.helper``) is followed.
_LIBRARIES = frozenset({*sys.stdlib_module_names, "numpy", "numba", "llvmlite", "scipy"})
_MISSING = object()


@dataclass(frozen=True, slots=True)
class CompiledCode:
    """``functions``: every Python function whose code ends up compiled (the loops first); ``helpers``: the plain
    functions among them that compiled code calls (not loops, not already numba objects); ``digest``: sha256
    over all of their code, the values they read, the jit options and the builders."""

    functions: tuple[FunctionType, ...]
    helpers: tuple[FunctionType, ...]
    digest: str


def rebind(fn: FunctionType, **replacements) -> FunctionType:
    """``fn``'s code with some of the global names it reads bound to other objects: how a variant (numpy arrays,
    branch-free compiled loops) reuses a scalar formula instead of keeping a copy of it."""
    return FunctionType(fn.__code__, {**fn.__globals__, **replacements}, fn.__name__, fn.__defaults__, fn.__closure__)


def loops(modules: Iterable[ModuleType]) -> tuple[FunctionType, ...]:
    """The array loops the kernel modules declare (their ``LOOPS``)."""
    return tuple(fn for module in modules for fn in module.LOOPS)


def python_function(obj) -> FunctionType | None:
    """The Python function numba compiles for ``obj`` (a function, a dispatcher or an intrinsic), else None."""
    if isinstance(obj, FunctionType):
        return obj
    for attribute in ("py_func", "_defn"):  # numba Dispatcher, numba.extending.intrinsic
        fn = getattr(obj, attribute, None)
        if isinstance(fn, FunctionType):
            return fn
    return None


def _names(code: CodeType) -> list[str]:
    """Global and attribute names read by ``code`` and the code nested in it, in order."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names.extend(_names(const))
    return names


def _referenced(fn: FunctionType):
    """(name, value) for every global (or closure cell) ``fn`` reads, modules of ours expanded to their members."""
    names = _names(fn.__code__)
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        yield name, cell.cell_contents
    for name in names:
        value = fn.__globals__.get(name, _MISSING)
        if value is _MISSING:
            continue  # an attribute name (``out.shape``) or a builtin (``range``): numba resolves those itself
        yield name, value
        if isinstance(value, ModuleType) and value.__name__.partition(".")[0] not in _LIBRARIES:
            for member in names:
                if member in vars(value):
                    yield f"{name}.{member}", vars(value)[member]


def _describe(value) -> str:
    """What the compiled code depends on in ``value``, other than code that is followed separately."""
    if isinstance(value, bool | int | float | complex | str | bytes | tuple | type(None)):
        return f"{type(value).__name__} {value!r}"
    fn = python_function(value)
    if fn is not None:  # a dispatcher's options (e.g. inline="always") change what is compiled too
        options = sorted(getattr(value, "targetoptions", {}).items())
        return f"code {fn.__module__}.{fn.__qualname__} ({type(value).__name__} {options!r})"
    if isinstance(value, ModuleType):
        return f"module {value.__name__}"
    module = getattr(value, "__module__", "")
    return f"{type(value).__name__} {module}.{getattr(value, '__qualname__', getattr(value, '__name__', ''))}"


def _update_with_code(hasher, code: CodeType) -> None:
    # marshal output depends on reference counts, so hash the parts that define behaviour instead.
    hasher.update(code.co_code)
    hasher.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _update_with_code(hasher, const)
        else:
            hasher.update(repr(const).encode())


def _function_digest(fn: FunctionType, references: list[str]) -> str:
    hasher = hashlib.sha256(f"{fn.__module__}.{fn.__qualname__} {fn.__defaults__!r}".encode())
    _update_with_code(hasher, fn.__code__)
    hasher.update(repr(sorted(references)).encode())
    return hasher.hexdigest()


def discover(roots: Iterable[FunctionType], options: Mapping, builders: Iterable[FunctionType] = ()) -> CompiledCode:
    """Follow the code from ``roots`` (the loops); see the module docstring."""
    roots = tuple(roots)
    functions: dict[int, FunctionType] = {}
    helpers: dict[int, FunctionType] = {}
    digests = []
    pending = [(fn, False) for fn in reversed(roots)]
    while pending:
        fn, called_plain = pending.pop()
        if called_plain and fn not in roots:
            helpers.setdefault(id(fn), fn)
        if id(fn) in functions:
            continue
        functions[id(fn)] = fn
        references = []
        for name, value in _referenced(fn):
            references.append(f"{name}: {_describe(value)}")
            target = python_function(value)
            if target is not None:
                pending.append((target, isinstance(value, FunctionType)))
        digests.append(_function_digest(fn, references))
    hasher = hashlib.sha256(repr(sorted(options.items())).encode())
    for builder in builders:
        _update_with_code(hasher, builder.__code__)
    for digest in sorted(digests):  # independent of the walk's order
        hasher.update(digest.encode())
    return CompiledCode(tuple(functions.values()), tuple(helpers.values()), hasher.hexdigest())
