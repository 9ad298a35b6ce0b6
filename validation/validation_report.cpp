#include "validation/validation_report.h"

#include <cmath>
#include <sstream>

#include "common/text.h"
#include "simulator/spec/config_words.h"

namespace mpsim::validation {
namespace {

std::string percent(double error) { return common::printf_string("%+.1f %%", 100 * error); }

std::string plain_percent(double value) { return common::printf_string("%.1f %%", 100 * value); }

std::string ms(double seconds) { return common::printf_string("%.2f", seconds * 1e3); }

std::string gib(int64_t bytes) {
  return common::printf_string("%.2f", static_cast<double>(bytes) / (1ull << 30));
}

std::string layout(const ConfigComparison& c) {
  const spec::ParallelConfig& p = c.config;
  std::ostringstream out;
  out << "TP" << p.tensor_parallel() << " PP" << p.pipeline_parallel() << " DP"
      << p.data_parallel();
  if (p.sequence_parallel()) out << " SP";
  if (p.pipeline_parallel() > 1) {
    out << " " << spec::schedule_word(p.schedule());
    if (p.virtual_pipeline_stages() > 1) out << " v" << p.virtual_pipeline_stages();
  }
  out << ", mbs " << p.micro_batch_size() << ", gbs " << p.global_batch_size();
  if (p.recompute() != spec::RECOMPUTE_NONE)
    out << ", recompute " << spec::recompute_word(p.recompute());
  if (p.zero_stage() > 0) out << ", dist-opt";
  return out.str();
}

// Per-rank values in rank order, separated by ';' (one CSV field).
std::string ranks_list(const std::vector<int64_t>& values) {
  std::string text;
  for (const int64_t v : values) text += (text.empty() ? "" : ";") + std::to_string(v);
  return text;
}

void add(ErrorSummary& s, double error, const std::string& config) {
  s.mape += std::abs(error);
  if (s.count == 0 || std::abs(error) > std::abs(s.worst)) {
    s.worst = error;
    s.worst_config = config;
  }
  ++s.count;
}

ErrorSummary finish(ErrorSummary s) {
  if (s.count > 0) s.mape /= static_cast<double>(s.count);
  return s;
}

std::string summary_cells(const ErrorSummary& s) {
  if (s.count == 0) return "| - | - | - |";
  return "| " + plain_percent(s.mape) + " | " + percent(s.worst) + " (" + s.worst_config + ") | " +
         std::to_string(s.count) + " |";
}

}  // namespace

ErrorSummary iteration_summary(const std::vector<ConfigComparison>& rows) {
  ErrorSummary s;
  for (const ConfigComparison& c : rows) add(s, c.iteration_error(), c.name);
  return finish(s);
}

std::optional<ErrorSummary> loo_iteration_summary(const std::vector<ConfigComparison>& rows) {
  ErrorSummary s;
  for (const ConfigComparison& c : rows)
    if (const auto e = c.loo_iteration_error()) add(s, *e, c.name);
  if (s.count == 0) return std::nullopt;
  return finish(s);
}

ErrorSummary memory_summary(const std::vector<ConfigComparison>& rows) {
  ErrorSummary s;
  for (const ConfigComparison& c : rows)
    if (const auto e = c.memory_error()) add(s, *e, c.name);
  return finish(s);
}

ErrorSummary kind_summary(const std::vector<ConfigComparison>& rows, OpCategory kind) {
  ErrorSummary s;
  const int k = static_cast<int>(kind);
  for (const ConfigComparison& c : rows) {
    const double measured = c.measured[k];
    if (c.measured_iteration_s <= 0 || measured < kMinKindShare * c.measured_iteration_s) continue;
    add(s, relative_error(c.predicted[k], measured), c.name);
  }
  return finish(s);
}

std::string markdown_report(const std::vector<ConfigComparison>& rows,
                            const ReportContext& context) {
  std::ostringstream out;
  out << "# " << context.title << "\n\n";
  out << "- Machine: " << context.machine << "\n- Date: " << context.date << "\n";
  out << "- Calibration (microbenchmarks only): " << context.profile << "\n";
  if (!context.profile_provenance.empty()) out << "  (" << context.profile_provenance << ")\n";
  out << "- Configurations: " << rows.size() << "\n\nCommands:\n\n```\n";
  for (const std::string& c : context.commands) out << c << "\n";
  out << "```\n\n## Summary\n\n";
  out << "| quantity | MAPE | worst | configurations |\n| --- | --- | --- | --- |\n";
  out << "| iteration time, microbenchmark calibration " << summary_cells(iteration_summary(rows))
      << "\n";
  if (const auto loo = loo_iteration_summary(rows))
    out << "| iteration time, leave-one-out over runs " << summary_cells(*loo) << "\n";
  out << "| peak memory (max over ranks) " << summary_cells(memory_summary(rows)) << "\n";
  for (int k = 0; k < kNumCategories; ++k) {
    const auto kind = static_cast<OpCategory>(k);
    out << "| op kind: " << to_string(kind) << " " << summary_cells(kind_summary(rows, kind))
        << "\n";
  }
  out << "\nAn op kind enters its row only in configurations where it takes at least "
      << plain_percent(kMinKindShare) << " of the measured iteration.\n\n";
  for (const std::string& note : context.notes) out << note << "\n\n";

  out << "## Iteration time and peak memory\n\n";
  out << "| config | model | layout | measured ms | predicted ms | error | leave-one-out ms | "
         "error "
         "| spread | measured GiB | predicted GiB | error |\n";
  out << "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (const ConfigComparison& c : rows) {
    out << "| " << c.name << " | " << c.model << " | " << layout(c) << " | "
        << ms(c.measured_iteration_s) << " | " << ms(c.predicted_iteration_s) << " | "
        << percent(c.iteration_error()) << " | ";
    if (c.predicted_loo_iteration_s) {
      out << ms(*c.predicted_loo_iteration_s) << " | " << percent(*c.loo_iteration_error());
    } else {
      out << "- | -";
    }
    out << " | " << plain_percent(c.measured_iteration_spread) << " | " << gib(c.measured_peak())
        << " | " << gib(c.predicted_peak()) << " | "
        << (c.memory_error() ? percent(*c.memory_error()) : std::string("-")) << " |\n";
  }
  out << "\nSpread: (slowest - fastest) / median over the measured iterations.\n\n";

