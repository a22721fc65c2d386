"""Drop-in details of softmaxkit.torch found by audit round AZ.

* ``torch.jit.trace`` recorded the NumPy kernels' loss as a constant, so a
  traced model returned the example input's loss for every input;
* a class weight given as a list became an int64 buffer, which truncated a
  float checkpoint's weights on load (torch refuses non-tensor weights);
* meta tensors (FSDP meta init, shape inference) failed deep in a copy;
* ``size_average=``/``reduce=`` in the functional gave Python's bare error;
* ``ignore_index=None`` (torch 2.13's linear-loss default, -100) was refused.

Each check compares against torch or against eager softmaxkit. CPU only.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import softmaxkit.torch as skt
from softmaxkit.torch import functional as SF


def _trace(fn, example):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python-side shape checks
        return torch.jit.trace(fn, example, check_trace=False)


# --------------------------------------------------------------------------- torch.jit.trace


@pytest.mark.parametrize("requires_grad", [False, True])
def test_traced_cross_entropy_follows_new_inputs(requires_grad):
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(16, 5, generator=g), 3 * torch.randn(16, 5, generator=g)
    y = torch.randint(0, 5, (16,), generator=g)
    traced = _trace(skt.CrossEntropyLoss(), (x1, y))
    a = x2.clone().requires_grad_(requires_grad)
    got = traced(a, y)
    torch.testing.assert_close(got, F.cross_entropy(x2, y))
    torch.testing.assert_close(got, skt.CrossEntropyLoss()(x2, y))
    if requires_grad:  # the traced graph is differentiable too
        got.backward()
        b = x2.clone().requires_grad_()
        F.cross_entropy(b, y).backward()
        torch.testing.assert_close(a.grad, b.grad)


class _Eval(torch.nn.Module):
    def __init__(self, loss):
        super().__init__()
        self.head, self.loss = torch.nn.Linear(8, 5), loss

    def forward(self, x, y):
        return self.loss(self.head(x), y)


def test_traced_model_with_loss_follows_new_inputs():
    torch.manual_seed(0)
    x1, x2 = torch.randn(16, 8), 3 * torch.randn(16, 8)
    y = torch.randint(0, 5, (16,))
    loss = skt.CrossEntropyLoss(weight=torch.tensor([0.5, 1.0, 2.5, 1.0, 1.0]), label_smoothing=0.1)
    model = _Eval(loss).eval()
    with torch.no_grad():  # an evaluation trace: no autograd Function to re-run, the loss alone
        traced = _trace(model, (x1, y))
        expected = F.cross_entropy(model.head(x2), y, weight=loss.weight, label_smoothing=0.1)
        torch.testing.assert_close(traced(x2, y), expected)


def test_traced_linear_cross_entropy_follows_new_inputs():
    g = torch.Generator().manual_seed(1)
    h1, h2 = torch.randn(6, 4, generator=g), 3 * torch.randn(6, 4, generator=g)
    w = torch.randn(5, 4, generator=g)
    y = torch.randint(0, 5, (6,), generator=g)
    traced = _trace(lambda h: SF.linear_cross_entropy(h, w, y), (h1,))
    torch.testing.assert_close(traced(h2), F.cross_entropy(h2 @ w.T, y))
    torch.testing.assert_close(traced(h2), SF.linear_cross_entropy(h2, w, y))


def test_traced_softmax_follows_new_inputs():
    x1, x2 = torch.randn(4, 300), 3 * torch.randn(4, 300)  # above the CPU kernels' size threshold
    traced = _trace(lambda x: SF.log_softmax(x, dim=-1), (x1,))
    torch.testing.assert_close(traced(x2), torch.log_softmax(x2, -1))


# --------------------------------------------------------------------------- class weights


@pytest.mark.parametrize("weight", [[1, 1, 1], (0.5, 1.0, 2.5), [1.0, 2.0, 3.0]])
def test_module_list_weight_is_a_float_buffer(weight):
    """A list of ints was an int64 buffer that truncated a loaded float checkpoint ([0.5, 1.0, 2.5] loaded as
    [0, 1, 2]: loss 1.9432 for torch's 1.7891) and that .half() skipped. torch refuses lists; softmaxkit keeps
    accepting them, as numbers in torch's default float dtype."""
    for module, key in ((skt.CrossEntropyLoss(weight=weight), "weight"),
                        (skt.LinearCrossEntropyLoss(class_weight=weight), "class_weight")):
        buffer = getattr(module, key)
        assert buffer.dtype == torch.get_default_dtype()
        torch.testing.assert_close(buffer, torch.tensor(weight, dtype=torch.get_default_dtype()))
    s = skt.CrossEntropyLoss(weight=weight)
    s.load_state_dict({"weight": torch.tensor([0.5, 1.0, 2.5])})
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    torch.testing.assert_close(s(x, y), F.cross_entropy(x, y, weight=torch.tensor([0.5, 1.0, 2.5])))
    assert s.half().weight.dtype == torch.float16


def test_module_refuses_other_weight_objects():
    with pytest.raises(TypeError, match=r"torch\.tensor\(weight, dtype=torch\.float32\)"):
        skt.CrossEntropyLoss(weight="1,1,1")


def test_module_refuses_integer_weight_tensor():
    # an int buffer would truncate a float checkpoint's weights on load_state_dict, and .half() skips it
    with pytest.raises(TypeError, match=r"floating"):
        skt.CrossEntropyLoss(weight=torch.tensor([1, 1, 1]))


def test_float_weight_checkpoint_round_trip():
    ck = torch.nn.CrossEntropyLoss(weight=torch.tensor([0.5, 1.0, 2.5])).state_dict()
    s = skt.CrossEntropyLoss(weight=torch.ones(3))
    s.load_state_dict(ck)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    torch.testing.assert_close(s(x, y), F.cross_entropy(x, y, weight=ck["weight"]))
    assert s.double().weight.dtype == torch.float64


# --------------------------------------------------------------------------- meta tensors


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_meta_tensors_give_meta_results_as_torch(reduction):
    x, y = torch.randn(4, 3, device="meta"), torch.zeros(4, dtype=torch.int64, device="meta")
    expected = torch.nn.CrossEntropyLoss(reduction=reduction)(x, y)
    got = skt.CrossEntropyLoss(reduction=reduction, weight=torch.ones(3)).to("meta")(x, y)
    assert got.is_meta and got.shape == expected.shape and got.dtype == expected.dtype
    h, w = torch.randn(4, 2, device="meta"), torch.randn(3, 2, device="meta")
    got = SF.linear_cross_entropy(h, w, y, reduction=reduction)
    assert got.is_meta and got.shape == expected.shape
    assert SF.softmax(torch.randn(4, 300, device="meta"), dim=-1).is_meta


# --------------------------------------------------------------------------- torch's spellings


@pytest.mark.parametrize("name", ["size_average", "reduce"])
def test_functional_gives_advice_for_deprecated_torch_options(name):
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    with pytest.raises(TypeError, match=r"reduction="):
        SF.cross_entropy(x, y, **{name: False})
    # None is torch's default for both: a no-op there, so a no-op here
    torch.testing.assert_close(SF.cross_entropy(x, y, **{name: None}), F.cross_entropy(x, y))


def test_functional_refuses_unknown_option_by_name():
    with pytest.raises(TypeError, match=r"no option 'bogus'"):
        SF.cross_entropy(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), bogus=1)


