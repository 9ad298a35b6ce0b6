// The memory timeline: annotates every op of a TrainingGraph with the bytes it allocates when it
// starts and frees when it ends (Op::alloc_bytes / Op::free_bytes), so that the engine's per-rank
// peak (engine::EngineResult::peak_bytes) is the activation peak under the real schedule and
// timing. The tensors and their sizes are memory_model.h's LayerTensors; each forward op
// allocates what it saves, the backward op that last reads it frees it:
//
//   fwd attn.norm      layer input            bwd attn.norm
//   fwd attn.qkv       its input              bwd attn.qkv.wgrad
//   fwd attn.core      Q, K, V (+ scores)     bwd attn.core
//   fwd attn.proj      its input              bwd attn.proj.wgrad
//   fwd attn.residual  dropout mask           bwd attn.residual
//   fwd mlp.norm       its input              bwd mlp.norm
//   fwd mlp.fc1        its input              bwd mlp.fc1.wgrad
//   fwd mlp.act        its input              bwd mlp.act
//   fwd mlp.fc2        its input              bwd mlp.fc2.wgrad
//   fwd mlp.residual   dropout mask           bwd mlp.residual
//   fwd embedding/lookup  dropout mask        bwd embedding/lookup
//   fwd head/norm      its input              bwd head/norm
//   fwd head/logits    its input + what the loss keeps (LossMemory)        bwd head/logits.wgrad
//
// Selective recompute: fwd attn.core saves only Q, K, V; rcp attn.core allocates the scores.
// Full recompute: the forward keeps only the layer input (fwd attn.norm); the recomputed forward
// allocates everything else as the forward would. Every byte allocated is freed within the
// iteration, so the engine's final bytes are 0. Model state is static and not on the timeline:
// model_state_bytes_per_rank gives it, to be added to the engine's peak.
//
// Rules are keyed by graph::OpLabel (op_label.h), so a rule cannot name a label the graph does
// not have. Cost: one pass over the ops and one table lookup per op.
#pragma once

#include <vector>

#include "simulator/graph/training_graph.h"
#include "simulator/memory/memory_model.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::memory {

// Sets alloc_bytes / free_bytes of every op of `g` (0 for ops that save nothing), except folded
// pipeline steps (OpKind::kStepBlock), which carry theirs from folding. `config` must be the one
// the graph was built from.
void annotate_memory(graph::TrainingGraph& g, const spec::ParallelConfig& config,
                     LossMemory loss = LossMemory::kFp32Logits);

// Static bytes (weights, gradients, optimizer state) per simulated rank, from each rank's stage.
std::vector<double> model_state_bytes_per_rank(const graph::TrainingGraph& g,
                                               const spec::ParallelConfig& config);

}  // namespace mpsim::memory
