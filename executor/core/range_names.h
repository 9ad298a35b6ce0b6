// The NVTX range names the executor opens around its work: exactly the op names of the
// simulator's graph (simulator/graph/op_name.h, docs/op_names.md), so a profiled run joins 1:1
// with a simulated one. Besides op names the executor opens two kinds of enclosing ranges that
// are not ops: `iteration/<N>` around an iteration and `pipeline/<fwd|bwd>/mb<N>[/c<chunk>]`
// around one pipeline step. Pipeline receives that are not merged with a send are named
// `comm/pp/recv/<fwd|bwd>/mb<N>[/c<chunk>]`. Labels are the simulator's graph::OpLabel, written
// with its name table (simulator/graph/op_label.h), so the two sides cannot spell one differently.
// Nothing here throws.
#pragma once

#include <string>
#include <string_view>

#include "simulator/graph/op_label.h"

namespace mpsim::executor {

enum class RangePass { kForward, kBackward, kRecompute };
inline constexpr int kEmbeddingSite = -1;  // `layer` argument for the embedding
inline constexpr int kHeadSite = -2;       // ... and for the head

// fwd/mb3/L17/attn.qkv, bwd/mb0/head/logits.dgrad
std::string compute_range(RangePass pass, int micro_batch, int layer, graph::OpLabel label);
// comm/tp/fwd/mb3/L17/attn.allreduce
std::string tp_range(RangePass pass, int micro_batch, int layer, graph::OpLabel label);
// comm/pp/send/fwd/mb3[/c1], comm/pp/recv/bwd/mb2
std::string pp_range(bool send, bool forward, int micro_batch, int chunk);
// comm/dp/bucket4, comm/dp/bucket4/reducescatter
std::string dp_range(int bucket, std::string_view suffix);
// pipeline/fwd/mb3[/c1]
std::string pipeline_range(bool forward, int micro_batch, int chunk);

}  // namespace mpsim::executor
