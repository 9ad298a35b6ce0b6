// `mpsim sweep`; see sweep_command.h.
#include "tools/mpsim/sweep_command.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>

#include "common/text.h"
#include "simulator/simulation/simulation.h"
#include "simulator/spec/megatron_args.h"
#include "simulator/spec/spec_loader.h"
#include "simulator/sweep/config_space.h"
#include "simulator/sweep/sweep.h"
#include "simulator/sweep/sweep_output.h"
#include "tools/mpsim/layout_flags.h"
#include "tools/mpsim/sweep_args.h"

namespace mpsim::cli {
namespace {

// How to reproduce a row: the simulate command, Megatron-LM's flags (null where Megatron-LM does
// not run it) and the framework that does.
nlohmann::json row_command(const SweepRequest& request, const spec::ModelSpec& model,
                           const spec::ParallelConfig& config) {
  const std::optional<std::string> megatron = spec::megatron_args(model, config);
  const std::string fp8 = model.dtype() == spec::FP8 && request.fp8 ? " --fp8" : "";
  return {{"mpsim", simulate_command(request.model, request.hardware, config) + fp8},
          {"megatron", megatron ? nlohmann::json(*megatron) : nlohmann::json(nullptr)},
          {"framework", spec::framework_for(config)}};
}

// --format megatron: per row of the top K, a comment with its result, then the flags that make
// Megatron-LM's pretrain_gpt.py run it (or the framework that does).
std::string megatron_listing(const sweep::SweepResult& result, int top) {
  std::string out;
  const size_t n = std::min(result.rows.size(), static_cast<size_t>(std::max(top, 0)));
  for (size_t i = 0; i < n; ++i) {
    const sweep::SweepRow& row = result.rows[i];
    const report::SimulationResult& r = row.result;
    out += common::printf_string("# %zu. %s: %.2f ms, %.0f tokens/s, MFU %.1f %%\n", i + 1,
                                 sweep::config_label(row.config).c_str(), r.iteration_time_s * 1e3,
                                 r.tokens_per_s, 100 * r.mfu);
    const nlohmann::json& megatron = row.command.at("megatron");
    out += megatron.is_null() ? "# not run by Megatron-LM; framework: " +
                                    row.command.at("framework").get<std::string>() + "\n"
                              : megatron.get<std::string>() + "\n";
  }
  if (n == 0) out += "# no configuration fits in memory\n";
  return out;
}

// A one-line progress bar redrawn in place: done/total, rate and ETA.
class ProgressBar {
 public:
  explicit ProgressBar(std::ostream& err) : err_(err), start_(std::chrono::steady_clock::now()) {}

  void update(int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100)) return;  // redraw at 10 Hz
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
    constexpr int kWidth = 30;
    const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
    char line[160];
    std::snprintf(line, sizeof line, "\r[%s%s] %lld/%lld  %.0f configs/s  ETA %.0f s ",
                  std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                  static_cast<long long>(done), static_cast<long long>(total), rate, eta);
    err_ << line << std::flush;
    if (done == total) err_ << "\n";
  }

 private:
  std::ostream& err_;
  std::chrono::steady_clock::time_point start_, last_{};
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// Fails now rather than after a long sweep: both writers create `path + ".tmp"` first.
void check_writable(const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream probe(tmp);
    if (!probe) {
      throw std::runtime_error(path + ": cannot create " + tmp + " (" + std::strerror(errno) +
                               "); expected a writable folder");
    }
  }
  std::remove(tmp.c_str());
}

std::string command_line(const std::vector<std::string>& args) {
  std::string line = "mpsim sweep";
  for (const std::string& a : args) line += " " + a;
  return line;
}

}  // namespace

int run_sweep(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const SweepRequest request = parse_sweep_args(args);
  if (request.help) {
    out << sweep_help();
    return 0;
  }
  spec::ModelSpec model = spec::load_model_spec(request.model);
  if (request.fp8) model.set_dtype(spec::FP8);
  const spec::Hardware hardware = spec::load_hardware(request.hardware);
  if (!request.out_path.empty()) check_writable(request.out_path);
  if (!request.trace_best_path.empty()) check_writable(request.trace_best_path);
  const std::vector<spec::ParallelConfig> configs =
      sweep::enumerate_configs(model, hardware, request.gpus, request.gbs, request.constraints);

  sweep::SweepOptions options;
  options.threads = request.threads;
  options.top_k = request.top;
  options.memory_headroom = request.memory_headroom;
  ProgressBar bar(err);
  if (isatty(STDERR_FILENO)) {
    options.progress = [&bar](int64_t done, int64_t total) { bar.update(done, total); };
  }
  sweep::SweepResult result = sweep::run_sweep(model, hardware, configs, options);
  // Each row's command where an output shows it: every row in JSON, CSV and SQLite, the top
  // rows of the Megatron-LM listing, none in the table.
  const bool every_row = request.format == SweepFormat::kJson ||
                         request.format == SweepFormat::kCsv || !request.out_path.empty();
  const size_t commands =
      every_row ? result.rows.size()
      : request.format == SweepFormat::kMegatron
          ? std::min(result.rows.size(), static_cast<size_t>(std::max(request.top, 0)))
          : 0;
  for (size_t i = 0; i < commands; ++i)
    result.rows[i].command = row_command(request, model, result.rows[i].config);

  const std::map<std::string, std::string> meta = {{"model", model.name()},
                                                   {"hardware", hardware.name},
                                                   {"gpus", std::to_string(request.gpus)},
                                                   {"gbs", std::to_string(request.gbs)},
                                                   {"date", utc_now()},
                                                   {"command", command_line(args)}};
  switch (request.format) {
    case SweepFormat::kTable:
      out << sweep::top_table(result, request.top);
      break;
    case SweepFormat::kJson:
      out << sweep::to_json(result, meta).dump(2) << "\n";
      break;
    case SweepFormat::kCsv:
      out << sweep::to_csv(result);
      break;
    case SweepFormat::kMegatron:
      out << megatron_listing(result, request.top);
      break;
  }
  err << sweep::summary_line(result) << "\n";

  if (!request.out_path.empty()) {
    sweep::write_sqlite(request.out_path, result, meta);
    err << "results written to " << request.out_path << "\n";
  }
  if (!request.trace_best_path.empty()) {
    if (result.rows.empty()) {
      err << "no configuration fits; no trace written\n";
    } else {
      simulation::SimulateOptions trace_options;
      trace_options.trace_path = request.trace_best_path;
      trace_options.memory_headroom = request.memory_headroom;
      simulation::simulate(model, hardware, result.rows.front().config, trace_options);
      err << "trace of the fastest configuration written to " << request.trace_best_path << "\n";
    }
  }
  return 0;
}

}  // namespace mpsim::cli
