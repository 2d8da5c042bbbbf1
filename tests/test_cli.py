"""cli's per-rule set-up: threads, seed and deterministic kernels from the rule's parameters."""
import subprocess
import sys

PROBE = """
import sys
from types import SimpleNamespace
import torch
from uvhmr.cli import _threads_and_seed
assert not torch.are_deterministic_algorithms_enabled()
rp = SimpleNamespace(resources=SimpleNamespace(threads=1), run=SimpleNamespace(seed=3, deterministic=True))
_threads_and_seed(rp)
print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
      torch.get_num_threads(), torch.initial_seed(), "torch._inductor" in sys.modules)
"""


def test_threads_seed_and_deterministic_kernels_without_importing_inductor():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    # deterministic and warn-only on, 1 thread, seed 3; torch._inductor (1.6 s of import) not loaded
    assert out.split() == ["True", "True", "1", "3", "False"]
