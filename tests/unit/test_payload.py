"""The signed payload format, shared by the notebook and the remote runtime."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_remote.runtime import payload

KEY = b"k" * 32


def test_round_trip_with_out_of_band_buffers(tmp_path):
    values = {"arr": np.arange(1_000_000, dtype=np.float64), "s": "text", "b": bytearray(b"xyz")}
    path = tmp_path / "p.bin"
    digest = payload.dump(values, path)
    assert digest == payload.file_sha256(path)
    loaded, seen = payload.load(
        path, key=KEY, purpose="payload", signature=payload.sign(KEY, "payload", digest)
    )
    assert seen == digest
    assert np.array_equal(loaded["arr"], values["arr"])
    assert loaded["arr"].flags.writeable  # arrays come back writable, as they were
    assert loaded["s"] == "text" and loaded["b"] == bytearray(b"xyz")


def test_unsigned_and_wrong_key_are_refused(tmp_path):
    path = tmp_path / "p.bin"
    digest = payload.dump({"a": 1}, path)
    with pytest.raises(payload.SignatureError, match="unsigned"):
        payload.load(path, key=KEY, purpose="payload", signature=None)
    with pytest.raises(payload.SignatureError, match="does not match"):
        payload.load(
            path, key=b"x" * 32, purpose="payload", signature=payload.sign(KEY, "payload", digest)
        )
    # A signature for another purpose (results vs payload) does not transfer.
    with pytest.raises(payload.SignatureError):
        payload.load(
            path, key=KEY, purpose="payload", signature=payload.sign(KEY, "results", digest)
        )


def test_tampered_payload_is_refused(tmp_path):
    path = tmp_path / "p.bin"
    digest = payload.dump({"a": list(range(100))}, path)
    signature = payload.sign(KEY, "payload", digest)
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(payload.SignatureError):
        payload.load(path, key=KEY, purpose="payload", signature=signature)


def test_same_values_give_same_address(tmp_path):
    a = payload.dump({"x": np.arange(10), "y": [1, 2]}, tmp_path / "a.bin")
    b = payload.dump({"x": np.arange(10), "y": [1, 2]}, tmp_path / "b.bin")
    c = payload.dump({"x": np.arange(11), "y": [1, 2]}, tmp_path / "c.bin")
    assert a == b != c


def test_value_digest_sees_in_place_change():
    lst = [1, 2]
    before = payload.value_digest(lst)
    lst.append(3)
    assert payload.value_digest(lst) != before
    import threading

    assert payload.value_digest(threading.Lock()) is None