  out << "## Peak memory per rank (GiB: measured / predicted)\n\n| config | per rank |\n| --- | "
         "--- |\n";
  for (const ConfigComparison& c : rows) {
    out << "| " << c.name << " |";
    for (size_t r = 0; r < c.predicted_peak_memory_bytes.size(); ++r) {
      const int64_t measured =
          r < c.measured_peak_memory_bytes.size() ? c.measured_peak_memory_bytes[r] : 0;
      out << " " << r << ": " << (measured > 0 ? gib(measured) : std::string("-")) << " / "
          << gib(c.predicted_peak_memory_bytes[r]) << ";";
    }
    out << " |\n";
  }
  out << "\n";

  out << "## Per op kind, slowest rank (ms per iteration: measured / predicted)\n\n| config | rank";
  for (int k = 0; k < kNumCategories; ++k) out << " | " << to_string(static_cast<OpCategory>(k));
  out << " |\n| --- | ---";
  for (int k = 0; k < kNumCategories; ++k) out << " | ---";
  out << " |\n";
  for (const ConfigComparison& c : rows) {
    out << "| " << c.name << " | " << c.compared_rank;
    for (int k = 0; k < kNumCategories; ++k)
      out << " | " << ms(c.measured[k]) << " / " << ms(c.predicted[k]);
    out << " |\n";
  }
  return out.str();
}

std::string csv_header() {
  std::string header =
      "config,model,layout,measured_iteration_s,predicted_iteration_s,iteration_error,"
      "predicted_loo_iteration_s,loo_iteration_error,measured_peak_memory_bytes,"
      "predicted_peak_memory_bytes,memory_error,measured_rank_peak_memory_bytes,"
      "predicted_rank_peak_memory_bytes,compared_rank";
  for (int k = 0; k < kNumCategories; ++k) {
    const std::string key(category_key(static_cast<OpCategory>(k)));
    header += ",measured_" + key + "_s,predicted_" + key + "_s";
  }
  return header;
}

std::string csv_report(const std::vector<ConfigComparison>& rows) {
  std::ostringstream out;
  out.precision(9);
  out << csv_header() << "\n";
  for (const ConfigComparison& c : rows) {
    out << c.name << "," << c.model << ",\"" << layout(c) << "\"," << c.measured_iteration_s << ","
        << c.predicted_iteration_s << "," << c.iteration_error() << ",";
    if (c.predicted_loo_iteration_s) {
      out << *c.predicted_loo_iteration_s << "," << *c.loo_iteration_error();
    } else {
      out << ",";
    }
    out << "," << c.measured_peak() << "," << c.predicted_peak() << ",";
    if (c.memory_error()) out << *c.memory_error();
    out << "," << ranks_list(c.measured_peak_memory_bytes) << ","
        << ranks_list(c.predicted_peak_memory_bytes) << "," << c.compared_rank;
    for (int k = 0; k < kNumCategories; ++k) out << "," << c.measured[k] << "," << c.predicted[k];
    out << "\n";
  }
  return out.str();
}

}  // namespace mpsim::validation
