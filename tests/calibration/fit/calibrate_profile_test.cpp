// The calibration fit on the committed measurements (traces/calibration/, README there):
// h100.rank0.sqlite (1 x H100: GEMM, attention, memory ops) and h200x2.rank0.sqlite (2 x H200:
// also NCCL collectives and interference). The fitted profile is checked against numbers measured
// independently of the fit: the bench's own host-side cudaEvent medians (*.jsonl beside the
// databases), the all-reduce time measured on the project's 2-GPU machine (docs/design.md, "Facts
// measured on the project's GPU machines"), and the datasheet's HBM bandwidth.
#include "calibration/fit/calibrate_profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "calibration/calibration_range.h"
#include "simulator/cost/calibrated_cost.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::calibration {
namespace {
using profiler::GpuInfo;

const std::string kH100 = "traces/calibration/h100.rank0.sqlite";
const std::string kH200 = "traces/calibration/h200x2.rank0.sqlite";

double rel_err(double got, double want) { return std::abs(got - want) / std::abs(want); }

// Host-timed medians by range name; a range measured twice gets the mean of its medians.
std::map<std::string, double> host_medians(const std::string& jsonl) {
  std::ifstream in(jsonl);
  EXPECT_TRUE(in) << jsonl;
  std::map<std::string, std::vector<double>> all;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    all[j.at("range").get<std::string>()].push_back(j.at("median_s").get<double>());
  }
  std::map<std::string, double> medians;
  for (const auto& [range, values] : all) {
    double sum = 0;
    for (double v : values) sum += v;
    medians[range] = sum / static_cast<double>(values.size());
  }
  return medians;
}

struct Fitted {
  spec::HardwareProfile base;
  spec::HardwareProfile profile;
  CalibrationReport report;
  std::map<std::string, double> host;  // the jsonl medians
};

// Each database is fitted once for the whole suite.
const Fitted& fitted(const std::string& database) {
  static std::map<std::string, Fitted> cache;
  auto it = cache.find(database);
  if (it != cache.end()) return it->second;
  Fitted f;
  f.base = spec::load_hardware_profile(database == kH100 ? "h100-sxm" : "h200-sxm");
  CalibrationInfo info;
  info.profile_name = "test";
  info.command = "calibrate_profile_test";
  info.date = "2026-11-27";
  f.profile = calibrate_from_traces({database}, f.base, info, &f.report);
  f.host = host_medians(database.substr(0, database.find(".rank0.sqlite")) + ".jsonl");
  return cache.emplace(database, std::move(f)).first->second;
}

const spec::CalibratedTable& table(const spec::HardwareProfile& p, std::string_view op) {
  for (const auto& t : p.calibrated()) {
    if (t.op() == op) return t;
  }
  throw std::logic_error("no table " + std::string(op));
}

double seconds_at(const spec::CalibratedTable& t, const std::vector<double>& keys) {
  for (const auto& p : t.points()) {
    if (std::vector<double>(p.key().begin(), p.key().end()) == keys) return p.seconds();
  }
  throw std::logic_error("no point in " + t.op());
}

std::set<std::string> table_names(const spec::HardwareProfile& p) {
  std::set<std::string> names;
  for (const auto& t : p.calibrated()) names.insert(t.op());
  return names;
}

