// `mpsim simulate`; see simulate_command.h.
#include "tools/mpsim/simulate_command.h"

#include <ostream>

#include "common/text.h"
#include "simulator/simulation/simulation.h"
#include "simulator/spec/spec_loader.h"
#include "tools/mpsim/layout_flags.h"
#include "tools/mpsim/megatron_input.h"
#include "tools/mpsim/simulate_args.h"

namespace mpsim::cli {

int run_simulate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const SimulateRequest request = parse_simulate_args(args);
  if (request.help) {
    out << simulate_help();
    return 0;
  }
  const spec::Hardware hardware = spec::load_hardware(request.hardware);
  spec::ModelSpec model;
  spec::ParallelConfig config;
  if (!request.megatron_args.empty()) {
    spec::MegatronRun run = read_megatron_input(request.megatron_args, request.megatron_gpus,
                                                hardware, err, "mpsim simulate");
    model = std::move(run.model);
    config = std::move(run.config);
  } else {
    model = spec::load_model_spec(request.model);
    if (request.fp8) model.set_dtype(spec::FP8);
    config = checked_layout(request.config, model, hardware);
  }

  simulation::SimulateOptions options;
  options.scope =
      request.all_ranks ? simulation::RankScope::kAllRanks : simulation::RankScope::kRepresentative;
  options.trace_path = request.trace_path;
  options.memory_headroom = request.memory_headroom;
  const report::SimulationResult result = simulation::simulate(model, hardware, config, options);

  const bool json = request.format == OutputFormat::kJson;
  if (json) {
    out << report::to_json(result).dump(2) << "\n";
  } else {
    out << report::to_table(result);
  }
  if (!request.trace_path.empty()) {
    (json ? err : out) << "trace written to " << request.trace_path << "\n";
  }
  if (result.peak_memory_bytes && !result.fits_memory) {
    constexpr double kGiB = 1 << 30;
    err << "mpsim simulate: the configuration does not fit in GPU memory: rank "
        << result.peak_memory_rank << " needs "
        << common::fixed(static_cast<double>(*result.peak_memory_bytes) / kGiB, 2) << " GiB of "
        << common::fixed(result.memory_capacity_bytes / kGiB, 2) << " GiB usable, "
        << common::fixed(report::memory_over_bytes(result) / kGiB, 2) << " GiB over"
        << (request.ignore_memory ? "" : " (--ignore-memory exits 0 anyway)") << "\n";
    if (!request.ignore_memory) return kDoesNotFit;
  }
  return 0;
}

}  // namespace mpsim::cli
