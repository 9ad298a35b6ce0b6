#!/usr/bin/env python3
"""FP8 against BF16 GEMM throughput, and the FP8 casts, on this machine's GPU.

Measures, with CUDA events over back-to-back repetitions (median of several batches):
  - the BF16 GEMM (torch.matmul) and the FP8 GEMM that Transformer Engine runs on Hopper
    (torch._scaled_mm: E4M3 operands, per-tensor scales, BF16 output, the "TN" layout cuBLASLt
    requires for FP8) at the same shapes;
  - a BF16 -> FP8 cast, the recipe's memory-bound kernel, as HBM bytes moved per second
    (2 read + 1 written per element).
Prints one JSON object per line. The numbers feed the profiles' efficiency.gemm_max_fp8 (see
hw_profiles/README.md); nothing here is fitted to a published run.
"""
import json
import statistics
import sys

import torch


def timed(fn, reps=20, batches=5):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(batches):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / reps)
    return statistics.median(times)


def main():
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)
    shapes = [(8192, 8192, 8192), (16384, 8192, 8192), (4096, 12288, 12288),
              (8192, 28672, 8192), (8192, 8192, 28672), (2048, 4096, 4096), (4096, 4096, 1024)]
    for m, n, k in shapes:
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(k, n, device=dev, dtype=torch.bfloat16)
        t_bf16 = timed(lambda: torch.matmul(a, b))
        a8 = a.to(torch.float8_e4m3fn)
        b8 = b.t().contiguous().to(torch.float8_e4m3fn).t()  # column-major: TN for cuBLASLt
        one = torch.ones((), device=dev, dtype=torch.float32)
        t_fp8 = timed(lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one,
                                               out_dtype=torch.bfloat16))
        flops = 2.0 * m * n * k
        print(json.dumps({"gpu": name, "op": "gemm", "m": m, "n": n, "k": k,
                          "bf16_s": t_bf16, "fp8_s": t_fp8,
                          "bf16_tflops": flops / t_bf16 / 1e12,
                          "fp8_tflops": flops / t_fp8 / 1e12}), flush=True)
        del a, b, a8, b8
    for rows, cols in [(16384, 8192), (32768, 12288)]:
        x = torch.randn(rows, cols, device=dev, dtype=torch.bfloat16)
        elems = rows * cols
        t_cast = timed(lambda: x.to(torch.float8_e4m3fn))
        print(json.dumps({"gpu": name, "op": "cast", "rows": rows, "cols": cols,
                          "cast_s": t_cast, "cast_GBps": 3.0 * elems / t_cast / 1e9}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
