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


def test_sorting_the_safetensors_header_makes_rebuilds_byte_identical(tmp_path):
    import json
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file
    from uvhmr.io import sort_safetensors_metadata
    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(5, dtype=torch.int64)}
    meta = {f"k{i}": f"value {i} é" for i in range(12)}
    files = []
    for order in (sorted(meta), sorted(meta, reverse=True)):   # as two processes may write them
        f = tmp_path / f"{len(files)}.safetensors"
        save_file(tensors, str(f), metadata={k: meta[k] for k in order})
        n = int.from_bytes(f.read_bytes()[:8], "little")
        header = json.loads(f.read_bytes()[8:8 + n])
        # Put the metadata in the given order, as the writer's hash map may have.
        header = {"__metadata__": {k: meta[k] for k in order},
                  **{k: v for k, v in header.items() if k != "__metadata__"}}
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        f.write_bytes(f.read_bytes()[:8] + text + b" " * (n - len(text)) + f.read_bytes()[8 + n:])
        files.append(f)
    assert files[0].read_bytes() != files[1].read_bytes()
    for f in files:
        sort_safetensors_metadata(f)
    assert files[0].read_bytes() == files[1].read_bytes()
    with safe_open(str(files[1]), "pt") as h:
        assert h.metadata() == meta
        for k, v in tensors.items():
            assert torch.equal(h.get_tensor(k), v)
