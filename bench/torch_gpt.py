#!/usr/bin/env python3
"""Plain PyTorch GPT training throughput: the baseline `mpsim train` is compared with.

A GPT-2 architecture (learned positions, pre-LayerNorm blocks, GeLU-tanh MLP of 4h, linear biases,
tied input/output embeddings, no dropout) trained on uniform synthetic tokens on one GPU with the
stock fast paths: bf16 autocast over fp32 parameters, F.scaled_dot_product_attention(is_causal=True),
fused AdamW (weight decay on 2-D weights only), gradient-norm clipping, optionally torch.compile.

Prints one JSON line. Metrics, each defined once here:
  iteration_s                median wall time of one measured step (forward, backward, clip,
                             optimizer step), CUDA-synchronised before and after; warm-up steps
                             are not measured
  tokens_per_s               mbs * seq / iteration_s
  params                     trainable parameters (tied embedding counted once, padded vocabulary)
  model_flops_per_iteration  72 B s L h^2 (1 + s/(6h) + V/(12 h L)), B = mbs, V unpadded
                             (Narayanan et al. 2021; simulator/graph/model_math.h)
  mfu                        model_flops_per_iteration / iteration_s / 989.4e12 (H100 SXM dense
                             bf16 peak, NVIDIA H100 datasheet)
  peak_memory_bytes          torch.cuda.max_memory_allocated() over the measured steps
                             (counter reset after warm-up; weights, gradients and optimizer
                             state allocated earlier are included)

Runs on the GPU machine: /opt/torch/.venv/bin/python bench/torch_gpt.py --layers 12 --hidden 768 ...
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

H100_BF16_DENSE_PEAK_FLOPS = 989.4e12  # NVIDIA H100 SXM5 datasheet, dense (no sparsity)


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(hidden, eps=1e-5)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-5)
        self.fc1 = nn.Linear(hidden, 4 * hidden)
        self.fc2 = nn.Linear(4 * hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(h, dim=2)
        q, k, v = (t.view(b, s, self.heads, h // self.heads).transpose(1, 2) for t in (q, k, v))
        ctx = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(ctx.transpose(1, 2).reshape(b, s, h))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, layers: int, hidden: int, heads: int, seq: int, vocab: int, std: float):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(seq, hidden)
        self.blocks = nn.ModuleList(Block(hidden, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden, eps=1e-5)
        # GPT-2 / Megatron-LM initialisation: N(0, std), output projections N(0, std/sqrt(2L)).
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(("proj.weight", "fc2.weight")):
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * layers))
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.word(tokens) + self.position(pos)
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.word.weight)  # tied output embedding
        # autocast computes cross_entropy in fp32
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


def model_flops_per_iteration(layers, hidden, seq, vocab, sequences):
    return (72.0 * sequences * seq * layers * hidden ** 2 *
            (1 + seq / (6 * hidden) + vocab / (12 * hidden * layers)))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--vocab-multiple", type=int, default=128,
                   help="pad the embedding table to a multiple of this (Megatron-LM style; "
                        "synthetic tokens never use the padding ids)")
    p.add_argument("--mbs", type=int, default=8, help="sequences per step")
    p.add_argument("--steps", type=int, default=20, help="measured steps")
    p.add_argument("--warmup", type=int, default=5, help="unmeasured steps before them")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip; 0 = off")
    p.add_argument("--init-std", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=1234)
    a = p.parse_args(argv)
    if a.hidden % a.heads != 0:
        p.error(f"hidden ({a.hidden}) is not divisible by heads ({a.heads})")
    if a.steps < 1 or a.warmup < 0:
        p.error("need --steps >= 1 and --warmup >= 0")
    return a


def main(argv):
    a = parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("torch_gpt.py: no CUDA device")
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device = torch.device("cuda")
    padded_vocab = -(-a.vocab // a.vocab_multiple) * a.vocab_multiple

    model = Gpt(a.layers, a.hidden, a.heads, a.seq, padded_vocab, a.init_std).to(device)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    step_model = torch.compile(model) if a.compile else model

    generator = torch.Generator(device=device)
    generator.manual_seed(a.seed)

    def step():
        tokens = torch.randint(0, a.vocab, (a.mbs, a.seq + 1), device=device, generator=generator)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_model(tokens[:, :-1], tokens[:, 1:])
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    loss = None
    for _ in range(a.steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)

    iteration_s = statistics.median(times)
    flops = model_flops_per_iteration(a.layers, a.hidden, a.seq, a.vocab, a.mbs)
    print(json.dumps({
        "layers": a.layers, "hidden": a.hidden, "heads": a.heads, "seq": a.seq,
        "vocab": a.vocab, "padded_vocab": padded_vocab, "mbs": a.mbs,
        "steps": a.steps, "warmup": a.warmup, "compile": a.compile,
        "tokens_per_s": a.mbs * a.seq / iteration_s,
        "iteration_s": iteration_s,
        "params": params,
        "model_flops_per_iteration": flops,
        "mfu": flops / iteration_s / H100_BF16_DENSE_PEAK_FLOPS,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(),
        "final_loss": float(loss),
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
