"""Which names a cell reads from, binds in and deletes from the notebook namespace.

Everything here is a pure function of the cell's source. The rules, and the choices made where
Python leaves room:

* ``reads`` follows Python's scoping: function locals, closures, class bodies (which do not enclose
  their methods), comprehensions (whose first iterable runs in the enclosing scope), ``global`` and
  ``nonlocal``. At the top level, statement order counts (``y = 1; print(y)`` reads nothing), and
  where a name *might* be unbound (after an ``if`` that binds it on one branch only, inside a loop
  body that may run zero times, in an ``except`` handler) it counts as read: an extra read costs a
  little upload, a missing one breaks the remote run. A function, lambda or class body reads a
  global name unless the cell has already bound it where the ``def`` runs, since we cannot know
  when it is called; the exception is a function's own name, and a class's name inside its
  methods, which are bound before they can run. Names in annotations are always read (as if
  ``from __future__ import annotations`` were absent). ``del x`` reads ``x`` unless the cell bound
  it first, because ``del`` needs the value to exist. ``with`` blocks count as straight-line code
  even though a context manager can swallow an exception. Builtins are never reads.
* ``assigns`` holds every name the cell may bind at the top level, on any path, including through
  ``global`` in a function and ``:=`` in a comprehension. A name whose last top-level binding
  operation (in source order) is ``del`` is left out; ``except E as e`` binds ``e`` only inside the
  handler, so it is neither assigned nor deleted.
* ``deletes`` holds every name a top-level ``del`` removes. A name can be in both sets when it is
  deleted and bound again later; the runtime checks which names the remote namespace still holds.
* ``imports`` holds the top-level package of every absolute import anywhere in the cell.
* IPython syntax is rewritten with IPython's own transformer. Code inside ``%time``, ``%%time``,
  ``%%capture``, ``%prun``/``%%prun`` (run in the user namespace) and ``%timeit``/``%%timeit``
  (run in a private one) is analysed too, as are ``$name`` and ``{expr}`` in shell lines and magic
  arguments. The bodies of other cell magics are not Python and are not analysed. Names IPython
  injects (``get_ipython``) are reported like any other read.
* An expression nested too deeply for this module's recursive walk (Python still compiles a sum
  of 2,000 terms) gets a rough answer instead: every name loaded anywhere is read, every name
  bound anywhere is assigned.
"""

from __future__ import annotations

import ast
import builtins
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import JupyterRemoteError

_BUILTINS = frozenset(dir(builtins)) | {"__builtins__"}
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_SCOPES = (*_FUNCTIONS, ast.ClassDef, *_COMPREHENSIONS)
_DOLLAR_NAME = re.compile(r"(?<!\$)\$([A-Za-z_]\w*)")
# Magics that run their argument as Python in the user namespace, and those that run it in a
# throwaway namespace (so it can read but not bind), with the options that take a value.
_USER_NS_MAGICS: dict[str, str | None] = {"time": None, "capture": "", "prun": "DlsT"}
_PRIVATE_NS_MAGICS = {"timeit": "nrp"}


@dataclass(frozen=True)
class CellNames:
    """The names a cell exchanges with the notebook namespace (see the module docstring)."""

    reads: frozenset[str]
    assigns: frozenset[str]
    deletes: frozenset[str]
    imports: frozenset[str]


class CellSyntaxError(JupyterRemoteError):
    """The cell is not valid Python, even after IPython's syntax is rewritten."""

    def __init__(self, msg: str, lineno: int | None, text: str | None = None) -> None:
        self.msg = msg
        self.lineno = lineno
        self.text = text
        where = f" on line {lineno}" if lineno else ""
        message = f"The cell has a syntax error{where}: {msg}"
        if text and text.strip():
            message += f"\n    {text.strip()}"
        super().__init__(message)


def analyze_cell(source: str) -> CellNames:
    """Return the names ``source`` reads, assigns, deletes and imports at the notebook level.

    Raises :class:`CellSyntaxError` if the cell does not parse, even as IPython input.
    """
    tree = _parse(source)
    imports = frozenset(_imported_packages(tree))
    flow = _Flow()
    try:
        flow.run(tree.body)
    except RecursionError:
        # Python compiles expressions nested deeper than this walker can follow (a sum of a
        # few thousand terms, say); over-approximate rather than refuse such a cell.
        return _rough(tree, imports)
    last: dict[str, bool] = {}
    for is_bind, name in flow.events:
        last[name] = is_bind
    return CellNames(
        reads=frozenset(flow.reads - _BUILTINS),
        assigns=frozenset(name for name, is_bind in last.items() if is_bind),
        deletes=frozenset(name for is_bind, name in flow.events if not is_bind),
        imports=imports,
    )


