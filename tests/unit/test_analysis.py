from __future__ import annotations

import textwrap

import pytest

from jupyter_remote.analysis import CellNames, CellSyntaxError, analyze_cell
from jupyter_remote.errors import JupyterRemoteError


def row(
    id: str,
    source: str,
    reads: str = "",
    assigns: str = "",
    deletes: str = "",
    imports: str = "",
) -> object:
    """One table row; name sets are written as space-separated words."""
    return pytest.param(
        textwrap.dedent(source).strip("\n"),
        CellNames(
            reads=frozenset(reads.split()),
            assigns=frozenset(assigns.split()),
            deletes=frozenset(deletes.split()),
            imports=frozenset(imports.split()),
        ),
        id=id,
    )


CASES = [
    # --- straight-line order at top level ---
    row("empty", ""),
    row("comment-only", "# nothing here\n"),
    row("read-before-assign", "x = x + 1", reads="x", assigns="x"),
    row("assign-then-read", "y = 1\nprint(y)", assigns="y"),
    row("augmented", "x += 1", reads="x", assigns="x"),
    row("augmented-after-assign", "x = 0\nx += step", reads="step", assigns="x"),
    row("swap", "a, b = b, a", reads="a b", assigns="a b"),
    row("chained", "a = b = c", reads="c", assigns="a b"),
    row(
        "tuple-list-starred-unpacking",
        "a, *b = c\n(d, [e, *f]) = g",
        reads="c g",
        assigns="a b d e f",
    ),
    # --- attribute and subscript targets bind nothing ---
    row("subscript-assign", 'd["k"] = 1', reads="d"),
    row("attribute-assign", "obj.attr = 1", reads="obj"),
    row("subscript-augassign", "d[k] += v", reads="d k v"),
    row("subscript-after-bind", "d = {}\nd['k'] = key", reads="key", assigns="d"),
    # --- for / with / except ---
    row(
        "for-target-maybe-unbound",
        "for i in items:\n    t = i\nprint(t, i)",
        reads="items t i",
        assigns="i t",
    ),
    row("for-iter-shadows", "for x in x:\n    pass", reads="x", assigns="x"),
    row(
        "loop-carried-read",
        "for i in r:\n    print(q)\n    q = i",
        reads="r q",
        assigns="i q",
    ),
    row(
        "loop-del-next-iteration",
        "x = 1\nfor i in r:\n    print(x)\n    del x",
        reads="r x",
        assigns="i",
        deletes="x",
    ),
    row(
        "for-else-not-certain",
        "for x in range(3):\n    pass\nelse:\n    y = 1\nprint(y)",
        reads="y",
        assigns="x y",
    ),
    row(
        "while-walrus-test",
        "while (n := next_n()) > 0:\n    acc = n\nprint(n, acc)",
        reads="next_n acc",
        assigns="n acc",
    ),
    row(
        "with-as",
        """
        with open(path) as fh, ctx() as (u, v):
            data = fh.read()
        print(data, u)
        """,
        reads="path ctx",
        assigns="fh u v data",
    ),
    row(
        "except-as-not-assigned",
        """
        try:
            z = compute()
        except Failure as err:
            print(err)
            z = None
        print(z, err)
        """,
        reads="compute Failure err",
        assigns="z",
    ),
    row(
        "try-import-fallback",
        "try:\n    import numpy as np\nexcept ImportError:\n    np = None\nprint(np)",
        assigns="np",
        imports="numpy",
    ),
    row(
        "try-handler-sees-no-body-bindings",
        "try:\n    a = f()\nexcept E:\n    print(a)",
        reads="f E a",
        assigns="a",
    ),
    row(
        "try-finally",
        "try:\n    a = 1\nfinally:\n    b = a\nprint(a, b)",
        reads="a",
        assigns="a b",
    ),
    row(
        "try-else",
        "try:\n    a = 1\nexcept E:\n    raise\nelse:\n    b = a\nprint(a, b)",
        reads="E",
        assigns="a b",
    ),
    row("except-star", "try:\n    pass\nexcept* ValueError as eg:\n    print(eg)"),
    # --- if / raise / conditional expressions ---
    row("if-both-branches", "if c:\n    q = 1\nelse:\n    q = 2\nprint(q)", reads="c", assigns="q"),
    row("if-one-branch", "if c:\n    q = 1\nprint(q)", reads="c q", assigns="q"),
    row(
        "if-raise-branch",
        "if c:\n    raise ValueError(msg)\nelse:\n    q = 2\nprint(q)",
        reads="c msg",
        assigns="q",
    ),
    row("boolop-walrus", "(a := 1) and (b := 2)\nprint(a, b)", reads="b", assigns="a b"),
    row("ifexp-walrus", "x = 1 if c else (w := 2)\nprint(w)", reads="c w", assigns="w x"),
    row("assert-message", "assert ok, (m := msg)\nprint(m)", reads="ok msg m", assigns="m"),
    # --- imports ---
    row(
        "import-forms",
        """
        import numpy as np
        import os.path
        from os import sep as s
        from . import sibling
        from .pkg import thing
        from collections.abc import *
        """,
        assigns="np os s sibling thing",
        imports="numpy os collections",
    ),
    row(
        "import-inside-function",
        "def f():\n    import pandas as pd\n    return pd",
        assigns="f",
        imports="pandas",
    ),
    # --- def / class, decorators, defaults, annotations ---
    row(
        "def-decorator-defaults-annotations",
        """
        @deco(k)
        def f(a, b=dflt, *args, c: Ann = 1, **kw) -> Ret:
            local = a + b
            return local + g
        """,
        reads="deco k dflt Ann Ret g",
        assigns="f",
    ),
    row(
        "global-bound-before-def",
        "g = 1\ndef f():\n    return g + h\nh = 2",
        reads="h",
        assigns="f g h",
    ),
    row("recursion", "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)", assigns="fact"),
    row(
        "function-local-shadows",
        "x = 1\ndef f():\n    x = 2\n    return x",
        assigns="f x",
    ),
    row(
        "local-assigned-anywhere",
        "def f():\n    print(v)\n    v = 1",
        assigns="f",
    ),
    row("def-name-rebound", "def f():\n    pass\nf = f()", assigns="f"),
    row(
        "class-body-not-enclosing-methods",
        """
        class A(Base, metaclass=Meta):
            attr = val
            other = attr
            def method(self):
                return attr, A
        """,
        reads="Base Meta val attr",
        assigns="A",
    ),
    row(
        "class-self-reference-in-body",
        "class V:\n    me = V\n    lam = lambda self: V(helper)",
        reads="V helper",
        assigns="V",
    ),
    row(
        "class-comprehension-scope",
        """
        class A:
            x = 1
            ys = [x for _ in range(3)]
            zs = [i for i in range(x)]
        """,
        reads="x",
        assigns="A",
    ),
    row(
        "class-decorated",
        "@register\nclass K:\n    pass\nk = K()",
        reads="register",
        assigns="K k",
    ),
    row(
        "class-in-function-local-lookup",
        """
        def f():
            v = 3
            class B:
                y = v
                w = u
                u = 2
            return B
        """,
        reads="u",
        assigns="f",
    ),
    # --- closures, nonlocal, global ---
    row(
        "closure",
        "def f(x):\n    def g():\n        return x + y\n    return g",
        reads="y",
        assigns="f",
    ),
    row(
        "nonlocal",
        """
        def outer():
            v = 1
            def inner():
                nonlocal v
                v += w
                return v
            return inner
        """,
        reads="w",
        assigns="outer",
    ),
    row(
        "global-assign-and-read",
        "def f():\n    global G, H\n    G = 1\n    return H",
        reads="H",
        assigns="G f",
    ),
    row(
        "global-skips-enclosing-function",
        "def f():\n    x = 1\n    def g():\n        global x\n        return x\n    return g",
        reads="x",
        assigns="f",
    ),
    # --- comprehensions and lambda ---
    row("comprehension", "[x for x in xs if x > lim]", reads="xs lim"),
    row("comprehension-nested-first-iterable", "[y for x in x for y in x]", reads="x"),
    row(
        "comprehension-inner-iterable-uses-loop-var",
        "{k: v for k in keys for v in table[k]}",
        reads="keys table",
    ),
    row(
        "generator-and-set",
        "total = sum(v * w for v in vs)\ns = {w for w in ws}",
        reads="vs w ws",
        assigns="total s",
    ),
    row(
        "comprehension-walrus-binds-module",
        "[(last := v) for v in vals]\nprint(last)",
        reads="vals last",
        assigns="last",
    ),
    row(
        "comprehension-walrus-in-function",
        "def f():\n    [(last := v) for v in vals]\n    return last",
        reads="vals",
        assigns="f",
    ),
    row("lambda", "f = lambda q, r=rr: q + r + s", reads="rr s", assigns="f"),
    # --- match ---
    row(
        "match-captures",
        """
        match cmd:
            case Point(x=0, y=yy):
                out = yy
            case [first, *rest]:
                out = first
            case {"k": kv, **others}:
                out = kv
            case Color.RED | Color.BLUE as col:
                out = col
            case _:
                out = None
        print(out)
        """,
        reads="cmd Point Color",
        assigns="yy first rest kv others col out",
    ),
    row(
        "match-no-default",
        "match cmd:\n    case [x] if x > limit:\n        out = x\nprint(out)",
        reads="cmd limit out",
        assigns="x out",
    ),
    # --- del ---
    row("del-last", "x = 1\ndel x", deletes="x"),
    row("del-then-rebind", "x = 1\ndel x\nx = 2", assigns="x", deletes="x"),
    row("del-notebook-name", "del df", reads="df", deletes="df"),
    row("del-attr-subscript", "del d['k'], obj.attr, (z, w)", reads="d obj z w", deletes="z w"),
    # --- f-strings, annotations, async, builtins ---
    row("f-string", "s = f'{a} {b!r:>{width}}'", reads="a b width", assigns="s"),
    row(
        "variable-annotations",
        "x: int = 5\ny: Foo\nz: Bar = x",
        reads="Foo Bar",
        assigns="x z",
    ),
    row(
        "async-def-and-top-level-await",
        """
        async def fetch(url):
            async with session.get(url) as resp:
                return await resp.json()
        result = await fetch(base)
        async for item in stream:
            print(item)
        """,
        reads="session base stream",
        assigns="fetch result item",
    ),
    row("builtins-excluded", "print(len(xs), __name__, __builtins__, int)", reads="xs"),
    row("builtin-shadowed", "list = [1]\nprint(list)", assigns="list"),
    # --- IPython syntax ---
    row("shell-line", "!ls $folder {pattern}", reads="get_ipython folder pattern"),
    row("shell-capture", "files = !ls {where}", reads="get_ipython where", assigns="files"),
    row("line-magic-time", "%time y = f(x)\nprint(y)", reads="get_ipython f x", assigns="y"),
    row("line-magic-value", "x = %time f()", reads="get_ipython f", assigns="x"),
    row(
        "cell-magic-time",
        "%%time\ny = f(x)\nz = y",
        reads="get_ipython f x",
        assigns="y z",
    ),
    row("timeit-does-not-bind", "%timeit -n 10 -r3 total = f(x)", reads="get_ipython f x"),
    row("cell-timeit-setup", "%%timeit -n1 a = 1\nf(a, b)", reads="get_ipython f b"),
    row(
        "cell-capture",
        "%%capture out --no-stderr\nprint(x)",
        reads="get_ipython x",
        assigns="out",
    ),
    row("cell-magic-bash-body-opaque", "%%bash\necho $HOME", reads="get_ipython"),
    row("line-magic-expansion", "%cd $target", reads="get_ipython target"),
    row("help-syntax", "df?", reads="get_ipython"),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_analyze_cell(source: str, expected: CellNames) -> None:
    got = analyze_cell(source)
    assert sorted(got.reads) == sorted(expected.reads)
    assert sorted(got.assigns) == sorted(expected.assigns)
    assert sorted(got.deletes) == sorted(expected.deletes)
    assert sorted(got.imports) == sorted(expected.imports)


def test_result_is_frozen() -> None:
    names = analyze_cell("x = 1")
    assert isinstance(names.assigns, frozenset)
    with pytest.raises(AttributeError):
        names.reads = frozenset()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("source", "lineno"),
    [("x = 1\ndef f(:\n    pass", 2), ("x = (", 1), ("for x in y\n    pass", 1)],
)
def test_syntax_error(source: str, lineno: int) -> None:
    with pytest.raises(CellSyntaxError) as caught:
        analyze_cell(source)
    error = caught.value
    assert isinstance(error, JupyterRemoteError)
    assert error.lineno == lineno
    assert f"line {lineno}" in str(error)
    assert isinstance(error.__cause__, SyntaxError)


def test_ipython_transformer_only_for_ipython_syntax(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.core.inputtransformer2 as transformer

    def refuse() -> None:
        raise AssertionError("plain Python must not go through IPython's transformer")

    monkeypatch.setattr(transformer, "TransformerManager", refuse)
    assert analyze_cell("x = y + 1").reads == {"y"}


def test_expression_too_deep_to_walk_is_over_approximated() -> None:
    # Python compiles a 2,000-term sum; the analysis falls back to supersets rather than fail.
    source = "y = 1\nx = " + " + ".join(f"v{i % 3}" for i in range(2000))
    source += "\ndel y\ndef f(p):\n    return p + len(q)"
    names = analyze_cell(source)
    assert {"v0", "v1", "v2", "q"} <= names.reads
    assert "len" not in names.reads
    assert {"x", "f"} <= names.assigns
    assert names.deletes == {"y"}


def test_too_deep_to_compile_is_a_syntax_error() -> None:
    with pytest.raises(CellSyntaxError, match="too deeply nested"):
        analyze_cell("x = " + " + ".join(["v"] * 20000))
