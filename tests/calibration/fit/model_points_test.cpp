// The models' exact shapes as the bench's point list (model_points.h): every GEMM, attention and
// in-node collective key of a small model's graphs is listed (each line worked out here from the
// op's fields, independently of exact_table_key), no line twice, groups bounded by the local GPU
// count, the bounds noted, and the list of the whole models/ folder on 2 GPUs bounded in count
// and work.
#include "calibration/fit/model_points.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "calibration/calibration_range.h"
#include "calibration/fit/model_gemm_grid.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/spec_loader.h"
#include "tests/test_models.h"

namespace mpsim::calibration {
namespace {

const spec::Hardware& h100() {
  static const spec::Hardware hw = spec::load_hardware("h100-sxm");
  return hw;
}

// A small GPT (1.5e7 parameters, hence min_parameters 0): 4 layers, hidden 512, 8 heads,
// sequence 1024.
spec::ModelSpec small_model() { return testing::gpt(4, 512, 8, 1024, 3000); }

ModelPointsOptions small_options(int64_t gpus) {
  ModelPointsOptions o;
  o.gpus = gpus;
  o.min_parameters = 0;
  return o;
}

std::set<std::string> all_lines(const ModelPoints& p) {
  std::set<std::string> lines;
  for (const auto* list : {&p.gemm, &p.attention, &p.collective})
    lines.insert(list->begin(), list->end());
  return lines;
}

// The bench line of `op`, from its fields; empty for ops no line covers.
std::string expected_line(const graph::Op& op) {
  const auto n = [](double v) { return std::to_string(static_cast<int64_t>(v)); };
  switch (op.kind) {
    case graph::OpKind::kGemm: {
      const std::string_view label = graph::label_name(op.label);
      const std::string layout = label.ends_with(".dgrad")   ? "dgrad"
                                 : label.ends_with(".wgrad") ? "wgrad"
                                                             : "fwd";
      return "gemm.bf16/" + layout + "/m=" + n(op.gemm.m) + ",n=" + n(op.gemm.n) +
             ",k=" + n(op.gemm.k);
    }
    case graph::OpKind::kAttention:
      return std::string(op.pass == graph::Pass::kBackward ? "attention.bwd.bf16"
                                                           : "attention.fwd.bf16") +
             "/bh=" + n(op.attn_batch_heads) + ",s=" + n(op.attn_seq) + ",d=" + n(op.attn_head_dim);
    case graph::OpKind::kAllReduce:
    case graph::OpKind::kAllGather:
    case graph::OpKind::kReduceScatter:
    case graph::OpKind::kSend: {
      if (op.group_size < 2 || op.group_nodes != 1 || op.bytes <= 0) return "";
      const std::string kind = op.kind == graph::OpKind::kAllReduce       ? "allreduce"
                               : op.kind == graph::OpKind::kAllGather     ? "allgather"
                               : op.kind == graph::OpKind::kReduceScatter ? "reducescatter"
                                                                          : "send";
      return kind + ".nvlink/g=" + std::to_string(op.group_size) + ",bytes=" + n(op.bytes);
    }
    default:
      return "";
  }
}

spec::ParallelConfig config(int64_t tp, int64_t pp, int64_t dp, bool sp, int64_t zero,
                            int64_t mbs) {
  spec::ParallelConfig c = testing::config(tp, pp, dp, mbs, mbs * dp);
  c.set_sequence_parallel(sp);
  c.set_zero_stage(zero);
  return c;
}

TEST(ModelPointsTest, EveryKeyOfTheSmallModelsGraphsIsListedOnce) {
  const spec::ModelSpec model = small_model();
  const ModelPoints points = model_points({model}, h100(), small_options(2));
  EXPECT_EQ(points.models, std::vector<std::string>{"test-gpt (1.47e+07 parameters)"});
  const std::set<std::string> lines = all_lines(points);
  // No line twice, within or across the lists, and each list sorted.
  EXPECT_EQ(lines.size(), points.size());
  for (const auto* list : {&points.gemm, &points.attention, &points.collective}) {
    EXPECT_FALSE(list->empty());
    for (const std::string& line : *list) {
      // Every line is a range name of the bench's grammar.
      const auto range = parse_calibration_range("calib/" + line);
      ASSERT_TRUE(range.has_value()) << line;
    }
  }
  EXPECT_EQ(points.rounded, 0);
  // TP 2 at micro-batch 4: SP off and on, PP 1 and 2, DP 2 with ZeRO 1 (every config kind).
  for (const auto& c :
       {config(2, 1, 1, false, 0, 4), config(2, 1, 1, true, 0, 4), config(2, 2, 1, true, 0, 4),
        config(1, 1, 2, false, 0, 4), config(1, 1, 2, false, 1, 4)}) {
    const graph::TrainingGraph g = graph::build_training_graph(
        model, spec::validate_parallel_config(c, model, h100()), graph::GraphOptions{});
    int checked = 0;
    for (std::size_t v = 0; v < boost::num_vertices(g.graph); ++v) {
      const std::string line = expected_line(g.graph[static_cast<graph::OpVertex>(v)]);
      if (line.empty()) continue;
      ++checked;
      EXPECT_TRUE(lines.contains(line))
          << line << " (tp " << c.tensor_parallel() << ", pp " << c.pipeline_parallel() << ", dp "
          << c.data_parallel() << ", sp " << c.sequence_parallel() << ")";
    }
    EXPECT_GT(checked, 0);
  }
  // The config kinds' own collectives are there: SP's all-gather of the activations
  // (4 x 1024 tokens x 512 x 2 bytes), the pipeline send of the SP-sharded activations at TP 2,
  // the bucket all-reduce (ZeRO 0) and reduce-scatter and parameter all-gather (ZeRO 1).
  EXPECT_TRUE(lines.contains("allgather.nvlink/g=2,bytes=4194304"));
  EXPECT_TRUE(lines.contains("send.nvlink/g=2,bytes=2097152"));
  for (const std::string kind : {"allreduce", "reducescatter", "allgather"}) {
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.starts_with(kind + ".nvlink/g=2,bytes=") && l.size() > 30;
    })) << kind;
  }
  // Bounded: GEMM shapes per (TP, micro-batch) are the model's few linears in 3 layouts.
  // TP x micro-batch x linears x layouts, the layers' four linears also in FP8.
  EXPECT_LE(points.gemm.size(), 2u * 5 * (5 + 4) * 3);
  // Each FP8 point is a layer linear's bf16 point (sizes by 16), the LM head's never FP8.
  int64_t fp8 = 0;
  for (const std::string& line : points.gemm) {
    if (!line.starts_with("gemm.fp8/")) continue;
    ++fp8;
    EXPECT_TRUE(lines.contains("gemm.bf16/" + line.substr(std::string("gemm.fp8/").size())))
        << line;
    EXPECT_EQ(line.find("n=3000"), std::string::npos) << line;  // the head's vocabulary
  }
  EXPECT_GT(fp8, 0);
  EXPECT_LE(points.attention.size(), 2u * 5 * 2 * 2);  // TP x micro-batch x pass x core
  // Both cores at each shape: the unfused one's line and the fused one's.
  for (const std::string& line : points.attention) {
    if (line.starts_with("attention.flash.")) continue;
    EXPECT_TRUE(
        lines.contains("attention.flash." + line.substr(std::string("attention.").size()) + ",g=1"))
        << line;
  }
  EXPECT_LE(points.collective.size(), 100u);
}

