import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import uvhmr.train.checkpoint as ck
from uvhmr.train.checkpoint import (
    CheckpointError,
    checkpoint_dir,
    hash_inputs,
    load_latest,
    resumable_loop,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

SRC = Path(ck.__file__).resolve().parents[2]

# A small training run: an MLP fitted with Adam on data drawn from torch, NumPy and Python
# RNGs inside the step, so resuming is exact only if all three RNG states are restored.
TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, random, signal, sys
    import numpy as np
    import torch
    from uvhmr.train.checkpoint import resumable_loop

    ckpt_dir, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)

    def init_state():
        model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        return {"model": model, "opt": opt, "losses": []}

    def step_fn(state, step):
        print(f"step {step}", flush=True)
        x = torch.randn(8, 4) + float(np.random.randn()) + random.gauss(0.0, 1.0)
        y = torch.sin(x.sum(1, keepdim=True))
        loss = torch.nn.functional.mse_loss(state["model"](x), y)
        state["opt"].zero_grad()
        loss.backward()
        state["opt"].step()
        state["losses"].append(loss.item())
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    state = resumable_loop(ckpt_dir, 30, init_state, step_fn, every=5)
    torch.save({"params": state["model"].state_dict(), "losses": torch.tensor(state["losses"])}, out)
    """
)


def start_training(script, ckpt, out, kill_at=-1):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(script), str(ckpt), str(out), str(kill_at)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc):
    stdout, stderr = proc.communicate(timeout=120)
    steps = [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("step ")]
    return proc.returncode, steps, stderr


def test_sigkilled_run_resumes_to_identical_parameters(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    ref_ckpt, ckpt = tmp_path / "ref", tmp_path / "ckpt"
    ref_out, out = tmp_path / "ref.pt", tmp_path / "out.pt"

    # The uninterrupted reference and the run that dies at step 17 run side by side.
    ref = start_training(script, ref_ckpt, ref_out)
    killed = start_training(script, ckpt, out, kill_at=17)
    rc, steps, err = finish(killed)
    assert rc == -9, err
    assert steps == list(range(18))
    assert not out.exists()
    # Checkpoints after 5, 10, 15 steps; only the newest two kept.
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-00000010.pt", "step-00000015.pt"]
    # What a writer killed mid-save would leave behind: must be ignored and cleaned up.
    leftover = ckpt / ".step-00000020.pt.k1ll3d.tmp"
    leftover.write_bytes(b"half a checkpoint")

    resumed = start_training(script, ckpt, out)
    rc, steps, err = finish(resumed)
    assert rc == 0, err
    assert steps == list(range(15, 30))  # resumed, not restarted
    assert not leftover.exists()

    rc, steps, err = finish(ref)
    assert rc == 0, err
    assert steps == list(range(30))

    a = torch.load(ref_out, weights_only=True)
    b = torch.load(out, weights_only=True)
    assert a["params"].keys() == b["params"].keys()
    for name in a["params"]:
        assert torch.equal(a["params"][name], b["params"][name]), name
    assert torch.equal(a["losses"], b["losses"])


def test_resumable_loop_in_process(tmp_path):
    calls = []

    def step_fn(state, step):
        calls.append(step)
        return {"n": state["n"] + 1, "w": state["w"] * 2}

    def init():
        return {"n": 0, "w": torch.ones(2)}

    state = resumable_loop(tmp_path, 10, init, step_fn, every=4)
    assert calls == list(range(10)) and state["n"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000008.pt", "step-00000010.pt"]
    step, saved = load_latest(tmp_path)
    assert step == 10 and saved["n"] == 10 and torch.equal(saved["w"], torch.full((2,), 1024.0))
    assert "rng" in saved

    calls.clear()
    again = resumable_loop(tmp_path, 10, init, step_fn, every=4)
    assert calls == [] and again["n"] == 10 and torch.equal(again["w"], saved["w"])
    with pytest.raises(CheckpointError, match="beyond"):
        resumable_loop(tmp_path, 5, init, step_fn)


@pytest.fixture
def keep_global_rng():
    """This test reseeds the process-wide RNGs; put them back for the tests after it."""
    saved = rng_state()
    yield
    set_rng_state(saved)


def test_rng_state_survives_weights_only_checkpoint(tmp_path, keep_global_rng):
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    # Leave cached Gaussians in both Python's and NumPy's state so those fields are non-trivial.
    random.gauss(0.0, 1.0)
    np.random.randn()
    save_checkpoint(tmp_path, 1, {"rng": rng_state()})

    def draw():
        return (random.random(), random.gauss(0.0, 1.0), np.random.randn(3).tolist(), torch.rand(3))

    first = draw()
    step, state = load_latest(tmp_path)
    set_rng_state(state["rng"])
    second = draw()
    assert first[:3] == second[:3]
    assert torch.equal(first[3], second[3])


def test_truncated_checkpoint_error_names_the_file(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": torch.arange(1000.0)})
    path = save_checkpoint(tmp_path, 2, {"w": torch.arange(1000.0)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        load_latest(tmp_path)
    assert str(path) in str(info.value)


def test_keeps_only_the_last_two(tmp_path):
    for step in (3, 1, 7, 5):
        save_checkpoint(tmp_path, step, {"step": step})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000005.pt", "step-00000007.pt"]
    assert load_latest(tmp_path) == (7, {"step": 7})
    assert load_latest(tmp_path / "missing") is None


def test_hash_inputs_tracks_params_and_input_bytes(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.bin").write_bytes(bytes(range(256)) * 10)
    (data / "sub" / "b.txt").write_text("hello")
    config = tmp_path / "config.json"
    config.write_text("{}")
    params = {"lr": 1e-3, "steps": 100, "layers": [64, 64]}

    key = hash_inputs(params, [data, config])
    assert len(key) == 16 and int(key, 16) >= 0
    assert hash_inputs(dict(reversed(list(params.items()))), [data, config]) == key
    assert hash_inputs({**params, "lr": 2e-3}, [data, config]) != key
    assert hash_inputs(params, [config, data]) != key

    raw = bytearray((data / "a.bin").read_bytes())
    raw[1234] ^= 1
    (data / "a.bin").write_bytes(bytes(raw))
    flipped = hash_inputs(params, [data, config])
    assert flipped != key
    raw[1234] ^= 1
    (data / "a.bin").write_bytes(bytes(raw))
    assert hash_inputs(params, [data, config]) == key

    (data / "sub" / "b.txt").rename(data / "sub" / "c.txt")
    assert hash_inputs(params, [data, config]) != key

    with pytest.raises(FileNotFoundError):
        hash_inputs(params, [tmp_path / "nope"])
    with pytest.raises(TypeError):
        hash_inputs({"model": object()}, [])


def test_hash_inputs_ignores_where_inputs_live(tmp_path):
    for where in ("x", "y"):
        (tmp_path / where / "data").mkdir(parents=True)
        (tmp_path / where / "data" / "f").write_bytes(b"same")
    assert hash_inputs({}, [tmp_path / "x" / "data"]) == hash_inputs({}, [tmp_path / "y" / "data"])


def test_checkpoint_dir_layout(tmp_path):
    assert checkpoint_dir(tmp_path, "train_dmp", None, "abc") == tmp_path / "checkpoints" / "train_dmp" / "abc"
    assert checkpoint_dir(tmp_path, "train_dmp", "small", "abc") == tmp_path / "checkpoints" / "train_dmp-small" / "abc"
    with pytest.raises(ValueError):
        checkpoint_dir(tmp_path, "train", "../x", "abc")


def test_a_trainers_key_covers_the_code_its_command_runs():
    """A code change must start a fresh run: the key's inputs include the files `uvhmr train-dmp` runs
    (the same list dvc.yaml's train_dmp stage depends on), and only those."""
    from uvhmr.code_deps import code_deps
    from uvhmr.train.checkpoint import code_files
    files = code_files("train-dmp")
    assert all(f.is_file() for f in files)
    rel = sorted("src/uvhmr/" + f.as_posix().split("/uvhmr/", 1)[1] for f in files)
    assert rel == code_deps("train-dmp")
    assert "src/uvhmr/models/dmp.py" in rel and "src/uvhmr/train/dmp.py" in rel
    assert "src/uvhmr/train/ik.py" not in rel
