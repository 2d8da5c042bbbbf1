"""Tiny synthetic dataset splits for tests: a stand-in mocap source and a builder around the
real dataset rule (shared by the dataset, DMP and later-stage tests)."""
from pathlib import Path

import pytest
import torch

from uvhmr.config import BodyModelParams, DatasetParams, Resources, RuleParams, RunParams
from uvhmr.data.sources import run_dataset
from uvhmr.data.sources import synthetic as syn

SIZE = 48


class StandInMocap:
    """The mocap rule's reader API (len, batch -> {"pose"}) over a few mild random poses."""

    def __init__(self, joints: int, n: int = 40, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.pose = 0.25 * torch.randn(n, joints, 3, generator=g)
        self.pose[:, 0] = 0

    def __len__(self):
        return len(self.pose)

    def batch(self, idx):
        return {"pose": self.pose[torch.as_tensor(idx).long()]}


def section(**kw):
    base = dict(image_size=SIZE, n_dmp_train=12, n_stage2_train=4, n_test=6, shard_size=8, texture_size=64,
                resources=Resources(threads=1))
    return DatasetParams(**{**base, **kw})


def rule(seed=0, **kw):
    return RuleParams("smoke", "dataset", None, RunParams(seed=seed), BodyModelParams(), section(**kw))


def build(anny_dir, uv_dir, out, split="dmp_train", seed=0, **kw):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(syn, "open_mocap", lambda d, s: StandInMocap(36, seed={"train": 0, "val": 1}[s]))
        run_dataset(rule(seed, **kw), anny_dir, uv_dir, Path("unused-mocap"), split, out, log=lambda *_: None)
    return out
