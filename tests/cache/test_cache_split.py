"""The cache folders' shared writer/reader: round trip, and clear errors for incomplete folders."""
import numpy as np
import pytest

from uvhmr.cache import CacheSplit, close_split_arrays, open_split_arrays


class Toy(CacheSplit):
    rule = "toy_cache"
    names = ("a", "b")


def _write(tmp_path, n=4):
    arr = open_split_arrays(tmp_path / "test", {"a": ((n, 3), np.float32), "b": ((n,), np.int64)})
    arr["a"][:] = np.arange(n * 3).reshape(n, 3)
    arr["b"][:] = np.arange(n)
    close_split_arrays(tmp_path / "test", arr, {"samples": n})


def test_round_trip(tmp_path):
    _write(tmp_path)
    c = Toy(tmp_path, "test")
    assert len(c) == 4 and c.arrays["a"][3, 2] == 11 and list(c.arrays["b"]) == [0, 1, 2, 3]


def test_missing_meta_and_truncated_array_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the workflow's toy_cache rule"):
        Toy(tmp_path, "test")
    _write(tmp_path)
    f = tmp_path / "test/a.npy"
    f.write_bytes(f.read_bytes()[:60])
    with pytest.raises(ValueError, match=str(f)):
        Toy(tmp_path, "test")