TEST(CalibrateProfileTest, TablesAreCompleteAndTheCostModelAcceptsThem) {
  std::set<std::string> compute_and_memory = {
      "gemm.bf16",          "gemm.bf16.fwd",      "gemm.bf16.dgrad", "gemm.bf16.wgrad",
      "attention.fwd.bf16", "attention.bwd.bf16", "memory.norm",     "memory.norm.fwd",
      "memory.norm.bwd",    "memory.elementwise", "memory.optimizer"};
  // Every GEMM, attention and collective table has its exact table, with the same points here
  // (no point list; the grids are complete).
  const std::vector<std::string> exact = {"gemm.bf16.fwd", "gemm.bf16.dgrad", "gemm.bf16.wgrad",
                                          "attention.fwd.bf16", "attention.bwd.bf16"};
  for (const std::string& name : exact) compute_and_memory.insert(name + ".exact");
  std::set<std::string> with_collectives = compute_and_memory;
  with_collectives.insert({"allreduce.nvlink", "allgather.nvlink", "reducescatter.nvlink",
                           "send.nvlink", "interference.gemm.bf16"});
  for (const std::string name :
       {"allreduce.nvlink", "allgather.nvlink", "reducescatter.nvlink", "send.nvlink"}) {
    with_collectives.insert(name + ".exact");
  }
  for (const std::string& db : {kH100, kH200}) {
    const spec::HardwareProfile& p = fitted(db).profile;
    EXPECT_EQ(table_names(p), db == kH100 ? compute_and_memory : with_collectives) << db;
    // The bench's full grids: 5 x 6 x 6 GEMM shapes per layout, 3 x 4 x 2 attention shapes,
    // 6 sizes per memory op (norm: a forward and a backward point each).
    for (const char* gemm : {"gemm.bf16", "gemm.bf16.fwd", "gemm.bf16.dgrad", "gemm.bf16.wgrad"}) {
      EXPECT_EQ(table(p, gemm).points_size(), 180) << db << " " << gemm;
    }
    for (const std::string& name : exact) {
      EXPECT_EQ(table(p, name + ".exact").points_size(), table(p, name).points_size())
          << db << " " << name;
    }
    EXPECT_EQ(table(p, "attention.fwd.bf16").points_size(), 24);
    EXPECT_EQ(table(p, "attention.bwd.bf16").points_size(), 24);
    EXPECT_EQ(table(p, "memory.norm").points_size(), 12);
    for (const char* memory :
         {"memory.norm.fwd", "memory.norm.bwd", "memory.elementwise", "memory.optimizer"}) {
      EXPECT_EQ(table(p, memory).points_size(), 6) << db << " " << memory;
    }
    const spec::Hardware hw = spec::to_hardware(p, db);
    const auto model = cost::make_calibrated_cost_model(hw);
    const std::string text = model->describe();
    EXPECT_EQ(text.find("gemm.bf16.fwd, gemm.bf16.dgrad, gemm.bf16.wgrad"),
              text.find("gemm.bf16.fwd"))
        << text;
    // Only the interference table, kept for an overlap model, is not the cost model's.
    const auto ignored = text.find("ignored tables: ");
    EXPECT_EQ(ignored == std::string::npos ? "" : text.substr(ignored),
              db == kH100 ? "" : "ignored tables: interference.gemm.bf16")
        << text;
  }
}

// The kernel time of 8192^3 GEMMs per repetition against the bench's host-timed median.
TEST(CalibrateProfileTest, GemmThroughputAgreesWithTheHostTimedMedian) {
  for (const std::string& db : {kH100, kH200}) {
    const Fitted& f = fitted(db);
    for (const std::string layout : {"fwd", "dgrad", "wgrad"}) {
      const double seconds =
          seconds_at(table(f.profile, "gemm.bf16." + layout), {8192, 8192, 8192});
      const double host = f.host.at("calib/gemm.bf16/" + layout + "/m=8192,n=8192,k=8192");
      EXPECT_LE(rel_err(seconds, host), 0.10) << db << " " << layout << ": " << seconds << " s, "
                                              << "host " << host << " s";
      const double tflops = 2.0 * 8192 * 8192 * 8192 / seconds / 1e12;
      EXPECT_GT(tflops, 500) << db << " " << layout;
      EXPECT_LT(tflops, 989.4) << db << " " << layout;
    }
    // The cost model prices the graph's GEMMs by layout from these points.
    const auto model = cost::make_calibrated_cost_model(spec::to_hardware(f.profile, db));
    graph::Op op;
    op.kind = graph::OpKind::kGemm;
    op.gemm = {8192, 8192, 8192};
    op.label = graph::OpLabel::kMlpFc1Wgrad;
    EXPECT_LE(rel_err(model->op_seconds(op),
                      seconds_at(table(f.profile, "gemm.bf16.wgrad"), {8192, 8192, 8192})),
              1e-12);
  }
}

// docs/design.md, "Facts measured on the project's GPU machines": NCCL all-reduce of 1 GiB on the
// 2-GPU machine ≈ 3.32 ms (measured on 2 x H100).
TEST(CalibrateProfileTest, AllReduceOfOneGibOnTwoGpus) {
  const Fitted& f = fitted(kH200);
  const double seconds = seconds_at(table(f.profile, "allreduce.nvlink"), {2, 1073741824});
  EXPECT_LE(rel_err(seconds, 3.32e-3), 0.10) << seconds;
  EXPECT_LE(rel_err(seconds, f.host.at("calib/allreduce.nvlink/g=2,bytes=1073741824")), 0.10)
      << seconds;
  graph::Op op;
  op.kind = graph::OpKind::kAllReduce;
  op.bytes = 1073741824;
  op.group_size = 2;
  const auto model = cost::make_calibrated_cost_model(spec::to_hardware(f.profile, kH200));
  EXPECT_LE(rel_err(model->op_seconds(op), seconds), 1e-12);
  // The fitted NVLink numbers: a bus bandwidth of the measured order (the 1 GiB point alone:
  // 2(n-1)/n S / t = 330 GB/s) and a few microseconds per step.
  const spec::NodeSpec& node = f.profile.node();
  EXPECT_EQ(node.nvlink_bandwidth().unit(), "GB/s");
  EXPECT_GT(node.nvlink_bandwidth().value(), 0.7 * 1073741824 / seconds / 1e9);
  EXPECT_LT(node.nvlink_bandwidth().value(), 1.1 * 1073741824 / seconds / 1e9);
  EXPECT_EQ(node.nvlink_bandwidth().source().rfind("measured on 2 x NVIDIA H200 2026-11-26", 0),
            0u);
  EXPECT_EQ(node.nvlink_latency().unit(), "us");
  EXPECT_GT(node.nvlink_latency().value(), 0.5);
  EXPECT_LT(node.nvlink_latency().value(), 20);
  // One GPU measures no collective: the base's NVLink numbers stay.
  const Fitted& h100 = fitted(kH100);
  EXPECT_EQ(h100.profile.node().SerializeAsString(), h100.base.node().SerializeAsString());
}