TEST(ModelPointsTest, GroupsStayWithinTheLocalGpus) {
  const ModelPoints one = model_points({small_model()}, h100(), small_options(1));
  EXPECT_TRUE(one.collective.empty());
  EXPECT_FALSE(one.gemm.empty());
  const ModelPoints four = model_points({small_model()}, h100(), small_options(4));
  std::set<int64_t> groups;
  for (const std::string& line : four.collective) {
    const auto range = parse_calibration_range("calib/" + line);
    ASSERT_TRUE(range.has_value());
    groups.insert(range->keys[0]);
    if (line.starts_with("send.")) {
      EXPECT_EQ(range->keys[0], 2) << line;
    }
  }
  // TP 3 is refused (8 heads), so groups of 2 and 4 (TP 4, and DP 2 at every TP).
  EXPECT_EQ(groups, (std::set<int64_t>{2, 4}));
  EXPECT_TRUE(std::any_of(four.notes.begin(), four.notes.end(), [](const std::string& n) {
    return n.starts_with("test-gpt: 12 layouts left out (e.g. TP 3 PP 1 DP 1): tensor_parallel: ");
  })) << four.notes.front();
  EXPECT_GT(four.size(), model_points({small_model()}, h100(), small_options(2)).size());
}

TEST(ModelPointsTest, LongAttentionAndHugeGemmsAreLeftOutAndNoted) {
  ModelPointsOptions o = small_options(1);
  o.micro_batch_sizes = {16};
  o.max_attention_seq = 512;
  o.max_gemm_bytes = int64_t{64} << 20;
  const ModelPoints p = model_points({small_model()}, h100(), o);
  // The fused core (no s x s tensor) is kept up to 4 x the sequence bound: seq 1024 <= 2048.
  ASSERT_FALSE(p.attention.empty());
  for (const std::string& line : p.attention)
    EXPECT_TRUE(line.starts_with("attention.flash.")) << line;
  ModelPointsOptions shorter = o;
  shorter.max_attention_seq = 128;
  EXPECT_TRUE(model_points({small_model()}, h100(), shorter).attention.empty());
  ASSERT_GE(p.notes.size(), 2u);
  EXPECT_TRUE(std::any_of(p.notes.begin(), p.notes.end(), [](const std::string& n) {
    return n.find("attention shapes with seq > 512 left out") != std::string::npos;
  }));
  EXPECT_TRUE(std::any_of(p.notes.begin(), p.notes.end(), [](const std::string& n) {
    return n.find("GEMM shapes whose buffers exceed 64 MiB left out") != std::string::npos;
  }));
  // 16 x 1024 tokens x 3000-column head (fwd: 2 x 16384 x 512 + 2 x 3000 x 512 +
  // 2 x 16384 x 3000 bytes > 64 MiB) is left out; the 512 x 512 projections stay.
  EXPECT_FALSE(std::any_of(p.gemm.begin(), p.gemm.end(),
                           [](const std::string& l) { return l.find("n=3072") != l.npos; }));
  EXPECT_TRUE(std::find(p.gemm.begin(), p.gemm.end(), "gemm.bf16/fwd/m=16384,n=512,k=512") !=
              p.gemm.end());
}

