#!/usr/bin/env python3
"""What optimizer offload runs on: the GPU <-> host link and the host's Adam step.

Measures on this machine, with CUDA events / wall clock (median of several repetitions):
  - pinned host <-> GPU copies of 1 GiB, each direction alone (bytes per second);
  - torch's CPU Adam (foreach, fp32 master weights, moments and gradients) over 64M parameters
    on all of the host's cores, as bytes through host memory per second, counting 30 bytes per
    parameter the way the simulator's optimizer op does (gradient 4 read, master weight and two
    moments 12 read and 12 written, bf16 parameter 2 written).
Prints one JSON object per line; the numbers feed the profiles' node.host_link_bandwidth and
node.host_memory_bandwidth (hw_profiles/README.md).
"""
import json
import os
import statistics
import time

import torch


def main():
    name = torch.cuda.get_device_name(0)
    n = 1 << 30
    host = torch.empty(n, dtype=torch.uint8, pin_memory=True)
    dev = torch.empty(n, dtype=torch.uint8, device="cuda")
    for direction in ("h2d", "d2h"):
        times = []
        for _ in range(7):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            if direction == "h2d":
                dev.copy_(host, non_blocking=True)
            else:
                host.copy_(dev, non_blocking=True)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        t = statistics.median(times[1:])
        print(json.dumps({"gpu": name, "op": direction, "bytes": n, "seconds": t,
                          "GBps": n / t / 1e9}), flush=True)
    del host, dev
    params = 64 << 20
    p = torch.zeros(params, dtype=torch.float32)
    p.grad = torch.randn(params, dtype=torch.float32)
    opt = torch.optim.Adam([p], lr=1e-4, foreach=True)
    opt.step()
    bf16 = torch.empty(params, dtype=torch.bfloat16)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        opt.step()
        bf16.copy_(p)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(json.dumps({"op": "cpu_adam", "params": params, "threads": torch.get_num_threads(),
                      "cpus": os.cpu_count(), "seconds": t,
                      "params_per_s": params / t, "GBps_at_30B": 30 * params / t / 1e9}),
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