// Norms and element-wise ops stream below the datasheet's HBM bandwidth at every size. (Not so
// the optimizer's smallest sizes: 1 M parameters are 18 MB of state, which stays in the 50 MB
// L2 cache from one repetition to the next.)
TEST(CalibrateProfileTest, MemoryBandwidthIsBelowTheHbmPeak) {
  for (const std::string& db : {kH100, kH200}) {
    const Fitted& f = fitted(db);
    const double hbm = spec::to_hardware(f.base, db).hbm_bytes_per_s;
    for (const char* name :
         {"memory.norm.fwd", "memory.norm.bwd", "memory.norm", "memory.elementwise"}) {
      for (const auto& p : table(f.profile, name).points()) {
        EXPECT_LT(p.key(0) / p.seconds(), hbm) << db << " " << name << " bytes=" << p.key(0);
      }
    }
    const spec::KernelEfficiency& e = f.profile.efficiency();
    EXPECT_GT(e.memory_bound().value(), 0.5) << db;
    EXPECT_LE(e.memory_bound().value(), 1) << db;
    EXPECT_GT(e.gemm_max().value(), 0.5) << db;
    EXPECT_LE(e.gemm_max().value(), 1) << db;
    EXPECT_EQ(e.gemm_max().source().rfind("measured on ", 0), 0u) << e.gemm_max().source();
  }
}

TEST(CalibrateProfileTest, ProvenanceNamesMachineDatabaseAndDate) {
  const Fitted& f = fitted(kH200);
  for (const auto& t : f.profile.calibrated()) {
    EXPECT_NE(t.provenance().find("2 x NVIDIA H200 2026-11-26 (" + kH200 + ")"), std::string::npos)
        << t.op() << ": " << t.provenance();
  }
  const std::string& top = f.profile.provenance();
  EXPECT_EQ(
      top.rfind("calibrated 2026-11-27 by `calibrate_profile_test` from measurements on "
                "2 x NVIDIA H200 (host vm) on 2026-11-26, database " +
                    kH200 + ", profiled command `build-lead/profiler/bench/calibration_bench`",
                0),
      0u)
      << top;
  EXPECT_NE(top.find("remain the base profile's datasheet or assumed values"), std::string::npos);
  // Datasheet numbers are kept.
  EXPECT_EQ(f.profile.gpu().SerializeAsString(), f.base.gpu().SerializeAsString());
  EXPECT_EQ(f.profile.name(), "test");
  // The interference GEMM is compared with the same GEMM alone right before it.
  const spec::CalibratedTable& interference = table(f.profile, "interference.gemm.bf16");
  ASSERT_EQ(interference.points_size(), 1);
  EXPECT_NE(interference.provenance().find("the GEMM alone right before"), std::string::npos);
  EXPECT_EQ(f.report.sources,
            std::vector<std::string>{kH200 + ": 2 x NVIDIA H200 (host vm), recorded 2026-11-26 by "
                                             "`build-lead/profiler/bench/calibration_bench`; "
                                             "software versions unknown (not recorded)"});
}