TEST(ModelPointsTest, BadOptionsAreRefused) {
  ModelPointsOptions o;
  o.gpus = 0;
  EXPECT_THROW(model_points({small_model()}, h100(), o), std::invalid_argument);
  // The default parameter range leaves the small model out: nothing to list.
  EXPECT_THROW(model_points({small_model()}, h100(), ModelPointsOptions{}), std::invalid_argument);
}

// The shipped models on 2 GPUs: the list's size and work stay within the bench's budget
// (mpsim calibrate -o: well under 3 minutes in all).
TEST(ModelPointsTest, ShippedModelsOnTwoGpusStayWithinBudget) {
  ModelPointsOptions o;
  o.gpus = 2;
  const ModelPoints p = model_points(load_model_folder("models"), h100(), o);
  std::printf(
      "models/ on 2 GPUs: %zu GEMM, %zu attention, %zu collective points from %lld "
      "graphs; %.3g GEMM FLOP, %.3g attention FLOP, %.3g collective bytes a repetition\n",
      p.gemm.size(), p.attention.size(), p.collective.size(), static_cast<long long>(p.graphs),
      p.gemm_flop, p.attention_flop, p.collective_bytes);
  for (const std::string& note : p.notes) std::printf("  note: %s\n", note.c_str());
  EXPECT_EQ(all_lines(p).size(), p.size());
  EXPECT_EQ(p.rounded, 0);
  EXPECT_LE(p.size(), 3000u);
  // 7 runs (2 warm-ups + 5 repetitions) each: GEMMs at 500 TFLOP/s, attention at 300 TFLOP/s,
  // plus ~2 ms of set-up and synchronisation per point; within 90 s.
  const double seconds = 7 * (p.gemm_flop / 5e14 + p.attention_flop / 3e14) + 2e-3 * p.size();
  std::printf("estimated bench time of the list: %.0f s\n", seconds);
  EXPECT_LE(seconds, 90);
}

}  // namespace
}  // namespace mpsim::calibration
