"""Mixed precision (uvhmr.device: forward_in, training_precision)."""
import pytest
import torch

from uvhmr import device
from uvhmr.device import forward_in, training_precision


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 4)

    def forward(self, x):
        y = self.lin(x)
        return {"y": y, "dtype_inside": torch.tensor(int(y.dtype == torch.bfloat16)), "n": 3}


def test_bf16_forward_computes_in_bf16_and_returns_fp32():
    net, x, cpu = Net(), torch.randn(5, 8), torch.device("cpu")
    out = forward_in("bf16", cpu, net, x)
    assert out["dtype_inside"].item() == 1 and out["y"].dtype == torch.float32 and out["n"] == 3
    ref = forward_in("fp32", cpu, net, x)
    assert ref["dtype_inside"].item() == 0 and ref["y"].dtype == torch.float32
    # bf16 keeps about 3 significant digits: close to the fp32 result, not equal to it
    assert torch.allclose(out["y"], ref["y"], atol=0.05) and not torch.equal(out["y"], ref["y"])
    out["y"].sum().backward()
    assert net.lin.weight.grad.dtype == torch.float32


@pytest.mark.parametrize("setting", ["fp32", "bf16"])
def test_an_explicit_precision_is_kept(setting):
    assert training_precision(torch.device("cpu"), setting) == setting


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_is_bf16_only_where_the_hardware_computes_it(monkeypatch, native, expected):
    monkeypatch.setattr(device, "native_bf16", lambda device: native)
    assert training_precision(torch.device("cpu"), "auto") == expected