// efficiency.comm_interference is the interference GEMM's CUPTI time over the same GEMM's alone
// right before, less one; the bench's host-timed medians of the two ranges (cudaEvents around
// the GEMM's stream, independent of CUPTI) give the same slowdown within 3 points. The H100
// database has no interference range, so its profile keeps the base's number.
TEST(CalibrateProfileTest, CommInterferenceIsTheGemmsSlowdownBesideAllReduces) {
  const Fitted& f = fitted(kH200);
  const spec::Quantity& q = f.profile.efficiency().comm_interference();
  // The host-timed medians of the interference range and of the same GEMM alone right before.
  const std::string shape = "m=8192,n=8192,k=8192";
  std::ifstream in("traces/calibration/h200x2.jsonl");
  double alone = 0, host = -1;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    const std::string range = j.at("range").get<std::string>();
    if (range == "calib/gemm.bf16/fwd/" + shape) alone = j.at("median_s").get<double>();
    if (range == "calib/interference/gemm.bf16/" + shape && alone > 0) {
      host = j.at("median_s").get<double>() / alone - 1;
    }
  }
  ASSERT_GE(host, 0) << "no interference range after its GEMM alone in h200x2.jsonl";
  EXPECT_NEAR(q.value(), host, 0.03) << q.source();
  EXPECT_GT(q.value(), 0);
  EXPECT_EQ(q.source().rfind("measured on 2 x NVIDIA H200 2026-11-26 (" + kH200 + ")", 0), 0u)
      << q.source();
  const std::string fitted_line = "efficiency.comm_interference = ";
  EXPECT_TRUE(std::any_of(f.report.fitted.begin(), f.report.fitted.end(),
                          [&](const auto& line) { return line.rfind(fitted_line, 0) == 0; }));
  // The FP8 GEMMs keep the base's ratio to the bf16 ones (the bench measures bf16 only).
  const spec::KernelEfficiency& e = f.profile.efficiency();
  const spec::KernelEfficiency& base = f.base.efficiency();
  EXPECT_NEAR(e.gemm_max_fp8().value(),
              e.gemm_max().value() * base.gemm_max_fp8().value() / base.gemm_max().value(), 1e-3);
  const Fitted& h100 = fitted(kH100);
  EXPECT_EQ(h100.profile.efficiency().comm_interference().SerializeAsString(),
            h100.base.efficiency().comm_interference().SerializeAsString());
}

// The first collective after NCCL's set-up (1 KiB all-reduce) ran 7x slower than 4 KiB: dropped
// and reported; nothing else is dropped from these databases.
TEST(CalibrateProfileTest, ArtifactsAreDroppedAndReported) {
  EXPECT_TRUE(fitted(kH100).report.notes.empty());
  const std::vector<std::string>& notes = fitted(kH200).report.notes;
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].rfind("table allreduce.nvlink: point group_size=2, bytes=1024 dropped: ", 0),
            0u)
      << notes[0];
  EXPECT_EQ(table(fitted(kH200).profile, "allreduce.nvlink").points_size(), 10);
  // The exact table drops it too, without a second note.
  EXPECT_EQ(table(fitted(kH200).profile, "allreduce.nvlink.exact").points_size(), 10);
}

TEST(CalibrateProfileTest, AnIncompleteGridIsRepairedAndReported) {
  CalibrationData data = read_calibration_data({kH100});
  std::erase_if(data.measurements, [](const CalibrationMeasurement& m) {
    return m.text == "calib/gemm.bf16/wgrad/m=16384,n=16384,k=16384";
  });
  CalibrationReport report;
  const spec::HardwareProfile p =
      calibrate_profile(data, spec::load_hardware_profile("h100-sxm"), {}, &report);
  EXPECT_EQ(table(p, "gemm.bf16.wgrad").points_size(), 5 * 6 * 5);
  EXPECT_EQ(report.notes, std::vector<std::string>{"table gemm.bf16.wgrad: grid incomplete, "
                                                   "dropped k=16384 (1 of 30 combinations "
                                                   "missing, 29 points dropped)"});
  EXPECT_EQ(p.name(), "h100-sxm-measured");
}

TEST(CalibrateProfileTest, ADatabaseWithoutCalibrationRangesIsRefusedByName) {
  const spec::HardwareProfile base = spec::load_hardware_profile("h100-sxm");
  try {
    calibrate_from_traces({"traces/executor/pp2.rank0.sqlite"}, base, {});
    FAIL() << "no error";
  } catch (const CalibrationError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("traces/executor/pp2.rank0.sqlite: no calibration "
                                          "ranges (NVTX ranges named 'calib/...')",
                                          0),
              0u)
        << e.what();
  }
  try {
    calibrate_from_traces({"traces/calibration/missing.sqlite"}, base, {});
    FAIL() << "no error";
  } catch (const CalibrationError& e) {
    EXPECT_NE(std::string(e.what()).find("traces/calibration/missing.sqlite"), std::string::npos)
        << e.what();
  }
}

// ---- fabricated measurements: the loss and softmax tables, versions in the provenance --------

// A measurement of `text` at `seconds` per repetition, from database 0.
CalibrationMeasurement fabricated(const std::string& text, double seconds) {
  CalibrationMeasurement m;
  m.text = text;
  m.range = *parse_calibration_range(text);
  m.repetitions = 5;
  m.seconds.all = seconds;
  return m;
}