def test_linear_ignore_index_none_is_torch_default():
    g = torch.Generator().manual_seed(2)
    h, w = torch.randn(4, 2, generator=g), torch.randn(3, 2, generator=g)
    y = torch.tensor([0, -100, 2, 1])
    expected = F.cross_entropy(h @ w.T, y)
    torch.testing.assert_close(SF.linear_cross_entropy(h, w, y, ignore_index=None), expected)
    torch.testing.assert_close(skt.LinearCrossEntropyLoss(ignore_index=None)(h, w, y), expected)
    loss, *_ = SF.linear_cross_entropy_and_grad(h, w, y, ignore_index=None)
    torch.testing.assert_close(loss, expected)


def test_and_grad_functions_refuse_jit_trace():
    # they run outside autograd on the NumPy kernels: a trace would return the example's values forever
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    with pytest.raises(RuntimeError, match="recorded as constants"):
        _trace(lambda a: SF.cross_entropy_and_grad(a, y)[0], (x,))
    w = torch.randn(3, 2)
    with pytest.raises(RuntimeError, match="recorded as constants"):
        _trace(lambda h: SF.linear_cross_entropy_and_grad(h, w, y)[0], (torch.randn(4, 2),))


def test_module_numpy_float_weight_is_accepted_as_before():
    """Review R9: a float NumPy class weight was accepted before the list fix (a float64 buffer, the loss
    torch gives with that tensor); the fix refused it. Integer arrays stay refused, as integer tensors."""
    w = np.array([0.5, 1.0, 2.5])
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    module = skt.CrossEntropyLoss(weight=w)
    assert module.weight.dtype == torch.float64
    torch.testing.assert_close(module(x.double(), y), F.cross_entropy(x.double(), y, weight=torch.from_numpy(w)))
    with pytest.raises(TypeError):
        skt.CrossEntropyLoss(weight=np.array([1, 1, 1]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_meta_low_precision_logits_give_meta_results(dtype):
    """Review R9: 16-bit meta logits raised 'unknown device type for autocast' (the autocast test asked about
    the meta device)."""
    x, y = torch.empty(4, 5, device="meta", dtype=dtype), torch.zeros(4, dtype=torch.int64, device="meta")
    for reduction in ("mean", "none"):
        expected = torch.nn.functional.cross_entropy(x, y, reduction=reduction)
        got = SF.cross_entropy(x, y, reduction=reduction)
        assert got.is_meta and got.shape == expected.shape and got.dtype == expected.dtype


def test_traced_bad_label_names_it_as_eager_does():
    """Review R9: a bad label in a traced call reached NumPy with a 0-d tensor class count (TypeError)."""
    x, y = torch.randn(3, 7), torch.tensor([0, 9, 1])
    with pytest.raises(ValueError, match="9"):
        torch.jit.trace(lambda a, b: SF.cross_entropy(a, b), (x, y), check_trace=False)