def _rough(tree: ast.Module, imports: frozenset[str]) -> CellNames:
    """Supersets of reads, assigns and deletes, found without recursion.

    Every name loaded anywhere is read and every name bound anywhere is assigned.
    """
    reads: set[str] = set()
    assigns = _bound_locally(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (assigns if isinstance(node.ctx, ast.Store) else reads).add(node.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            reads.add(node.target.id)
        elif isinstance(node, ast.Global):
            assigns.update(node.names)
    deletes = {
        n.id
        for n in _walk_local(tree.body)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Del)
    }
    return CellNames(
        reads=frozenset(reads - _BUILTINS),
        assigns=frozenset(assigns),
        deletes=frozenset(deletes),
        imports=imports,
    )


def _parse(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        pass  # perhaps IPython syntax; IPython is imported only for cells that need it
    except RecursionError as exc:
        raise CellSyntaxError("too deeply nested for Python to compile", None) from exc
    from IPython.core.inputtransformer2 import TransformerManager

    transformed = TransformerManager().transform_cell(source)
    try:
        return ast.parse(transformed)
    except SyntaxError as exc:
        raise CellSyntaxError(exc.msg, exc.lineno, exc.text) from exc
    except ValueError as exc:  # null bytes on Python 3.10/3.11.x
        raise CellSyntaxError(str(exc), None) from exc


def _parse_or_none(source: str) -> ast.Module | None:
    try:
        return _parse(source)
    except CellSyntaxError:
        return None


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


def _class_escape(node: ast.ClassDef) -> _Escape:
    flow = _Flow(class_body=node.body)
    flow.run(node.body)
    flow.escape.free -= _type_params(node)
    return flow.escape


def _merge(*states: set[str] | None) -> set[str] | None:
    """Names bound on every path that reaches this point; ``None`` means unreachable."""
    live = [s for s in states if s is not None]
    return set.intersection(*live) if live else None


def _without(state: set[str] | None, names: set[str]) -> set[str] | None:
    return None if state is None else state - names


def _copy(state: set[str] | None) -> set[str] | None:
    return None if state is None else set(state)


class _Flow:
    """Ordered analysis of a module (the cell) or a class body.

    ``bound`` is the set of names certainly bound at the current point, or ``None`` where the
    code cannot be reached (after ``raise``, ``break`` or ``continue``).
    """

    def __init__(self, *, class_body: list[ast.stmt] | None = None) -> None:
        self.is_module = class_body is None
        self.bound: set[str] | None = set()
        self.reads: set[str] = set()
        self.events: list[tuple[bool, str]] = []  # (bind?, name) at module level, source order
        self.escape = _Escape()  # class bodies only
        self.class_names = _bound_locally(class_body or [])
        self.class_globals = {
            name
            for node in _walk_local(class_body or [])
            if isinstance(node, ast.Global)
            for name in node.names
        }

    # -- names -----------------------------------------------------------------------------

    def load(self, name: str) -> None:
        if self.bound is None or name in self.bound:
            return
        if self.is_module:
            self.reads.add(name)
        elif name in self.class_names or name in self.class_globals:
            # A class body looks its own names up in the class, then globals: never closures.
            self.escape.globals.add(name)
        else:
            self.escape.free.add(name)

    def bind(self, name: str, *, certain: bool = True) -> None:
        if not self.is_module and name in self.class_globals:
            self.escape.global_binds.add(name)
            return
        if self.is_module:
            self.events.append((True, name))
        if certain and self.bound is not None:
            self.bound.add(name)

    def delete(self, name: str) -> None:
        self.load(name)
        if self.is_module:
            self.events.append((False, name))
        if self.bound is not None:
            self.bound.discard(name)

    def absorb(self, escape: _Escape, *, later: bool = False) -> None:
        """Take in a nested scope's names; ``later`` if it is a function (run when called)."""
        if self.is_module:
            for name in escape.free | escape.globals | escape.deferred:
                self.load(name)
            for name in escape.global_binds:
                self.bind(name, certain=False)
        else:
            (self.escape.deferred if later else self.escape.free).update(escape.free)
            self.escape.deferred |= escape.deferred
            self.escape.globals |= escape.globals
            self.escape.global_binds |= escape.global_binds
        for name in escape.outer_binds:
            self.bind(name, certain=False)

    # -- statements ------------------------------------------------------------------------

    def run(self, stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            handler = getattr(self, f"_stmt_{type(stmt).__name__}", self._stmt_generic)
            handler(stmt)

    def _stmt_generic(self, node: ast.AST) -> None:
        # Statements without a handler of their own (e.g. Python 3.12's ``type X = ...``).
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
                self.target(child)
            elif isinstance(child, ast.expr):
                self.expr(child)
            elif isinstance(child, ast.stmt):
                self.run([child])

    def _stmt_Expr(self, node: ast.Expr) -> None:
        self.expr(node.value)

    def _stmt_Assign(self, node: ast.Assign) -> None:
        self.expr(node.value)
        for target in node.targets:
            self.target(target)

    def _stmt_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.load(node.target.id)
            self.expr(node.value)
            self.bind(node.target.id)
        else:
            self.target(node.target)
            self.expr(node.value)

    def _stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.expr(node.value)
        self.expr(node.annotation)
        if not isinstance(node.target, ast.Name):
            self.target(node.target)
        elif node.value is not None:
            self.bind(node.target.id)

    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id)
        elif isinstance(node, ast.Tuple | ast.List):
            for element in node.elts:
                self.target(element)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        else:  # attribute or subscript: reads the object, binds nothing
            self.expr(node)

    def _stmt_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._delete_target(target)

    def _delete_target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.delete(node.id)
        elif isinstance(node, ast.Tuple | ast.List):
            for element in node.elts:
                self._delete_target(element)
        else:
            self.expr(node)

    def _stmt_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for name in _import_bindings(node):
            self.bind(name)

    _stmt_ImportFrom = _stmt_Import

    def _stmt_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in _evaluated_at_def(node):
            self.expr(expr)
        self.bind(node.name)  # first: the body runs when called, and may call itself
        self.absorb(_function_escape(node), later=True)

    _stmt_AsyncFunctionDef = _stmt_FunctionDef

    def _stmt_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.expr(expr)
        escape = _class_escape(node)
        deferred, escape.deferred = escape.deferred, set()
        self.absorb(escape)
        self.bind(node.name)
        self.absorb(_Escape(free=deferred))

    def _stmt_Raise(self, node: ast.Raise | ast.Return) -> None:
        self._stmt_generic(node)
        self.bound = None

    _stmt_Return = _stmt_Raise

    def _stmt_Break(self, node: ast.Break | ast.Continue) -> None:
        self.bound = None

    _stmt_Continue = _stmt_Break

    def _stmt_Assert(self, node: ast.Assert) -> None:
        self.expr(node.test)
        if node.msg is not None:  # evaluated only when the test fails
            before = _copy(self.bound)
            self.expr(node.msg)
            self.bound = before

    def _stmt_If(self, node: ast.If) -> None:
        self.expr(node.test)
        before = _copy(self.bound)
        self.run(node.body)
        after_body, self.bound = self.bound, before
        self.run(node.orelse)
        self.bound = _merge(after_body, self.bound)

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        # Any iteration may start with what the previous one deleted; the body may not run.
        self.bound = _without(self.bound, _unbound_by(node.body + node.orelse))
        if isinstance(node, ast.While):
            self.expr(node.test)
        entry = _copy(self.bound)
        if not isinstance(node, ast.While):
            self.target(node.target)
        self.run(node.body)
        self.bound = _copy(entry)
        self.run(node.orelse)
        self.bound = entry

    def _stmt_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.expr(node.iter)
        self._loop(node)

    _stmt_AsyncFor = _stmt_For

    def _stmt_While(self, node: ast.While) -> None:
        self._loop(node)

    def _stmt_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.expr(item.context_expr)
            if item.optional_vars is not None:
                self.target(item.optional_vars)
        self.run(node.body)

    _stmt_AsyncWith = _stmt_With

    def _stmt_Try(self, node: ast.Try) -> None:
        entry = _copy(self.bound)
        self.run(node.body)
        self.run(node.orelse)
        ends = [self.bound]
        for handler in node.handlers:
            # An exception can interrupt the body anywhere, before any of its bindings.
            self.bound = _without(entry, _unbound_by(node.body))
            if handler.type is not None:
                self.expr(handler.type)
            if handler.name and self.bound is not None:
                self.bound.add(handler.name)
            self.run(handler.body)
            if handler.name and self.bound is not None:
                self.bound.discard(handler.name)  # Python deletes it when the handler ends
            ends.append(self.bound)
        merged = _merge(*ends)
        if node.finalbody:
            self.bound = _without(entry, _unbound_by(node.body + node.orelse + node.handlers))
            self.run(node.finalbody)
            if merged is not None and self.bound is not None:
                merged = (merged - _unbound_by(node.finalbody)) | self.bound
            else:
                merged = None
        self.bound = merged

    _stmt_TryStar = _stmt_Try

    def _stmt_Match(self, node: ast.Match) -> None:
        self.expr(node.subject)
        before = _copy(self.bound)
        ends = []
        for case in node.cases:
            self.bound = _copy(before)
            self.pattern(case.pattern)
            if case.guard is not None:
                self.expr(case.guard)
            self.run(case.body)
            ends.append(self.bound)
        last = node.cases[-1]
        irrefutable = isinstance(last.pattern, ast.MatchAs) and last.pattern.pattern is None
        if not irrefutable or last.guard is not None:
            ends.append(before)  # no case matched
        self.bound = _merge(*ends)

    def pattern(self, node: ast.pattern) -> None:
        if isinstance(node, ast.MatchValue):
            self.expr(node.value)
        elif isinstance(node, ast.MatchClass):
            self.expr(node.cls)
        elif isinstance(node, ast.MatchMapping):
            for key in node.keys:
                self.expr(key)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.pattern):
                self.pattern(child)
        name = getattr(node, "rest" if isinstance(node, ast.MatchMapping) else "name", None)
        if name:
            self.bind(name)

    def _stmt_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        pass  # at module level a no-op; in a class body handled through class_globals

    _stmt_Nonlocal = _stmt_Global

    # -- expressions -----------------------------------------------------------------------

    def expr(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.load(node.id)
            return
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value)
            self.bind(node.target.id)
        elif isinstance(node, ast.Lambda):
            for expr in _evaluated_at_def(node):
                self.expr(expr)
            self.absorb(_function_escape(node), later=True)
        elif isinstance(node, _COMPREHENSIONS):
            self.expr(node.generators[0].iter)
            self.absorb(_comprehension_escape(node))
        elif isinstance(node, ast.IfExp):
            self.expr(node.test)
            before = _copy(self.bound)
            self.expr(node.body)
            after_body, self.bound = self.bound, before
            self.expr(node.orelse)
            self.bound = _merge(after_body, self.bound)
        elif isinstance(node, ast.BoolOp):
            self.expr(node.values[0])
            # Later operands may not run: their reads count, their := bindings are not certain.
            before = _copy(self.bound)
            for value in node.values[1:]:
                self.expr(value)
            self.bound = before
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None:
                    self.expr(key)
                self.expr(value)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)
                elif isinstance(child, ast.keyword):
                    self.expr(child.value)
            if isinstance(node, ast.Call):
                self._ipython_call(node)

    def _ipython_call(self, node: ast.Call) -> None:
        """Analyse what ``get_ipython().system(...)`` and magic calls run or expand."""
        func = node.func
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
            and len(args) == len(node.args)
            and all(isinstance(a, str) for a in args)
        ):
            return
        if func.attr in ("system", "getoutput") and args:
            self._expand(args[0])
        elif func.attr == "run_line_magic" and len(args) == 2:
            self._magic(args[0], args[1], None)
        elif func.attr == "run_cell_magic" and len(args) == 3:
            self._magic(args[0], args[1], args[2])

    def _magic(self, name: str, line: str, cell: str | None) -> None:
        is_cell = cell is not None
        if name in _USER_NS_MAGICS:
            options = _USER_NS_MAGICS[name]
            if cell is not None:
                code = cell
            else:
                code = line if options is None else _strip_options(line, options)
            tree = _parse_or_none(code)
            if tree is not None:
                self.run(tree.body)
            if name == "capture" and is_cell:
                rest = _strip_options(line, "").split()
                if rest:
                    self.bind(rest[0])
        elif name in _PRIVATE_NS_MAGICS:
            code = _strip_options(line, _PRIVATE_NS_MAGICS[name])
            if cell is not None:
                code += "\n" + cell
            tree = _parse_or_none(code)
            if tree is not None:
                collector = _Collector()
                for stmt in tree.body:
                    collector.visit(stmt)
                self.absorb(collector.escape(set()))
        else:
            self._expand(line)

    def _expand(self, text: str) -> None:
        """Reads made by IPython's ``$name`` / ``{expr}`` expansion of shell and magic lines."""
        for name in _DOLLAR_NAME.findall(text):
            self.load(name)
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f]
        except ValueError:
            return
        for text_field in fields:
            try:
                expression = ast.parse(text_field, mode="eval")
            except SyntaxError:
                continue
            self.expr(expression.body)


def _strip_options(line: str, valued: str) -> str:
    """Drop leading ``-x`` options from a magic's line; letters in ``valued`` take a value."""
    rest = line.strip()
    while rest.startswith("-"):
        token, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        letters = token.lstrip("-")
        for index, letter in enumerate(letters):
            if letter in valued:
                if index == len(letters) - 1:  # the value is the next word
                    _, _, rest = rest.partition(" ")
                    rest = rest.lstrip()
                break
    return rest
