"""Bundles are content-addressed and deterministic."""

from __future__ import annotations

import zipfile

from jupyter_remote.bundle import JobBundle, zip_tree


def test_zip_is_deterministic_and_skips_caches(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "sub" / "m.py").write_text("y = 2\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    first = zip_tree(pkg)
    (pkg / "__init__.py").touch()  # a newer mtime must not change the archive
    assert zip_tree(pkg) == first
    names = zipfile.ZipFile(__import__("io").BytesIO(first)).namelist()
    assert names == ["pkg/__init__.py", "pkg/sub/m.py"]


def test_addresses_depend_on_name_and_content(tmp_path):
    a, b = JobBundle(), JobBundle()
    assert a.add_bytes("cell.py", b"x = 1") == b.add_bytes("cell.py", b"x = 1")
    assert a.add_bytes("cell.py", b"x = 2") != b.add_bytes("cell.py", b"x = 1")
    assert a.add_bytes("other.py", b"x = 1") != b.add_bytes("cell.py", b"x = 1")
    group = a.add_group({"one.py": b"1", "two.py": b"2"})
    assert group["one.py"].split("/")[0] == group["two.py"].split("/")[0]
    manifest = a.manifest("s3://bucket/jr/parts")
    assert manifest[0] == {"prefix": "s3://bucket/jr/parts/"}
    assert set(manifest[1:]) == {p.relpath for p in a.parts}
