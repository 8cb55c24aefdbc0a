"""Scopes below a cell's top level: what functions, lambdas, classes and comprehensions read.

Helpers for :mod:`.analysis`: a nested scope is walked by :class:`_Collector`, and what escapes it
(global names it reads, or binds through ``global``) is an :class:`_Escape` for the top-level
flow to absorb where the ``def``, ``class`` or comprehension runs.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_BUILTINS = frozenset(dir(builtins)) | {"__builtins__"}
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_SCOPES = (*_FUNCTIONS, ast.ClassDef, *_COMPREHENSIONS)


def _imported_packages(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def _import_bindings(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.asname or alias.name.split(".")[0] for alias in node.names]
    return [alias.asname or alias.name for alias in node.names if alias.name != "*"]


def _arguments(args: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _walk_local(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Yield nodes of one scope: nested scopes are yielded but not entered."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _bound_locally(stmts: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in _walk_local(stmts):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(_import_bindings(node))
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def _unbound_by(stmts: list[ast.stmt]) -> set[str]:
    """Names that ``stmts`` may unbind: ``del`` targets and ``except ... as`` names."""
    names: set[str] = set()
    for node in _walk_local(stmts):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


@dataclass
class _Escape:
    """What a nested scope leaves for its enclosing scopes to resolve."""

    free: set[str] = field(default_factory=set)  # enclosing functions first, then globals
    globals: set[str] = field(default_factory=set)  # straight to module globals
    global_binds: set[str] = field(default_factory=set)  # module names it may bind
    outer_binds: set[str] = field(default_factory=set)  # comprehension := targets
    # Free names of methods: like ``free``, but looked up only when a method is called, by
    # which time the class itself is bound.
    deferred: set[str] = field(default_factory=set)


class _Collector(ast.NodeVisitor):
    """Order-free name collection for a function, lambda or comprehension body."""

    def __init__(self, *, comprehension: bool = False) -> None:
        self.comprehension = comprehension
        self.loads: set[str] = set()
        self.stores: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.outer_binds: set[str] = set()
        self.nested: list[_Escape] = []

    def visit_Name(self, node: ast.Name) -> None:
        (self.loads if isinstance(node.ctx, ast.Load) else self.stores).add(node.id)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        # PEP 572: in a comprehension, := binds in the nearest enclosing function or module.
        (self.outer_binds if self.comprehension else self.stores).add(node.target.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.stores.update(_import_bindings(node))

    visit_ImportFrom = visit_Import

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.nonlocals.update(node.names)

    def visit_ExceptHandler(self, node: ast.ExceptHandler | ast.MatchAs | ast.MatchStar) -> None:
        if node.name:
            self.stores.add(node.name)
        self.generic_visit(node)

    visit_MatchAs = visit_MatchStar = visit_ExceptHandler

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.stores.add(node.rest)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.stores.add(node.name)
        self.visit_Lambda(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for expr in _evaluated_at_def(node):
            self.visit(expr)
        self.nested.append(_function_escape(node))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.stores.add(node.name)
        for expr in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(expr)
        # A class body is ordered code, analysed by the top-level flow (which imports us).
        from .analysis import _class_escape

        self.nested.append(_class_escape(node))

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self.visit(node.generators[0].iter)
        self.nested.append(_comprehension_escape(node))

    visit_SetComp = visit_GeneratorExp = visit_DictComp = visit_ListComp

    def escape(self, params: set[str]) -> _Escape:
        stores = self.stores | params
        outer = set(self.outer_binds)
        for nested in self.nested:
            (outer if self.comprehension else stores).update(nested.outer_binds)
        local = stores - self.globals - self.nonlocals - outer
        result = _Escape(outer_binds=outer, global_binds=self.globals & stores)

        def resolve(name: str) -> None:
            if name in self.globals:
                result.globals.add(name)
            elif name not in local:
                result.free.add(name)

        for name in self.loads | self.nonlocals:
            resolve(name)
        for nested in self.nested:
            for name in nested.free | nested.deferred:
                resolve(name)
            result.globals |= nested.globals
            result.global_binds |= nested.global_binds
        return result


def _evaluated_at_def(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.AST]:
    """Decorators, defaults and annotations: evaluated where the function is defined."""
    args = node.args
    exprs: list[ast.AST] = list(getattr(node, "decorator_list", []))
    exprs += [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    if not isinstance(node, ast.Lambda):
        exprs += [a.annotation for a in _arguments(args) if a.annotation is not None]
        if node.returns is not None:
            exprs.append(node.returns)
    return exprs


def _type_params(node: ast.AST) -> set[str]:
    # Python 3.12+ ``def f[T]()``: T lives in a scope of its own around the function.
    return {getattr(p, "name", "") for p in getattr(node, "type_params", [])} - {""}


def _function_escape(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> _Escape:
    collector = _Collector()
    for stmt in [node.body] if isinstance(node, ast.Lambda) else node.body:
        collector.visit(stmt)
    params = {a.arg for a in _arguments(node.args)} | _type_params(node)
    return collector.escape(params)


def _comprehension_escape(
    node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
) -> _Escape:
    collector = _Collector(comprehension=True)
    for index, generator in enumerate(node.generators):
        if index:
            collector.visit(generator.iter)
        collector.visit(generator.target)
        for condition in generator.ifs:
            collector.visit(condition)
    for element in [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]:
        collector.visit(element)
    return collector.escape(set())


def _merge(*states: set[str] | None) -> set[str] | None:
    """Names bound on every path that reaches this point; ``None`` means unreachable."""
    live = [s for s in states if s is not None]
    return set.intersection(*live) if live else None


def _without(state: set[str] | None, names: set[str]) -> set[str] | None:
    return None if state is None else state - names


def _copy(state: set[str] | None) -> set[str] | None:
    return None if state is None else set(state)