CalibrationData fabricated_data(std::vector<CalibrationMeasurement> measurements) {
  CalibrationData data;
  CalibrationSource source;
  source.path = "fabricated.sqlite";
  source.hostname = "testhost";
  source.date = "2026-12-01";
  GpuInfo gpu;
  gpu.name = "NVIDIA H100 80GB HBM3";
  source.gpus = {gpu};
  source.versions = SoftwareVersions{13000, 13000, 130100, 22803};
  data.sources = {source};
  data.measurements = std::move(measurements);
  return data;
}

// Fabricated rates: the forward loss streams at 3 TB/s, the backward at 2.4 TB/s, each with
// 5 us of launch latency; the softmax at 2 TB/s of its tensor.
double loss_seconds(int64_t bytes, bool backward) {
  return static_cast<double>(bytes) / (backward ? 2.4e12 : 3e12) + 5e-6;
}

TEST(CalibrateProfileTest, LossTableKeysAreTheGraphsLossBytes) {
  std::vector<CalibrationMeasurement> measurements;
  for (const int64_t tokens : {1024, 2048, 4096}) {
    for (const int64_t vocab : {32000, 50304}) {
      const int64_t forward = loss_forward_bytes(tokens, vocab);
      const int64_t backward = loss_backward_bytes(tokens, vocab);
      measurements.push_back(fabricated("calib/memory.loss.fwd/bytes=" + std::to_string(forward),
                                        loss_seconds(forward, false)));
      measurements.push_back(fabricated("calib/memory.loss.bwd/bytes=" + std::to_string(backward),
                                        loss_seconds(backward, true)));
    }
  }
  for (const int64_t bh : {1, 4, 16}) {
    const int64_t bytes = bh * 2048 * 2048 * 2;
    measurements.push_back(fabricated("calib/memory.softmax/bytes=" + std::to_string(bytes),
                                      static_cast<double>(bytes) / 2e12));
  }
  const spec::HardwareProfile base = spec::load_hardware_profile("h100-sxm");
  CalibrationInfo info;
  info.date = "2026-12-02";
  CalibrationReport report;
  const spec::HardwareProfile p =
      calibrate_profile(fabricated_data(std::move(measurements)), base, info, &report);
  EXPECT_TRUE(report.notes.empty()) << report.notes.front();
  EXPECT_EQ(table_names(p), (std::set<std::string>{"memory.loss", "memory.softmax"}));
  const spec::CalibratedTable& loss = table(p, "memory.loss");
  EXPECT_EQ(loss.points_size(), 12);
  EXPECT_NE(loss.provenance().find("measured on 1 x NVIDIA H100 80GB HBM3 2026-12-01 "
                                   "(fabricated.sqlite) with CUDA driver 13.0, CUDA runtime 13.0, "
                                   "cuBLAS 13.1.0, NCCL 2.28.3"),
            std::string::npos)
      << loss.provenance();
  EXPECT_NE(loss.provenance().find("ranges measured: 6 forward, 6 backward"), std::string::npos);
  EXPECT_EQ(table(p, "memory.softmax").points_size(), 3);
  EXPECT_NE(p.provenance().find("database fabricated.sqlite, CUDA driver 13.0, "),
            std::string::npos)
      << p.provenance();
  EXPECT_EQ(report.sources,
            std::vector<std::string>{"fabricated.sqlite: 1 x NVIDIA H100 80GB HBM3 (host "
                                     "testhost), recorded 2026-12-01; CUDA driver 13.0, CUDA "
                                     "runtime 13.0, cuBLAS 13.1.0, NCCL 2.28.3"});

  // The graph's loss ops of gpt2-124m (vocab 50257, padded to 50304 at TP 1; sequence 1024) at
  // micro-batch 2 (2048 tokens) have exactly the measured keys, and the cost model prices them
  // at the measured times.
  const spec::ModelSpec model = spec::load_model_spec("gpt2-124m");
  const spec::Hardware hw = spec::to_hardware(p, "calibrated");
  spec::ParallelConfig config;
  config.set_num_gpus(1);
  config.set_tensor_parallel(1);
  config.set_pipeline_parallel(1);
  config.set_micro_batch_size(2);
  config.set_global_batch_size(2);
  const graph::TrainingGraph g = graph::build_training_graph(
      model, spec::validate_parallel_config(config, model, hw), graph::GraphOptions{});
  const auto priced = cost::make_calibrated_cost_model(hw);
  int loss_ops = 0;
  for (std::size_t v = 0; v < boost::num_vertices(g.graph); ++v) {
    const graph::Op& op = g.graph[static_cast<graph::OpVertex>(v)];
    if (op.kind != graph::OpKind::kLoss) continue;
    ++loss_ops;
    const bool backward = op.pass == graph::Pass::kBackward;
    const int64_t bytes =
        backward ? loss_backward_bytes(2048, 50304) : loss_forward_bytes(2048, 50304);
    EXPECT_EQ(op.bytes, static_cast<double>(bytes)) << (backward ? "bwd" : "fwd");
    EXPECT_LE(rel_err(priced->op_seconds(op), loss_seconds(bytes, backward)), 1e-6)
        << (backward ? "bwd" : "fwd");
  }
  EXPECT_EQ(loss_ops, 2);
  // The softmax table is written for the record; the cost model leaves it alone.
  const std::string text = priced->describe();
  EXPECT_NE(text.find("ignored tables: memory.softmax"), std::string::npos) << text;
}

