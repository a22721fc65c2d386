"""Shared fixtures: a seeded RNG, the dtype tolerance table, torch availability."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

# Hypothesis: deterministic in CI, no deadline (the machine is shared and noisy).
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

#: Relative tolerance of each compute dtype against the float64 oracle.
RTOL = {np.float64: 1e-12, np.float32: 1e-6, np.float16: 2e-3}
ATOL = {np.float64: 1e-12, np.float32: 1e-6, np.float16: 2e-3}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def float_dtype(request):
    return request.param


def tol(dtype) -> dict:
    dtype = np.dtype(dtype).type
    return {"rtol": RTOL[dtype], "atol": ATOL[dtype]}
