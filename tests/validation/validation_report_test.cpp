// validation/validation_report: the summary arithmetic on hand-made rows (errors chosen so the
// MAPE and worst case are known), the CSV's required columns, and the Markdown's tables.
#include "validation/validation_report.h"

#include <gtest/gtest.h>

#include <sstream>

namespace mpsim::validation {
namespace {

ConfigComparison row(const std::string& name, double measured, double predicted,
                     int64_t mem_measured, int64_t mem_predicted) {
  ConfigComparison c;
  c.name = name;
  c.model = "gpt2-124m";
  c.config.set_num_gpus(1);
  c.config.set_tensor_parallel(1);
  c.config.set_pipeline_parallel(1);
  c.config.set_data_parallel(1);
  c.config.set_micro_batch_size(4);
  c.config.set_global_batch_size(8);
  c.config.set_recompute(spec::RECOMPUTE_NONE);
  c.measured_iteration_s = measured;
  c.predicted_iteration_s = predicted;
  c.measured_peak_memory_bytes = {mem_measured};
  c.predicted_peak_memory_bytes = {mem_predicted};
  c.measured[static_cast<int>(OpCategory::kGemm)] = measured / 2;
  c.predicted[static_cast<int>(OpCategory::kGemm)] = predicted / 2;
  c.measured[static_cast<int>(OpCategory::kOptimizer)] = measured / 100;  // 1 %: below the share
  c.predicted[static_cast<int>(OpCategory::kOptimizer)] = measured;
  return c;
}

// Errors +10 % and -20 %: MAPE 15 %, worst -20 %. Memory +5 % and 0 %: MAPE 2.5 %.
TEST(ValidationReportTest, SummariesOfHandRows) {
  const std::vector<ConfigComparison> rows = {row("a", 1.0, 1.1, 100, 105),
                                              row("b", 2.0, 1.6, 200, 200)};
  const ErrorSummary it = iteration_summary(rows);
  EXPECT_EQ(it.count, 2);
  EXPECT_NEAR(it.mape, 0.15, 1e-12);
  EXPECT_NEAR(it.worst, -0.2, 1e-12);
  EXPECT_EQ(it.worst_config, "b");
  const ErrorSummary mem = memory_summary(rows);
  EXPECT_NEAR(mem.mape, 0.025, 1e-12);
  EXPECT_NEAR(mem.worst, 0.05, 1e-12);
  const ErrorSummary gemm = kind_summary(rows, OpCategory::kGemm);
  EXPECT_EQ(gemm.count, 2);
  EXPECT_NEAR(gemm.mape, 0.15, 1e-12);
  // The optimizer takes 1 % of each iteration: below kMinKindShare, so in no kind summary.
  EXPECT_EQ(kind_summary(rows, OpCategory::kOptimizer).count, 0);
  EXPECT_FALSE(loo_iteration_summary(rows).has_value());
}

TEST(ValidationReportTest, CsvHasTheRequiredColumnsAndOneRowPerConfiguration) {
  const std::string header = csv_header();
  for (const char* column : {"config", "measured_iteration_s", "predicted_iteration_s",
                             "measured_peak_memory_bytes", "predicted_peak_memory_bytes"})
    EXPECT_NE(("," + header + ",").find(std::string(",") + column + ","), std::string::npos)
        << column;
  const std::string csv = csv_report({row("a", 1.0, 1.1, 100, 105), row("b", 2.0, 1.6, 200, 200)});
  std::istringstream lines(csv);
  std::vector<std::string> all;
  for (std::string l; std::getline(lines, l);) all.push_back(l);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], header);
  EXPECT_EQ(all[1].rfind("a,gpt2-124m,\"TP1 PP1 DP1, mbs 4, gbs 8\",1,1.1,", 0), 0u) << all[1];
  EXPECT_NE(all[1].find(",100,105,0.05,100,105,0,"), std::string::npos) << all[1];
}

TEST(ValidationReportTest, MarkdownHasTheSummaryAndEveryConfiguration) {
  ReportContext context;
  context.machine = "1 x GPU";
  context.date = "2026-11-26";
  context.profile = "hw_profiles/x.textproto";
  const std::string md = markdown_report({row("a", 1.0, 1.1, 100, 105)}, context);
  EXPECT_NE(md.find("| iteration time, microbenchmark calibration | 10.0 % | +10.0 % (a) | 1 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| a | gpt2-124m | TP1 PP1 DP1, mbs 4, gbs 8 | 1000.00 | 1100.00 | +10.0 % |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| a | 0: 0.00 / 0.00; |"), std::string::npos) << md;  // 100 and 105 bytes
}

}  // namespace
}  // namespace mpsim::validation
