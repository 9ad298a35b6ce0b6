"""A small PyTorch DDP training loop for profiling checks (2 processes under torchrun, NCCL).

It knows nothing of mpsim: `mpsim profile -- torchrun --nproc_per_node 2 torch_ddp_step.py`
must capture its kernels, NCCL all-reduces and its NVTX ranges ("step", "forward", "backward",
"optimizer") for both ranks, unmodified.
"""
import os

import torch
import torch.distributed as dist
import torch.nn as nn


def main() -> None:
    dist.init_process_group("nccl")
    rank = dist.get_rank()
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    torch.manual_seed(0)
    hidden = 4096
    model = nn.Sequential(*[nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(),
                                          nn.Linear(4 * hidden, hidden)) for _ in range(4)]).cuda()
    model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(8, 1024, hidden, device="cuda")
    for step in range(8):
        torch.cuda.nvtx.range_push("step")
        torch.cuda.nvtx.range_push("forward")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(x).float().pow(2).mean()
        torch.cuda.nvtx.range_pop()
        torch.cuda.nvtx.range_push("backward")
        loss.backward()
        torch.cuda.nvtx.range_pop()
        torch.cuda.nvtx.range_push("optimizer")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.nvtx.range_pop()
        torch.cuda.nvtx.range_pop()
    torch.cuda.synchronize()
    if rank == 0:
        print(f"loss {loss.item():.4f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
