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
from dataclasses import dataclass

from .analysis_ipython import IPythonSyntax
from .analysis_parse import CellSyntaxError, _parse
from .analysis_scopes import (
    _BUILTINS,
    _COMPREHENSIONS,
    _bound_locally,
    _comprehension_escape,
    _copy,
    _Escape,
    _evaluated_at_def,
    _function_escape,
    _import_bindings,
    _imported_packages,
    _merge,
    _type_params,
    _unbound_by,
    _walk_local,
    _without,
)

__all__ = ["CellNames", "CellSyntaxError", "analyze_cell"]


@dataclass(frozen=True)
class CellNames:
    """The names a cell exchanges with the notebook namespace (see the module docstring)."""

    reads: frozenset[str]
    assigns: frozenset[str]
    deletes: frozenset[str]
    imports: frozenset[str]


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


class _Flow(IPythonSyntax):
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


def _class_escape(node: ast.ClassDef) -> _Escape:
    flow = _Flow(class_body=node.body)
    flow.run(node.body)
    flow.escape.free -= _type_params(node)
    return flow.escape
