"""Parsing a cell: plain Python first, then IPython's syntax rewritten by IPython itself."""

from __future__ import annotations

import ast

from .errors import JupyterRemoteError


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
