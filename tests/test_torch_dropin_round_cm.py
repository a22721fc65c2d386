"""Drop-in details of softmaxkit.torch found by audit round CM (torch works, softmaxkit raised).

* ``softmax``/``log_softmax`` of a transposed, permuted or channels_last tensor kept the input's
  strides, so a following ``.view(-1)`` raised where torch's result (always C-contiguous on CPU,
  channels_last included) takes it; on the composite path and on the CPU kernels;
* ``ignore_index=torch.tensor(1)`` (a 0-dim integer tensor, which torch takes) was a TypeError;
* a double backward through a 0-dim ``logsumexp`` or an empty ``softmax``/``log_softmax`` raised
  "element 0 of tensors does not require grad": the first gradient was a constant;
* (README) ``log_softmax(float64 x, dtype=torch.float16)`` casts ``x`` first, as torch does.

Each check compares against torch in float64 where values are compared. CPU only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import softmaxkit.torch as skt
from softmaxkit import kernels
from softmaxkit.torch import functional as skf

F64 = torch.float64


@pytest.fixture(params=["kernels", "composite"])
def path(request, monkeypatch):
    """Route (log-)softmax to the CPU kernels or to the composite torch ops, whatever the size."""
    if request.param == "kernels":
        pytest.importorskip("numba")
        monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0)
    else:
        monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 10**12)
    return request.param


def _layouts():
    """(name, x, dim): non-contiguous inputs, each with every class dim."""
    g = torch.Generator().manual_seed(0)
    bases = {
        "transposed": torch.randn(6, 5, dtype=F64, generator=g).t(),
        "permuted": torch.randn(3, 4, 5, dtype=F64, generator=g).permute(2, 0, 1),
        "channels_last": torch.randn(2, 3, 4, 5, dtype=F64, generator=g).to(memory_format=torch.channels_last),
        "sliced": torch.randn(4, 10, dtype=F64, generator=g)[:, ::2],
        "sliced_rows": torch.randn(8, 5, dtype=F64, generator=g)[::2],
    }
    return [(name, x, dim) for name, x in bases.items() for dim in range(x.ndim)]


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("name, x, dim", _layouts(), ids=lambda v: v if isinstance(v, str) else None)
def test_result_is_laid_out_as_torch(path, op, name, x, dim):
    want = getattr(torch, op)(x, dim)
    # dtype=: a cast first (a copy in x's layout before)
    for options in ({}, {"dtype": F64}, {"temperature": 1.0}):
        got = getattr(skt, op)(x, dim=dim, **options)
        assert got.stride() == want.stride() and got.is_contiguous()
        torch.testing.assert_close(got.view(-1), want.view(-1), rtol=1e-12, atol=1e-13)
    assert skf._on_cpu_kernels(x) == (path == "kernels")


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_result_is_laid_out_as_torch_with_grad(path, op):
    """The autograd Function's output too; the gradient matches torch's and the output is not a view."""
    x0 = torch.randn(2, 3, 4, 5, dtype=F64, generator=torch.Generator().manual_seed(1))
    x0 = x0.to(memory_format=torch.channels_last)
    up = torch.randn(2, 3, 4, 5, dtype=F64, generator=torch.Generator().manual_seed(2))
    results = []
    for fn in (getattr(torch, op), getattr(skt, op)):
        x = x0.clone().requires_grad_()
        y = fn(x, dim=1)
        (g,) = torch.autograd.grad(y, x, up)
        results.append((y.detach(), g))
        assert y.view(-1).shape == (x.numel(),)
    (want, want_g), (got, got_g) = results
    assert got.stride() == want.stride()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(got_g, want_g, rtol=1e-12, atol=1e-13)


def test_low_precision_input_is_laid_out_as_torch(path):
    x = torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    x = x.to(memory_format=torch.channels_last)
    for options in ({}, {"dtype": torch.float32}):
        assert skt.softmax(x, dim=1, **options).stride() == torch.softmax(x, 1, **options).stride()


def test_kernel_input_is_not_written(monkeypatch):
    """The transposed rows are read where they lie: the input stays as it was."""
    pytest.importorskip("numba")
    monkeypatch.setattr(kernels, "CPU_MIN_ELEMENTS", 0)
    x = torch.randn(6, 5, dtype=F64, generator=torch.Generator().manual_seed(4)).t()
    before = x.clone()
    skt.log_softmax(x, dim=1)
    assert torch.equal(x, before)


# --------------------------------------------------------------------------- ignore_index as a tensor


@pytest.mark.parametrize("ignore_index", [torch.tensor(1), torch.tensor(1, dtype=torch.int32), np.array(1),
                                          np.int64(1), torch.tensor([1]), torch.tensor([[1]])], ids=repr)
def test_ignore_index_as_0dim_integer(ignore_index):
    x = torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(5))
    y = torch.tensor([0, 1, 1, 2])
    want = F.cross_entropy(x, y, ignore_index=ignore_index)
    torch.testing.assert_close(skt.cross_entropy(x, y, ignore_index=ignore_index), want, rtol=1e-12, atol=0)
    torch.testing.assert_close(skt.nn.CrossEntropyLoss(ignore_index=ignore_index)(x, y), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("ignore_index", [torch.tensor(1.0), torch.tensor(True), torch.tensor([1, 2]),
                                          np.array(1.0), np.array([1]), True, 1.0], ids=repr)
def test_ignore_index_refuses_other_tensors(ignore_index):
    x, y = torch.randn(4, 3, dtype=F64), torch.tensor([0, 1, 1, 2])
    with pytest.raises(TypeError, match=r"ignore_index must be an int or a one-element integer tensor, got"):
        skt.cross_entropy(x, y, ignore_index=ignore_index)


# --------------------------------------------------------------------------- double backward at the edges


@pytest.mark.parametrize(
    "call, x0",
    [
        (lambda m, t: m.logsumexp(t, dim=0), torch.tensor(0.3, dtype=F64)),
        (lambda m, t: m.softmax(t, dim=-1), torch.randn(5, 0, 0, dtype=F64)),
        (lambda m, t: m.log_softmax(t, dim=-1), torch.randn(5, 0, 0, dtype=F64)),
        (lambda m, t: m.softmax(t, dim=1), torch.randn(0, 4, dtype=F64)),
        # review R25: an empty logsumexp's gradient was a constant, off the graph
        (lambda m, t: m.logsumexp(t, dim=1), torch.randn(0, 3, dtype=F64)),
        (lambda m, t: m.logsumexp(t, dim=1), torch.randn(3, 0, dtype=F64)),
    ],
    ids=["logsumexp-0dim", "softmax-empty", "log_softmax-empty", "softmax-no-rows", "logsumexp-no-rows",
         "logsumexp-no-classes"],
)
def test_double_backward_at_the_edges_as_torch(call, x0):
    results = []
    for m in (torch, skt):
        x = x0.clone().requires_grad_()
        (g,) = torch.autograd.grad(call(m, x).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), x)
        results.append((g.detach(), h))
    for a, b in zip(*results):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("value, want", [(0.3, 0.3), (-np.inf, -np.inf), (np.inf, np.inf), (np.nan, np.nan)])
def test_logsumexp_0dim_is_its_own(value, want):
    """Value unchanged (+inf too, as torch's and the NumPy API's); the -inf gradient is 0, as any all -inf row's."""
    x = torch.tensor(value, dtype=F64, requires_grad=True)
    y = skt.logsumexp(x, dim=0)
    torch.testing.assert_close(y.detach(), torch.tensor(want, dtype=F64), equal_nan=True)
    (g,) = torch.autograd.grad(y, x)
    if value == -np.inf:
        assert g.item() == 0.0
    elif np.isfinite(value):
        assert g.item() == 1.0


# --------------------------------------------------------------------------- dtype= casts first (README)


def test_log_softmax_dtype_casts_first():
    """Guard for the README row: x is cast to float16 first (torch's dtype=), then rounded once."""
    x = torch.randn(4, 100, dtype=F64, generator=torch.Generator().manual_seed(0)) * 4
    got = skt.log_softmax(x, dim=1, dtype=torch.float16)
    cast_first = torch.log_softmax(x.to(torch.float16).double(), 1).to(torch.float16)
    assert got.dtype == torch.float16
    assert torch.equal(got, cast_first)
