#include "simulator/memory/memory_timeline.h"

#include <vector>

#include "simulator/graph/layer_ops.h"

namespace mpsim::memory {
namespace {

using graph::Pass;
using graph::Site;

using graph::OpLabel;

struct Rule {
  double alloc = 0;
  double free = 0;
};

// Rules per (site, pass, label); an op matching none saves nothing.
class Rules {
 public:
  void add(Site site, Pass pass, OpLabel label, double alloc, double free) {
    table_[index(site, pass, label)] = {alloc, free};
  }
  const Rule& find(Site site, Pass pass, OpLabel label) const {
    return table_[index(site, pass, label)];
  }

 private:
  static size_t index(Site site, Pass pass, OpLabel label) {
    return (static_cast<size_t>(site) * kPasses + static_cast<size_t>(pass)) * graph::kNumOpLabels +
           static_cast<size_t>(label);
  }
  static constexpr size_t kPasses = 4;
  static constexpr size_t kSites = 4;
  std::vector<Rule> table_ = std::vector<Rule>(kSites * kPasses * graph::kNumOpLabels);
};

// What a layer's forward (or recomputed forward) allocates, op by op. `keep_input` is false for
// the recomputed forward of full recompute, whose input is the checkpoint already held;
// `scores` false where the scores are recomputed later (selective).
void add_layer_forward(Rules& rules, Pass pass, const LayerTensors& x, OpLabel core,
                       bool keep_input, bool scores) {
  rules.add(Site::kLayer, pass, OpLabel::kAttnNorm, keep_input ? x.attn_norm_input : 0, 0);
  rules.add(Site::kLayer, pass, OpLabel::kAttnQkv, x.qkv_input, 0);
  rules.add(Site::kLayer, pass, core, x.qkv + x.attn_output + (scores ? x.attn_scores : 0), 0);
  rules.add(Site::kLayer, pass, OpLabel::kAttnProj, x.proj_input, 0);
  rules.add(Site::kLayer, pass, OpLabel::kAttnResidual, x.attn_dropout_mask, 0);
  rules.add(Site::kLayer, pass, OpLabel::kMlpNorm, x.mlp_norm_input, 0);
  rules.add(Site::kLayer, pass, OpLabel::kMlpFc1, x.fc1_input, 0);
  rules.add(Site::kLayer, pass, OpLabel::kMlpAct, x.act_input, 0);
  rules.add(Site::kLayer, pass, OpLabel::kMlpFc2, x.fc2_input, 0);
  rules.add(Site::kLayer, pass, OpLabel::kMlpResidual, x.mlp_dropout_mask, 0);
}

// The backward op that last reads a tensor frees it.
void add_layer_backward(Rules& rules, const LayerTensors& x, OpLabel core) {
  const Pass b = Pass::kBackward;
  rules.add(Site::kLayer, b, OpLabel::kMlpResidual, 0, x.mlp_dropout_mask);
  rules.add(Site::kLayer, b, OpLabel::kMlpFc2Wgrad, 0, x.fc2_input);
  rules.add(Site::kLayer, b, OpLabel::kMlpAct, 0, x.act_input);
  rules.add(Site::kLayer, b, OpLabel::kMlpFc1Wgrad, 0, x.fc1_input);
  rules.add(Site::kLayer, b, OpLabel::kMlpNorm, 0, x.mlp_norm_input);
  rules.add(Site::kLayer, b, OpLabel::kAttnResidual, 0, x.attn_dropout_mask);
  rules.add(Site::kLayer, b, OpLabel::kAttnProjWgrad, 0, x.proj_input);
  rules.add(Site::kLayer, b, core, 0, x.qkv + x.attn_output + x.attn_scores);
  rules.add(Site::kLayer, b, OpLabel::kAttnQkvWgrad, 0, x.qkv_input);
  rules.add(Site::kLayer, b, OpLabel::kAttnNorm, 0, x.attn_norm_input);
}

Rules make_rules(const graph::TrainingGraph& g, const spec::ParallelConfig& config,
                 LossMemory loss) {
  const LayerTensors x = layer_tensors(g.dims, config);
  // The attention core's ops carry the label of their kind (graph::attention_core_label).
  const OpLabel core = graph::attention_core_label(config.attention());
  Rules rules;
  switch (config.recompute()) {
    case spec::RECOMPUTE_FULL:
      rules.add(Site::kLayer, Pass::kForward, OpLabel::kAttnNorm, x.attn_norm_input, 0);
      add_layer_forward(rules, Pass::kRecompute, x, core, /*keep_input=*/false, /*scores=*/true);
      break;
    case spec::RECOMPUTE_SELECTIVE:
      add_layer_forward(rules, Pass::kForward, x, core, true, /*scores=*/false);
      rules.add(Site::kLayer, Pass::kRecompute, core, x.attn_scores, 0);
      break;
    default:
      add_layer_forward(rules, Pass::kForward, x, core, true, true);
      break;
  }
  add_layer_backward(rules, x, core);

  const double embedding = embedding_activation_bytes(g.dims, config);
  rules.add(Site::kEmbedding, Pass::kForward, OpLabel::kLookup, embedding, 0);
  rules.add(Site::kEmbedding, Pass::kBackward, OpLabel::kLookup, 0, embedding);
  // head_activation_bytes = two hidden-state inputs + what the loss keeps.
  const double input = x.attn_norm_input;  // a hidden state between TP regions, like the layer's
  const double logits_and_input = head_activation_bytes(g.dims, config, loss) - input;
  rules.add(Site::kHead, Pass::kForward, OpLabel::kNorm, input, 0);
  rules.add(Site::kHead, Pass::kForward, OpLabel::kLogits, logits_and_input, 0);
  rules.add(Site::kHead, Pass::kBackward, OpLabel::kLogitsWgrad, 0, logits_and_input);
  rules.add(Site::kHead, Pass::kBackward, OpLabel::kNorm, 0, input);
  return rules;
}

}  // namespace

void annotate_memory(graph::TrainingGraph& g, const spec::ParallelConfig& config, LossMemory loss) {
  const Rules rules = make_rules(g, config, loss);
  const size_t n = boost::num_vertices(g.graph);
  for (graph::OpVertex v = 0; v < n; ++v) {
    graph::Op& op = g.graph[v];
    if (op.kind == graph::OpKind::kStepBlock) continue;  // sized when the step was folded
    op.alloc_bytes = 0;
    op.free_bytes = 0;
    if (op.stream != graph::Stream::kCompute || op.site == Site::kNone) continue;
    // Work split into parts (TP-communication overlap, context parallelism's attention blocks)
    // allocates what it saves with its first part and frees what it consumed with its last.
    const Rule& r = rules.find(op.site, op.pass, op.label);
    op.alloc_bytes = op.part == 0 ? r.alloc : 0;
    op.free_bytes = op.part + 1 == op.parts ? r.free : 0;
  }
}

std::vector<double> model_state_bytes_per_rank(const graph::TrainingGraph& g,
                                               const spec::ParallelConfig& config) {
  std::vector<double> bytes(g.ranks.size());
  std::vector<double> per_stage(static_cast<size_t>(config.pipeline_parallel()), -1);
  for (size_t r = 0; r < g.ranks.size(); ++r) {
    double& stage = per_stage[static_cast<size_t>(g.ranks[r].pp)];
    if (stage < 0) stage = stage_model_state_bytes(g.dims, config, g.ranks[r].pp).total();
    bytes[r] = stage;
  }
  return bytes;
}

}  // namespace mpsim::memory