// A backward loss point at the key of a forward point: the first in name order stays, the
// other is reported.
TEST(CalibrateProfileTest, LossPointsOfBothPassesAtOneKeyKeepOne) {
  CalibrationReport report;
  const spec::HardwareProfile p =
      calibrate_profile(fabricated_data({fabricated("calib/memory.loss.bwd/bytes=16777216", 1e-5),
                                         fabricated("calib/memory.loss.bwd/bytes=67108864", 3e-5),
                                         fabricated("calib/memory.loss.fwd/bytes=16777216", 2e-5)}),
                        spec::load_hardware_profile("h100-sxm"), {}, &report);
  EXPECT_EQ(table(p, "memory.loss").points_size(), 2);
  EXPECT_EQ(seconds_at(table(p, "memory.loss"), {16777216}), 1e-5);
  EXPECT_EQ(report.notes, std::vector<std::string>{"range calib/memory.loss.fwd/bytes=16777216: "
                                                   "table memory.loss already has a point at "
                                                   "bytes=16777216; point dropped"});
}

// ---- the point list: exact tables beside the grids ---------------------------------------------

// Fabricated rates: GEMMs at 500 TFLOP/s, attention at 300 TFLOP/s (4 bh s^2 d forward, twice that
// backward), all-reduces at 5 us + bytes / 200 GB/s; listed points (the models' exact shapes) 1.3
// times slower than that, so that a hit of the exact table is told from the grid's value.
double gemm_seconds(double m, double n, double k) { return 2 * m * n * k / 5e14; }
double attention_seconds(double bh, double s, double d, bool backward) {
  return (backward ? 8 : 4) * bh * s * s * d / 3e14;
}
double allreduce_seconds(double bytes) { return 5e-6 + bytes / 2e11; }
constexpr double kListedFactor = 1.3;

std::string gemm_text(const std::string& layout, int64_t m, int64_t n, int64_t k) {
  return "calib/gemm.bf16/" + layout + "/m=" + std::to_string(m) + ",n=" + std::to_string(n) +
         ",k=" + std::to_string(k);
}

// The bench's grids (GEMM 2 x 2 x 2 per layout, attention 2 x 2 x 2, all-reduce of 2 GPUs at
// 1 KiB to 1 MiB) and the listed points, which join the measurements as the bench writes them.
struct Listed {
  std::vector<CalibrationMeasurement> measurements;
  std::set<std::string> listed;
  void add(const std::string& text, double seconds, bool is_listed) {
    measurements.push_back(fabricated(text, seconds));
    if (is_listed) listed.insert(text);
  }
};

Listed grid_measurements() {
  Listed l;
  for (const std::string layout : {"fwd", "dgrad", "wgrad"}) {
    for (const int64_t m : {1024, 4096})
      for (const int64_t n : {1024, 4096})
        for (const int64_t k : {1024, 4096})
          l.add(gemm_text(layout, m, n, k), gemm_seconds(m, n, k), false);
  }
  for (const bool backward : {false, true}) {
    for (const int64_t bh : {16, 64})
      for (const int64_t s : {512, 1024})
        for (const int64_t d : {64, 128})
          l.add(std::string("calib/attention.") + (backward ? "bwd" : "fwd") + ".bf16/bh=" +
                    std::to_string(bh) + ",s=" + std::to_string(s) + ",d=" + std::to_string(d),
                attention_seconds(bh, s, d, backward), false);
  }
  for (int64_t bytes = 1024; bytes <= (int64_t{1} << 20); bytes *= 4) {
    l.add("calib/allreduce.nvlink/g=2,bytes=" + std::to_string(bytes), allreduce_seconds(bytes),
          false);
  }
  for (auto& m : l.measurements) {
    if (m.range.kind == MeasurementKind::kCollective) m.seconds.nccl = m.seconds.all;
  }
  return l;
}

