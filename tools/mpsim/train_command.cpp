// `mpsim train`; see train_command.h.
#include "tools/mpsim/train_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

#include "executor/core/launch.h"
#include "executor/core/rank_layout.h"
#include "executor/core/train_options.h"
#include "simulator/spec/data_paths.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"
#include "tools/mpsim/layout_flags.h"
#include "tools/mpsim/train_args.h"
#ifdef MPSIM_HAVE_EXECUTOR
#include "executor/cuda/trainer.h"
#endif

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

// The profile the config is validated against (it checks the dtype has a peak rate) and whose
// peak rate MFU is reported against; the trainer itself runs on whatever GPU it finds.
constexpr const char* kValidationHardware = "h100-sxm";

// --dry-run: the launch without the training. Rank 0 hands out a token through the same
// rendezvous the NCCL id travels by; each rank prints where it sits in the layout.
int check_launch(const executor::TrainOptions& options, const executor::LaunchEnv& env,
                 std::ostream& out, std::ostream& err) {
  try {
    std::vector<uint8_t> token(16);
    for (size_t i = 0; i < token.size(); ++i) token[i] = static_cast<uint8_t>(i * 37 + 11);
    if (env.world_size > 1) {
      const std::vector<uint8_t> got = executor::rendezvous(
          env, env.rank == 0 ? token : std::vector<uint8_t>{}, std::chrono::seconds(120));
      if (got != token) throw std::runtime_error("the rendezvous delivered a corrupted token");
    }
    const executor::RankLayout l = executor::make_rank_layout(
        options.config, options.model.num_layers(), options.model.tied_embeddings(), env.rank);
    nlohmann::json line;
    line["rank"] = env.rank;
    line["world_size"] = env.world_size;
    line["local_rank"] = env.local_rank;
    line["launcher"] = env.slurm ? "slurm" : "mpsim";
    line["master"] = env.master_addr + ":" + std::to_string(env.master_port);
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    line["host"] = host;
    line["tp_rank"] = l.tp_rank;
    line["pp_rank"] = l.pp_rank;
    line["dp_rank"] = l.dp_rank;
    line["tp_group"] = l.tp_group;
    line["dp_group"] = l.dp_group;
    line["pp_group"] = l.pp_group;
    std::vector<std::vector<int64_t>> layers;
    for (int c = 0; c < l.chunks; ++c)
      layers.push_back({l.first_layer(c), l.first_layer(c) + l.layers_per_chunk - 1});
    line["layers"] = layers;
    out << line.dump() + "\n" << std::flush;  // one write per rank: lines do not interleave
    return 0;
  } catch (const std::exception& e) {
    err << "mpsim train: rank " << env.rank << ": " << e.what() << std::endl;
    return 1;
  }
}

int run_rank(const executor::TrainOptions& options, const executor::LaunchEnv& env,
             std::ostream& out, std::ostream& err) {
#ifdef MPSIM_HAVE_EXECUTOR
  return executor::run_training_rank(options, env, out, err);
#else
  err << "mpsim was built without the CUDA executor (nvcc not found at build time)\n";
  return 1;
#endif
}

}  // namespace

std::string resolve_data_path(const std::string& path) {
  const fs::path typed(path);
  const std::vector<fs::path> candidates =
      typed.is_absolute() ? std::vector<fs::path>{typed} : spec::data_candidates(typed);
  for (const fs::path& candidate : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec))
      return fs::absolute(candidate).lexically_normal().string();
  }
  throw spec::FlagError("--data", "'" + path + "' is not a file (looked for " +
                                      spec::looked_for(candidates) +
                                      "); expected a text corpus, or --synthetic");
}

int run_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const TrainRequest request = parse_train_args(args);
  if (request.help) {
    out << train_help();
    return 0;
  }
  executor::TrainOptions options = request.options;
  options.model = spec::load_model_spec(request.model);
  if (request.fp8) options.model.set_dtype(spec::FP8);
  const spec::Hardware hardware = spec::load_hardware(kValidationHardware);
  options.config = checked_layout(options.config, options.model, hardware);
  options.peak_flops =
      hardware.peak_flops(options.model.dtype());  // MFU as the simulator counts it
  if (!options.synthetic) options.data_path = resolve_data_path(options.data_path);
  auto run = request.dry_run ? check_launch : run_rank;
#ifndef MPSIM_HAVE_EXECUTOR
  // Say so once, before starting ranks that would each say it.
  if (!request.dry_run) return run_rank(options, executor::LaunchEnv{}, out, err);
#endif

  const int gpus = static_cast<int>(options.config.num_gpus());
  const std::optional<executor::LaunchEnv> launched =
      executor::launch_env_from(executor::current_environment());
  if (!launched) {
    if (gpus > 1) {
      std::vector<std::string> argv = {"/proc/self/exe", "train"};
      argv.insert(argv.end(), args.begin(), args.end());
      return executor::launch_local_ranks(gpus, argv, err);
    }
    executor::LaunchEnv single;
    single.master_addr = "127.0.0.1";
    return run(options, single, out, err);
  }
  if (launched->world_size != gpus) {
    const std::string count = std::to_string(launched->world_size);
    const std::string plural = launched->world_size == 1 ? "" : "s";
    const std::string source =
        launched->slurm
            ? "Slurm started " + count + " task" + plural + " (SLURM_NTASKS)"
            : "the launcher started " + count + " rank" + plural + " (MPSIM_WORLD_SIZE)";
    throw spec::FlagError("--gpus", std::to_string(gpus) + " GPUs requested but " + source +
                                        "; expected one task per GPU (srun -n " +
                                        std::to_string(gpus) + ")");
  }
  return run(options, *launched, out, err);
}

}  // namespace mpsim::cli
