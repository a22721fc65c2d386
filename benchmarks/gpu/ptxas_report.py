"""Registers and spills of the Triton kernels on sm_90, without a GPU.

Compiles each kernel configuration that :func:`launch_shape` picks (Triton
AOT: ``triton.compile`` with a ``GPUTarget``) and runs the ptxas bundled with
Triton in verbose mode. A configuration that spills (``spill stores`` > 0)
moves local-memory bytes on every row and should get a smaller single-block
limit in ``softmaxkit/kernels/triton/_common.py``.

    python benchmarks/gpu/ptxas_report.py            # all configurations
    python benchmarks/gpu/ptxas_report.py --spills   # only those that spill

Uses Triton internals (``ASTSource``), checked with Triton 3.7.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from softmaxkit.kernels.triton import cross_entropy as ce
from softmaxkit.kernels.triton import softmax as sm
from softmaxkit.kernels.triton._common import launch_shape

TARGET = GPUTarget("cuda", 90, 32)
PTXAS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")


def ptxas_info(fn, signature, constexprs, num_warps) -> str:
    kernel = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                            target=TARGET, options={"num_warps": num_warps})
    with tempfile.TemporaryDirectory() as tmp:
        ptx = os.path.join(tmp, "k.ptx")
        with open(ptx, "w") as f:
            f.write(kernel.asm["ptx"])
        out = subprocess.run([PTXAS, "-v", "--gpu-name", "sm_90a", ptx, "-o", os.path.join(tmp, "k.cubin")],
                             capture_output=True, text=True, check=True)
    return " ".join(line.split("info    : ")[-1].strip() for line in out.stderr.splitlines()
                    if "Used" in line or "spill" in line)


def configurations():
    """(name, fn, signature, constexprs, num_warps) for the launched configurations."""
    for c, dt, log in itertools.product((32768, 131072), ("*bf16", "*fp32"), (False, True)):
        block, single, warps = launch_shape(c)
        sig = {"x_ptr": dt, "y_ptr": dt, "n_cols": "i32", "stride_x": "i64", "stride_y": "i64", "inv_t": "fp32",
               "LOG": "constexpr", "BLOCK": "constexpr", "SINGLE": "constexpr"}
        yield (f"softmax fwd C={c} {dt[1:]} log={log}", sm._softmax_fwd_kernel, sig,
               {"LOG": log, "BLOCK": block, "SINGLE": single}, warps)
        block, single, warps = launch_shape(c, live=2)
        sig = {"y_ptr": dt, "dy_ptr": dt, "dx_ptr": dt, "n_cols": "i32", "stride_y": "i64", "stride_dy": "i64",
               "stride_dx": "i64", "inv_t": "fp32", "LOG": "constexpr", "BLOCK": "constexpr", "SINGLE": "constexpr"}
        yield (f"softmax bwd C={c} {dt[1:]} log={log}", sm._softmax_bwd_kernel, sig,
               {"LOG": log, "BLOCK": block, "SINGLE": single}, warps)
    for c, dt, soft, weight, smooth, cap in itertools.product(
        (32768, 131072), ("*bf16", "*fp32"), (False, True), (False, True), (False, True), (False, True)
    ):
        block, single, warps = launch_shape(c, live=1 + (soft or smooth) + cap)
        sig = {"x_ptr": dt, "stride_x": "i64", "t_ptr": dt if soft else "*i64", "stride_t": "i64",
               "w_ptr": "*fp32", "g_ptr": dt, "stride_g": "i64", "loss_ptr": "*fp32", "scale_ptr": "*fp32",
               "stride_scale": "i32", "n_cols": "i32", "ignore_index": "i32", "eps": "fp32", "zeta": "fp32",
               "cap": "fp32", **{k: "constexpr" for k in ("SOFT", "HAS_WEIGHT", "HAS_SMOOTH", "HAS_ZLOSS",
                                                          "HAS_CAP", "WRITE_GRAD", "NEED_Q", "BLOCK", "SINGLE")}}
        consts = dict(SOFT=soft, HAS_WEIGHT=weight, HAS_SMOOTH=smooth, HAS_ZLOSS=True, HAS_CAP=cap,
                      WRITE_GRAD=True, NEED_Q=soft or smooth, BLOCK=block, SINGLE=single)
        name = f"CE C={c} {dt[1:]} soft={soft:d} weight={weight:d} smooth={smooth:d} cap={cap:d} B={block}"
        yield name, ce._cross_entropy_kernel, sig, consts, warps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spills", action="store_true", help="print only configurations that spill")
    args = ap.parse_args(argv)
    spilling = 0
    for name, fn, sig, consts, warps in configurations():
        info = ptxas_info(fn, sig, consts, warps)
        spills = "0 bytes spill stores" not in info
        spilling += spills
        if spills or not args.spills:
            print(f"{name:<70} warps={warps:<2} {info}", flush=True)
    print(f"{spilling} configuration(s) spill")
    return 0


if __name__ == "__main__":
    sys.exit(main())