TEST(CalibrateProfileTest, ListedPointsLandInTheExactTablesAndThePricesAreExact) {
  Listed l = grid_measurements();
  // A model's dgrad GEMM, an attention shape and a bucket all-reduce, off every grid axis.
  l.add(gemm_text("dgrad", 3072, 2304, 768), kListedFactor * gemm_seconds(3072, 2304, 768), true);
  l.add("calib/attention.bwd.bf16/bh=24,s=2048,d=128",
        kListedFactor * attention_seconds(24, 2048, 128, true), true);
  l.add("calib/allreduce.nvlink/g=2,bytes=3145728", kListedFactor * allreduce_seconds(3145728),
        true);
  l.measurements.back().seconds.nccl = l.measurements.back().seconds.all;
  CalibrationInfo info;
  info.listed_ranges = l.listed;
  CalibrationReport report;
  const spec::HardwareProfile p =
      calibrate_profile(fabricated_data(std::move(l.measurements)),
                        spec::load_hardware_profile("h100-sxm"), info, &report);
  // The grids as the bench measured them; the exact tables with every point.
  EXPECT_EQ(table(p, "gemm.bf16.dgrad").points_size(), 8);
  EXPECT_EQ(table(p, "gemm.bf16.dgrad.exact").points_size(), 9);
  EXPECT_EQ(table(p, "gemm.bf16.fwd.exact").points_size(), 8);
  EXPECT_EQ(table(p, "attention.bwd.bf16").points_size(), 8);
  EXPECT_EQ(table(p, "attention.bwd.bf16.exact").points_size(), 9);
  EXPECT_EQ(table(p, "allreduce.nvlink").points_size(), 6);
  EXPECT_EQ(table(p, "allreduce.nvlink.exact").points_size(), 7);
  // Points keep 7 significant digits.
  const double gemm_point = seconds_at(table(p, "gemm.bf16.dgrad.exact"), {3072, 2304, 768});
  EXPECT_LE(rel_err(gemm_point, kListedFactor * gemm_seconds(3072, 2304, 768)), 1e-6);
  EXPECT_EQ(report.notes,
            (std::vector<std::string>{
                "table gemm.bf16.dgrad: 1 of 1 points of the point list lie off the grid's axes; "
                "in gemm.bf16.dgrad.exact only",
                "table attention.bwd.bf16: 1 of 1 points of the point list lie off the grid's "
                "axes; in attention.bwd.bf16.exact only",
                "table allreduce.nvlink: 1 of 1 points of the point list lie off the grid's axes; "
                "in allreduce.nvlink.exact only"}));
  const std::string& provenance = table(p, "gemm.bf16.dgrad.exact").provenance();
  EXPECT_EQ(provenance.rfind("the measured points of gemm.bf16.dgrad at their exact keys", 0), 0u)
      << provenance;

  // The cost model prices the graph's ops of those shapes at the listed times exactly, and
  // interpolates the others on the grid (the 1.3 factor is not there).
  const auto model = cost::make_calibrated_cost_model(spec::to_hardware(p, "calibrated"));
  graph::Op gemm;
  gemm.kind = graph::OpKind::kGemm;
  gemm.label = graph::OpLabel::kMlpFc2Dgrad;
  gemm.gemm = {3072, 2304, 768};
  EXPECT_EQ(model->op_seconds(gemm), gemm_point);
  gemm.gemm = {2048, 2048, 2048};
  EXPECT_LE(rel_err(model->op_seconds(gemm), gemm_seconds(2048, 2048, 2048)), 1e-6);
  graph::Op attention;
  attention.kind = graph::OpKind::kAttention;
  attention.pass = graph::Pass::kBackward;
  attention.attn_batch_heads = 24;
  attention.attn_seq = 2048;
  attention.attn_head_dim = 128;
  EXPECT_EQ(model->op_seconds(attention),
            seconds_at(table(p, "attention.bwd.bf16.exact"), {24, 2048, 128}));
  EXPECT_LE(
      rel_err(model->op_seconds(attention), kListedFactor * attention_seconds(24, 2048, 128, true)),
      1e-6);
  graph::Op allreduce;
  allreduce.kind = graph::OpKind::kAllReduce;
  allreduce.group_size = 2;
  allreduce.bytes = 3145728;
  EXPECT_EQ(model->op_seconds(allreduce),
            seconds_at(table(p, "allreduce.nvlink.exact"), {2, 3145728}));
  EXPECT_LE(rel_err(model->op_seconds(allreduce), kListedFactor * allreduce_seconds(3145728)),
            1e-6);
}

