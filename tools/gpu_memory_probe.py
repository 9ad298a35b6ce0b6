# What a training process holds on the GPU besides its tensors: CUDA context, cuBLAS workspace,
# NCCL buffers (one rank), measured as drops of the driver's free memory.
import os, json, subprocess, torch
os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
def used():  # device-wide used bytes, from the driver
    free, total = torch.cuda.mem_get_info()
    return total - free, total
out = {}
smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,memory.used,driver_version", "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout.strip()
out["nvidia_smi_before"] = smi
torch.cuda.init(); torch.zeros(1, device="cuda"); torch.cuda.synchronize()
u0, total = used(); out["total_bytes"] = total; out["after_context_bytes"] = u0
a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16); b = a @ a; torch.cuda.synchronize()
u1, _ = used(); out["after_first_bf16_gemm_bytes"] = u1; out["torch_reserved_after_gemm"] = torch.cuda.memory_reserved()
import torch.distributed as dist
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29511", RANK="0", WORLD_SIZE="1")
dist.init_process_group("nccl", device_id=torch.device("cuda:0"))
x = torch.ones(1 << 20, device="cuda"); dist.all_reduce(x); torch.cuda.synchronize()
u2, _ = used(); out["after_nccl_allreduce_bytes"] = u2; out["torch_reserved_after_nccl"] = torch.cuda.memory_reserved()
out["torch_version"] = torch.__version__; out["cuda"] = torch.version.cuda; out["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
dist.destroy_process_group()
print(json.dumps(out, indent=1))
