import pytest

from uvhmr.io import atomic_path, save_with, write_bytes

OLD = b"old-content-" * 1000
NEW = b"new-content-" * 1000


def write_half_then_fail(tmp):
    with open(tmp, "wb") as f:
        f.write(NEW[: len(NEW) // 2])
    raise OSError("disk full")


def test_interrupted_atomic_path_keeps_previous_file(tmp_path):
    target = tmp_path / "result.bin"
    write_bytes(target, OLD)
    seen = []
    with pytest.raises(OSError, match="disk full"):
        with atomic_path(target) as tmp:
            seen.append(tmp)
            assert tmp != target and tmp.parent == target.parent
            write_half_then_fail(tmp)
    assert seen and not seen[0].exists()
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["result.bin"]


def test_interrupted_save_with_keeps_previous_file(tmp_path):
    target = tmp_path / "arrays.npz"
    write_bytes(target, OLD)
    with pytest.raises(OSError, match="disk full"):
        save_with(target, write_half_then_fail, suffix=".npz")
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]


def test_successful_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "result.bin"
    write_bytes(target, OLD)
    with atomic_path(target) as tmp:
        tmp.write_bytes(NEW)
        assert target.read_bytes() == OLD  # not visible before the rename
    assert target.read_bytes() == NEW
    assert [p.name for p in target.parent.iterdir()] == ["result.bin"]