// FP8 GEMM measurements (calib/gemm.fp8/...) become the gemm.fp8 tables by layout, which price
// the FP8 recipe's GEMMs (and only them); gemm_max_fp8 is then their best rate over the FP8 peak,
// no longer the base's ratio to gemm_max.
TEST(CalibrateProfileTest, Fp8GemmsGetTheirOwnTablesAndEfficiency) {
  Listed l = grid_measurements();
  for (const std::string layout : {"fwd", "dgrad", "wgrad"}) {
    for (const int64_t m : {1024, 4096})
      for (const int64_t n : {1024, 4096})
        for (const int64_t k : {1024, 4096})
          l.add("calib/gemm.fp8/" + layout + "/m=" + std::to_string(m) + ",n=" + std::to_string(n) +
                    ",k=" + std::to_string(k),
                gemm_seconds(m, n, k) / 1.6, false);
  }
  // The casts: B = the bf16 tensor, keyed by the 2B the kernel moves.
  for (int64_t b = int64_t{1} << 20; b <= (int64_t{1} << 26); b *= 4)
    l.add("calib/memory.fp8_cast/bytes=" + std::to_string(b), 2e-6 + 2.0 * b / 2e12, false);
  CalibrationReport report;
  const spec::HardwareProfile base = spec::load_hardware_profile("h100-sxm");
  const spec::HardwareProfile p = calibrate_profile(fabricated_data(std::move(l.measurements)),
                                                    base, CalibrationInfo{}, &report);
  for (const char* name : {"gemm.fp8.fwd", "gemm.fp8.dgrad", "gemm.fp8.wgrad"})
    EXPECT_EQ(table(p, name).points_size(), 8) << name;
  EXPECT_EQ(table(p, "memory.fp8_cast").points_size(), 4);
  EXPECT_DOUBLE_EQ(seconds_at(table(p, "memory.fp8_cast"), {2.0 * (1 << 20)}),
                   2e-6 + 2.0 * (1 << 20) / 2e12);
  // Best FP8 rate: 2mnk / (2mnk / 5e14 / 1.6) = 8e14 FLOP/s over the FP8 peak.
  EXPECT_NEAR(p.efficiency().gemm_max_fp8().value(),
              8e14 / spec::to_hardware(base, "base").peak_fp8_flops, 1e-3);
  const auto model = cost::make_calibrated_cost_model(spec::to_hardware(p, "calibrated"),
                                                      cost::CollectiveAlgorithm::kAuto, spec::FP8);
  graph::Op gemm;
  gemm.kind = graph::OpKind::kGemm;
  gemm.label = graph::OpLabel::kMlpFc1Wgrad;
  gemm.gemm = {4096, 1024, 4096};
  gemm.fp8 = true;
  EXPECT_LE(rel_err(model->op_seconds(gemm), gemm_seconds(4096, 1024, 4096) / 1.6), 1e-6);
  gemm.fp8 = false;  // a bf16 GEMM keeps the bf16 table
  EXPECT_LE(rel_err(model->op_seconds(gemm), gemm_seconds(4096, 1024, 4096)), 1e-6);
}

// Many listed points scattered over the grid's axes leave the grid whole; the exact table holds
// them all. (A listed shape on the grid is measured there, unmarked: not listed.)
TEST(CalibrateProfileTest, TheGridSurvivesScatteredListedPoints) {
  Listed l = grid_measurements();
  int scattered = 0;
  // Shapes sharing one or two axis values with the grid, and some on none; m = 1024 and 4096 are
  // listed more often (16 times each) than any grid value appears on the grid (4 times).
  for (const int64_t m : {768, 1024, 2304, 4096, 6144}) {
    for (const int64_t n : {1024, 1536, 3072, 4096}) {
      for (const int64_t k : {512, 1024, 2048, 4096, 8192}) {
        const std::string text = gemm_text("wgrad", m, n, k);
        const bool on_grid =
            (m == 1024 || m == 4096) && (n == 1024 || n == 4096) && (k == 1024 || k == 4096);
        if (on_grid) continue;  // measured on the grid already: the bench skips it
        l.add(text, kListedFactor * gemm_seconds(m, n, k), true);
        ++scattered;
      }
    }
  }
  CalibrationInfo info;
  info.listed_ranges = l.listed;
  CalibrationReport report;
  const spec::HardwareProfile p =
      calibrate_profile(fabricated_data(std::move(l.measurements)),
                        spec::load_hardware_profile("h100-sxm"), info, &report);
  const spec::CalibratedTable& grid = table(p, "gemm.bf16.wgrad");
  ASSERT_EQ(grid.points_size(), 8);
  for (const auto& point : grid.points()) {  // the grid's own times, not the listed ones
    EXPECT_LE(rel_err(point.seconds(), gemm_seconds(point.key(0), point.key(1), point.key(2))),
              1e-6);
  }
  EXPECT_EQ(table(p, "gemm.bf16.wgrad.exact").points_size(), 8 + scattered);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_EQ(report.notes[0], "table gemm.bf16.wgrad: " + std::to_string(scattered) + " of " +
                                 std::to_string(scattered) +
                                 " points of the point list lie off the grid's axes; in "
                                 "gemm.bf16.wgrad.exact only");
}

}  // namespace
}  // namespace mpsim::calibration
