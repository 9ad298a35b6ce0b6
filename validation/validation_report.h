// The validation report: Markdown with the tables, and the per-configuration results as CSV.
// Metrics, defined once here:
//   error                 (predicted - measured) / measured, signed, per configuration.
//   MAPE                  mean over configurations of |error|; "worst" the largest |error|.
//   iteration time        ConfigComparison's (median measured iteration; simulated iteration).
//   peak memory           per configuration, the largest over ranks on each side.
//   op kind error         per configuration and kind, on the compared (slowest) rank; a kind
//                         enters a kind's MAPE only where its measured time is at least
//                         kMinKindShare of the measured iteration (smaller ones are noise-sized
//                         and listed as such, not hidden: their rows stay in the detail tables).
// The CSV has one row per configuration with the columns of csv_header(), in that order; the
// per-rank peak memory columns hold one value per rank, in rank order, separated by ';'.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "validation/comparison.h"

namespace mpsim::validation {

inline constexpr double kMinKindShare = 0.02;

struct ErrorSummary {
  int64_t count = 0;
  double mape = 0;
  double worst = 0;  // signed error of the largest magnitude
  std::string worst_config;
};

ErrorSummary iteration_summary(const std::vector<ConfigComparison>& rows);
std::optional<ErrorSummary> loo_iteration_summary(const std::vector<ConfigComparison>& rows);
ErrorSummary memory_summary(const std::vector<ConfigComparison>& rows);
ErrorSummary kind_summary(const std::vector<ConfigComparison>& rows, OpCategory kind);

struct ReportContext {
  std::string title = "Validation: predicted against measured";
  std::string machine;  // e.g. "2 x NVIDIA H200 (host ...)"
  std::string date;
  std::vector<std::string> commands;  // how the report was made
  std::string profile;                // the microbenchmark-calibrated profile (path and name)
  std::string profile_provenance;
  std::vector<std::string> notes;  // one paragraph each, after the summary
};

std::string markdown_report(const std::vector<ConfigComparison>& rows,
                            const ReportContext& context);

std::string csv_header();
std::string csv_report(const std::vector<ConfigComparison>& rows);

}  // namespace mpsim::validation
