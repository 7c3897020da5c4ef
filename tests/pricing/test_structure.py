"""Structure of the pricing internals: constants and steps written once, no import cycle, no run-time state
outside the one owner. Read from the source (ast) and the imported modules; nothing here compiles."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import logging
import os
import subprocess
import sys
from collections import defaultdict
from enum import Enum
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MappingProxyType, ModuleType

import numpy as np
import pytest

import spx_core.pricing
from spx_core.pricing import _registry

PACKAGE = Path(spx_core.pricing.__file__).resolve().parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
ROOT = PACKAGE.parents[1]
NEEDS_NUMBA = {"_black_simd", "_branchfree", "_cache", "_implied_vol_simd"}


def _tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{name}.py").read_text(), filename=f"{name}.py")


def _module(name: str) -> ModuleType:
    if name in NEEDS_NUMBA:
        pytest.importorskip("numba")
    return importlib.import_module(f"spx_core.pricing.{name}")


def _float_literals(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            yield node.value


def _significant_digits(value: float) -> int:
    mantissa = repr(abs(value)).lower().split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0"))


# --- constants ------------------------------------------------------------------------------------------


def test_a_precise_literal_is_written_in_one_module_only():
    # A fraction with 8+ significant digits in two modules is a copied constant (ln 2 split, sqrt(pi/2), ...);
    # whole numbers (13! in two Taylor series) are arithmetic, not constants.
    where = defaultdict(set)
    for name in MODULES:
        for value in _float_literals(_tree(name)):
            if _significant_digits(value) >= 8 and not value.is_integer():
                where[value].add(name)
    copied = {value: sorted(modules) for value, modules in where.items() if len(modules) > 1}
    assert not copied, f"define these once in _constants.py and import them: {copied}"


def test_named_constants_are_not_also_written_as_literals():
    # E.g. Cody's interval bound 0.46875: once named in _constants, every use goes through the name.
    named = {value: key for key, value in vars(_module("_constants")).items()
             if isinstance(value, float) and not value.is_integer() and not key.startswith("_")}
    written = sorted(f"{name}: {value!r} (use {named[value]})" for name in MODULES if name != "_constants"
                     for value in set(_float_literals(_tree(name))) if value in named)
    assert not written


def test_each_module_level_float_is_defined_once():
    definitions = defaultdict(list)
    for name in MODULES:
        module = _module(name)
        for node in _tree(name).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(getattr(module, target.id, None), float):
                    definitions[getattr(module, target.id)].append(f"{name}.{target.id}")
    assert not {value: where for value, where in definitions.items() if len(where) > 1}


# --- the Householder step -----------------------------------------------------------------------------------


def _calls(tree: ast.Module) -> set[str]:
    return {node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_the_householder_step_is_written_once_and_used_by_every_solver():
    writers = [name for name in MODULES if {"householder_factor", "_householder_factor"} & _calls(_tree(name))]
    assert writers == ["_householder"]
    for solver in ("_implied_vol", "_implied_vol_numpy", "_implied_vol_simd"):
        imported = {node.module for node in ast.walk(_tree(solver)) if isinstance(node, ast.ImportFrom)}
        imported |= {f"{node.module}.{alias.name}" for node in ast.walk(_tree(solver))
                     if isinstance(node, ast.ImportFrom) for alias in node.names}
        assert "spx_core.pricing._householder" in imported, solver


def test_the_one_step_source_gives_the_same_numbers_on_floats_and_on_arrays():
    from spx_core.pricing import _householder as hh

    rng = np.random.default_rng(3)
    x, s = -rng.uniform(0.01, 3.0, 50), rng.uniform(0.05, 2.0, 50)
    b, bp, b_max = rng.uniform(1e-6, 0.1, 50), rng.uniform(0.01, 0.4, 50), np.exp(0.5 * x)
    beta = b * rng.uniform(0.9, 1.1, 50)
    arrays = (hh.step_lower(x, s, np.log(beta), np.log(b), b, bp),
              hh.step_upper(x, s, np.log((b_max - beta) / (b_max - b)), b, bp, b_max),
              hh.step_middle(x, s, beta, b, bp))
    for i in range(50):
        xi, si, bi, bpi, bmi, be = (float(a[i]) for a in (x, s, b, bp, b_max, beta))
        floats = (hh.step_lower(xi, si, np.log(be), np.log(bi), bi, bpi),
                  hh.step_upper(xi, si, np.log((bmi - be) / (bmi - bi)), bi, bpi, bmi),
                  hh.step_middle(xi, si, be, bi, bpi))
        assert [float(a[i]) for a in arrays] == list(floats)


# --- imports --------------------------------------------------------------------------------------------------


def _imports(name: str) -> set[str]:
    """Pricing modules ``name`` imports anywhere (at module level or inside a function)."""
    found = set()
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            found |= {alias.name.rsplit(".", 1)[-1] for alias in node.names
                      if alias.name.startswith("spx_core.pricing.")}
        elif isinstance(node, ast.ImportFrom) and node.module == "spx_core.pricing":
            found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spx_core.pricing."):
            found.add(node.module.rsplit(".", 1)[-1])
    return found - {name}


def test_no_import_cycle_between_pricing_modules_not_even_at_run_time():
    graph = {name: _imports(name) for name in MODULES}

    def cycle_from(start, path):
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == start:
                return [*path, start]
            if nxt not in path:
                found = cycle_from(start, [*path, nxt])
                if found:
                    return found
        return None

    cycles = [" -> ".join(c) for name in MODULES if (c := cycle_from(name, [name]))]
    assert not cycles, cycles


_IMPORT_EACH_FIRST = """
import importlib, sys
names = sys.argv[1:]
for first in names:
    for key in [k for k in sys.modules if k == "spx_core.pricing" or k.startswith("spx_core.pricing.")]:
        del sys.modules[key]
    for name in [first, *names]:
        importlib.import_module("spx_core.pricing." + name)
print("ok")
"""


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_every_module_imports_first_in_a_fresh_package(order):
    pytest.importorskip("numba")
    names = MODULES if order == "forward" else MODULES[::-1]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH_FIRST, *names], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# --- state ------------------------------------------------------------------------------------------------------


def _immutable(value) -> bool:
    if value is None or isinstance(value, bool | int | float | complex | str | bytes | range):
        return True
    if isinstance(value, tuple | frozenset):
        return all(_immutable(v) for v in value)
    if isinstance(value, MappingProxyType):
        return all(_immutable(v) for v in value.values())
    if isinstance(value, np.ndarray):
        return not value.flags.writeable
    if isinstance(value, ModuleType | type | FunctionType | BuiltinFunctionType | Enum | logging.Logger):
        return True
    if _registry.python_function(value) is not None:  # a numba dispatcher or intrinsic: compiled code
        return True
    if dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen:
        return True
    return type(value) is object  # a sentinel


def test_no_module_level_mutable_state_outside_the_kernel_provider():
    mutable = []
    for name in MODULES:
        module = _module(name)
        for node in _tree(name).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name) and not target.id.startswith("__"):
                    if not _immutable(getattr(module, target.id)):
                        mutable.append(f"{name}.{target.id}")
    assert mutable == ["_compile.KERNELS"], "module-level state that can change at run time: " + ", ".join(mutable)


def test_no_function_rebinds_a_module_global():
    rebinding = [name for name in MODULES for node in ast.walk(_tree(name)) if isinstance(node, ast.Global)]
    assert not rebinding


def test_the_state_owner_declares_all_of_its_state():
    from spx_core.pricing._compile import KERNELS

    assert not hasattr(KERNELS, "__dict__")  # __slots__: no attribute can be added on the side
