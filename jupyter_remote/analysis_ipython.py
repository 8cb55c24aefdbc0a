"""IPython syntax inside a cell: what magics and shell lines read (a mixin of ``analysis._Flow``).

After IPython's transformer, ``%time x``, ``!echo $y`` and friends are ``get_ipython()`` calls
with string arguments; these methods analyse the code such a call runs (``%time``, ``%%capture``,
``%prun`` in the user namespace; ``%timeit`` in a private one) and the ``$name``/``{expr}``
expansions of shell and magic lines.
"""

from __future__ import annotations

import ast
import re
import string

from .analysis_parse import _parse_or_none
from .analysis_scopes import _Collector, _Escape

_DOLLAR_NAME = re.compile(r"(?<!\$)\$([A-Za-z_]\w*)")
# Magics that run their argument as Python in the user namespace, and those that run it in a
# throwaway namespace (so it can read but not bind), with the options that take a value.
_USER_NS_MAGICS: dict[str, str | None] = {"time": None, "capture": "", "prun": "DlsT"}
_PRIVATE_NS_MAGICS = {"timeit": "nrp"}


class IPythonSyntax:
    """The IPython part of the flow analysis; the host class provides the methods below."""

    def load(self, name: str) -> None:
        """Record a read of ``name`` (provided by the host)."""
        raise NotImplementedError

    def bind(self, name: str, *, certain: bool = True) -> None:
        """Record a binding of ``name`` (provided by the host)."""
        raise NotImplementedError

    def run(self, stmts: list[ast.stmt]) -> None:
        """Analyse statements in order (provided by the host)."""
        raise NotImplementedError

    def expr(self, node: ast.AST) -> None:
        """Analyse an expression (provided by the host)."""
        raise NotImplementedError

    def absorb(self, escape: _Escape, *, later: bool = False) -> None:
        """Take in what a nested scope reads (provided by the host)."""
        raise NotImplementedError

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
