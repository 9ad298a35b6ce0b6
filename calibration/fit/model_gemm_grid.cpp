// The GEMM grid derived from the models' graphs; what is collected and how it is sampled is in
// model_gemm_grid.h.
#include "calibration/fit/model_gemm_grid.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <set>
#include <stdexcept>

#include "common/text.h"
#include "simulator/graph/model_math.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::calibration {
namespace {

std::string parameters_text(double parameters) { return common::printf_string("%.3g", parameters); }

double sum(const std::vector<int64_t>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0,
                         [](double s, int64_t v) { return s + static_cast<double>(v); });
}

// The config of one stage, one micro-batch, TP `tp`, for the graph's GEMM shapes.
spec::ParallelConfig shape_config(int64_t tp, int64_t mbs) {
  spec::ParallelConfig c;
  c.set_num_gpus(tp);
  c.set_tensor_parallel(tp);
  c.set_pipeline_parallel(1);
  c.set_micro_batch_size(mbs);
  c.set_global_batch_size(mbs);
  c.set_attention(spec::ATTENTION_UNFUSED);  // any kind: only the GEMM shapes are read
  return c;
}

}  // namespace

double GemmGrid::flop_per_layout() const { return 2 * sum(m) * sum(n) * sum(k); }

std::vector<int64_t> sample_gemm_axis(const std::vector<int64_t>& values, int64_t max_value,
                                      int count) {
  std::set<int64_t> clipped;
  for (const int64_t v : values) clipped.insert(std::min(v, max_value));
  std::vector<int64_t> all(clipped.begin(), clipped.end());
  if (static_cast<int>(all.size()) <= count) return all;
  const double lo = std::log(static_cast<double>(all.front()));
  const double hi = std::log(static_cast<double>(all.back()));
  std::set<int64_t> picked;
  for (int i = 0; i < count; ++i) {
    const double target = lo + (hi - lo) * i / (count - 1);
    // The value nearest the target in log scale (the first of two equally near).
    const auto nearest = std::min_element(all.begin(), all.end(), [&](int64_t a, int64_t b) {
      return std::abs(std::log(static_cast<double>(a)) - target) <
             std::abs(std::log(static_cast<double>(b)) - target);
    });
    picked.insert(*nearest);
  }
  return {picked.begin(), picked.end()};
}

GemmGrid model_gemm_grid(const std::vector<spec::ModelSpec>& models, const spec::Hardware& hardware,
                         const GemmGridOptions& options) {
  if (options.max_values < 2) {
    throw std::invalid_argument("GEMM grid: max_values = " + std::to_string(options.max_values) +
                                ", expected at least 2 values per axis");
  }
  if (options.max_dim < 1 || options.micro_batch_sizes.empty()) {
    throw std::invalid_argument("GEMM grid: expected max_dim >= 1 and a micro-batch size");
  }
  const int64_t max_tp =
      options.max_tensor_parallel > 0 ? options.max_tensor_parallel : hardware.gpus_per_node;
  GemmGrid grid;
  for (int64_t tp = 1; tp <= std::max<int64_t>(max_tp, 1); tp *= 2)
    grid.tensor_parallel.push_back(tp);

  std::set<GemmShapeKey> shapes;
  std::set<int64_t> m, n, k;
  for (const spec::ModelSpec& model : models) {
    const double parameters =
        static_cast<double>(graph::model_parameters(graph::model_dims(model)));
    if (parameters < options.min_parameters || parameters > options.max_parameters) continue;
    grid.models.push_back(model.name() + " (" + parameters_text(parameters) + " parameters)");
    for (const int64_t tp : grid.tensor_parallel) {
      for (const int64_t mbs : options.micro_batch_sizes) {
        spec::ParallelConfig config;
        try {
          config = spec::validate_parallel_config(shape_config(tp, mbs), model, hardware);
        } catch (const spec::FieldError& e) {
          // The model's split constraints do not depend on the micro-batch: one note per TP.
          grid.notes.push_back(model.name() + " at TP " + std::to_string(tp) +
                               " left out: " + e.what());
          break;
        }
        graph::GraphOptions graph_options;
        graph_options.gpus_per_node = std::max<int64_t>(hardware.gpus_per_node, tp);
        const graph::TrainingGraph g = graph::build_training_graph(model, config, graph_options);
        for (std::size_t v = 0; v < boost::num_vertices(g.graph); ++v) {
          const graph::Op& op = g.graph[static_cast<graph::OpVertex>(v)];
          if (op.kind != graph::OpKind::kGemm) continue;
          shapes.insert({op.gemm.m, op.gemm.n, op.gemm.k});
          m.insert(op.gemm.m);
          n.insert(op.gemm.n);
          k.insert(op.gemm.k);
        }
      }
    }
  }
  if (grid.models.empty()) {
    throw std::invalid_argument("GEMM grid: none of the " + std::to_string(models.size()) +
                                " models has between " + parameters_text(options.min_parameters) +
                                " and " + parameters_text(options.max_parameters) + " parameters");
  }
  grid.shapes.assign(shapes.begin(), shapes.end());
  grid.m = sample_gemm_axis({m.begin(), m.end()}, options.max_dim, options.max_values);
  grid.n = sample_gemm_axis({n.begin(), n.end()}, options.max_dim, options.max_values);
  grid.k = sample_gemm_axis({k.begin(), k.end()}, options.max_dim, options.max_values);
  return grid;
}

std::vector<spec::ModelSpec> load_model_folder(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (entry.path().extension() == ".textproto") files.push_back(entry.path());
  }
  if (ec) throw spec::SpecError(folder, 0, "", "cannot read the folder: " + ec.message());
  if (files.empty()) throw spec::SpecError(folder, 0, "", "no model (*.textproto) in the folder");
  std::sort(files.begin(), files.end());
  std::vector<spec::ModelSpec> models;
  for (const fs::path& file : files) models.push_back(spec::load_model_spec(file.string()));
  return models;
}

std::string comma_list(const std::vector<int64_t>& values) {
  std::string text;
  for (const int64_t v : values) text += (text.empty() ? "" : ",") + std::to_string(v);
  return text;
}

}  // namespace mpsim::calibration
