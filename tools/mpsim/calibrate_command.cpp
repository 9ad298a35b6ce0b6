// `mpsim calibrate`; see calibrate_command.h.
#include "tools/mpsim/calibrate_command.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <stdexcept>

#include "calibration/calibration_sources.h"
#include "calibration/fit/bench_output.h"
#include "calibration/fit/calibrate_profile.h"
#include "calibration/fit/model_gemm_grid.h"
#include "calibration/fit/model_points.h"
#include "calibration/fit/profile_text.h"
#include "common/process/child_process.h"
#include "common/text.h"
#include "simulator/spec/data_paths.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"
#include "tools/mpsim/calibrate_args.h"
#include "tools/mpsim/file_output.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

// The bench's GEMM axes from the models of `folder` on `base`, as flags; the grid is reported.
std::vector<std::string> gemm_grid_flags(const std::vector<spec::ModelSpec>& specs,
                                         const std::string& folder,
                                         const spec::HardwareProfile& base, std::ostream& err) {
  const calibration::GemmGrid grid = calibration::model_gemm_grid(
      specs, spec::to_hardware(base, "base profile '" + base.name() + "'"));
  std::string models;
  for (const std::string& m : grid.models) models += (models.empty() ? "" : ", ") + m;
  const std::string flop = common::printf_string("%.2g", 3 * grid.flop_per_layout());
  err << "mpsim calibrate: GEMM grid from " << grid.shapes.size() << " GEMM shapes of "
      << grid.models.size() << " models in " << folder << " (" << models << ") at TP "
      << calibration::comma_list(grid.tensor_parallel) << ": m " << calibration::comma_list(grid.m)
      << "; n " << calibration::comma_list(grid.n) << "; k " << calibration::comma_list(grid.k)
      << " (" << grid.m.size() * grid.n.size() * grid.k.size() << " shapes x 3 layouts, " << flop
      << " FLOP a repetition)\n";
  for (const std::string& note : grid.notes) err << "mpsim calibrate: note: " << note << "\n";
  return {"--gemm-m", calibration::comma_list(grid.m), "--gemm-n", calibration::comma_list(grid.n),
          "--gemm-k", calibration::comma_list(grid.k)};
}

// The local GPUs: the entries of $CUDA_VISIBLE_DEVICES where set, else the /dev/nvidia<N>
// devices; at least 1.
int64_t local_gpu_count() {
  int64_t count = 0;
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible != nullptr) {
    std::string list = visible;
    if (list.empty()) return 1;
    count = 1 + std::count(list.begin(), list.end(), ',');
    return count;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/dev", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 6 && name.starts_with("nvidia") &&
        name.find_first_not_of("0123456789", 6) == std::string::npos) {
      ++count;
    }
  }
  return std::max<int64_t>(count, 1);
}

// The models' exact shapes on `gpus` GPUs (model_points.h), written to `file` for the bench's
// --points; reported.
void write_point_list(const std::vector<spec::ModelSpec>& models, const spec::HardwareProfile& base,
                      int64_t gpus, const std::string& file, std::ostream& err) {
  calibration::ModelPointsOptions options;
  options.gpus = gpus;
  const calibration::ModelPoints points = calibration::model_points(
      models, spec::to_hardware(base, "base profile '" + base.name() + "'"), options);
  std::ofstream out(file);
  out << points.file_text();
  if (!out.flush()) throw std::runtime_error("cannot write the point list " + file);
  const std::string work =
      common::printf_string("%.2g GEMM FLOP, %.2g attention FLOP, %.2g collective bytes",
                            points.gemm_flop, points.attention_flop, points.collective_bytes);
  err << "mpsim calibrate: " << points.size() << " exact shapes of the models' graphs on " << gpus
      << " GPU(s) (" << points.gemm.size() << " GEMM, " << points.attention.size() << " attention, "
      << points.collective.size() << " collective; from " << points.graphs << " graphs; " << work
      << " a repetition) in " << file << "\n";
  for (const std::string& note : points.notes) {
    err << "mpsim calibrate: note: point list: " << note << "\n";
  }
}

// What measure() recorded: the database, and the ranges the bench measured from its point list.
struct Measured {
  std::string database;
  std::set<std::string> listed_ranges;
};

// Records calibration_bench under the profiler.
Measured measure(const CalibrateRequest& request, const spec::HardwareProfile& base,
                 std::ostream& err) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string bench =
      request.bench.empty() ? find_calibration_bench(self) : checked_bench(request.bench);
  // The grid is derived (and any model error raised) before anything runs on the GPUs.
  std::vector<spec::ModelSpec> models;
  std::string folder;
  std::vector<std::string> grid;
  if (!request.quick) {
    folder = request.models.empty() ? find_models_folder(self) : request.models;
    models = calibration::load_model_folder(folder);
    grid = gemm_grid_flags(models, folder, base, err);
  }
  std::string pattern = (fs::temp_directory_path() / "mpsim-calibrate-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("cannot create a temporary folder " + pattern + ": " +
                             std::strerror(errno));
  }
  const fs::path dir = pattern;
  const std::string database = (dir / "calib.sqlite").string();
  const std::string output = (dir / "calib.jsonl").string();
  std::vector<std::string> argv = {self, "profile", "-o", database, "--merge", "--", bench};
  if (request.quick) argv.emplace_back("--quick");
  argv.insert(argv.end(), grid.begin(), grid.end());
  if (!request.quick) {
    const std::string points = (dir / "points.txt").string();
    const int64_t gpus = request.gpus > 0 ? request.gpus : local_gpu_count();
    write_point_list(models, base, gpus, points, err);
    argv.insert(argv.end(), {"--points", points});
  }
  if (request.gpus > 0) argv.insert(argv.end(), {"--gpus", std::to_string(request.gpus)});
  err << "mpsim calibrate: running " << common::command_line(argv) << " > " << output << "\n";
  // The bench's stdout goes to `output` (stderr is inherited); SIGINT reaches the child and this
  // process goes on after it (run_child).
  common::ChildSpec bench_run;
  bench_run.argv = argv;
  bench_run.stdout_path = output;
  bench_run.exec_failure = "mpsim calibrate: cannot run '" + argv.at(0) + "': ";
  const auto start = std::chrono::steady_clock::now();
  const int status = common::run_child(bench_run);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (status != 0) {
    throw std::runtime_error("the calibration run failed (exit status " + std::to_string(status) +
                             "); its files are in " + dir.string());
  }
  if (!fs::exists(database)) {
    throw std::runtime_error("the calibration run left no database " + database);
  }
  err << "mpsim calibrate: measured in " << common::fixed(seconds, 1)
      << " s; database and bench output kept in " << dir.string() << "\n";
  Measured measured;
  measured.database = database;
  measured.listed_ranges = calibration::listed_ranges(output);
  if (!request.quick) {
    err << "mpsim calibrate: " << measured.listed_ranges.size()
        << " point-list measurements off the grids (their exact tables only)\n";
  }
  return measured;
}

// A run recorded before runs carried their run mark: its configuration from its command line.
calibration::RunConfig run_config_from_command(const profiler::RunMeasurement& run,
                                               const std::string& source) {
  const TrainRequest request = train_request_from_command(run.command, source);
  return {spec::load_model_spec(request.model), request.options.config};
}

}  // namespace

std::string find_calibration_bench(const std::string& self) {
  const fs::path dir = fs::path(self).parent_path();
  const fs::path build_tree = dir / "../../calibration/bench/calibration_bench";
  const fs::path beside = dir / "calibration_bench";
  for (const fs::path& candidate : {build_tree, beside}) {
    if (fs::is_regular_file(candidate)) return fs::canonical(candidate).string();
  }
  throw std::runtime_error(
      "cannot find the calibration bench at " + build_tree.lexically_normal().string() + " or " +
      beside.lexically_normal().string() +
      " (build the calibration_bench target where CUDA is, pass --bench PATH, or give --from "
      "with databases recorded elsewhere)");
}

std::string checked_bench(const std::string& path) {
  if (!fs::is_regular_file(path)) {
    throw spec::FlagError("--bench", "'" + path + "' is not a file; expected calibration_bench");
  }
  return fs::absolute(path).string();
}

std::string find_models_folder(const std::string& self) {
  // The data roots' models folders, with the one of the checkout the binary was built in
  // (<mpsim dir>/../../../models) right after the current directory's.
  const fs::path relative = "models";
  std::vector<fs::path> candidates = spec::data_candidates(relative);
  const auto current = std::find(candidates.begin(), candidates.end(), relative);
  candidates.insert(current == candidates.end() ? current : current + 1,
                    fs::path(self).parent_path() / "../../../models");
  std::string looked;
  for (const fs::path& candidate : candidates) {
    if (fs::is_directory(candidate)) return candidate.lexically_normal().string();
    looked += (looked.empty() ? "" : ", ") + candidate.lexically_normal().string();
  }
  throw spec::FlagError("--models", "no models folder found (looked at " + looked +
                                        "); expected the folder of the model specs");
}

int run_calibrate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CalibrateRequest request = parse_calibrate_args(args);
  if (request.help) {
    out << calibrate_help();
    return 0;
  }
  const spec::HardwareProfile base = spec::load_hardware_profile(request.base);
  // --from: calibration databases, and profiled executor runs whose op times are learned.
  calibration::CalibrationSources sources = calibration::classify_sources(request.from);
  const bool measured_here = request.from.empty();
  calibration::CalibrationInfo info;
  if (measured_here) {
    Measured measured = measure(request, base, err);
    sources.databases = {measured.database};
    info.listed_ranges = std::move(measured.listed_ranges);
  }

  std::vector<std::string> words = {"mpsim", "calibrate"};
  words.insert(words.end(), args.begin(), args.end());
  info.profile_name = request.name;
  info.command = common::command_line(words);
  info.date = calibration::today_utc();
  calibration::CalibrationReport report;
  spec::HardwareProfile profile;
  try {
    profile =
        calibration::profile_from_sources(sources, base, info, run_config_from_command, &report);
  } catch (const calibration::CalibrationError& e) {
    if (measured_here) throw;
    throw spec::FlagError("--from", e.what());
  }
  for (const std::string& note : report.notes) err << "mpsim calibrate: note: " << note << "\n";
  for (const std::string& fit : report.fitted) err << "mpsim calibrate: fitted " << fit << "\n";

  const std::string text = calibration::profile_file_text(
      profile,
      calibration::profile_header(profile.name(), base.name(), info.date, report.sources,
                                  info.command),
      request.output);
  write_atomically(request.output, text, "-o");
  out << "mpsim calibrate: wrote " << request.output << " (" << profile.calibrated_size()
      << " tables:";
  for (const spec::CalibratedTable& t : profile.calibrated()) {
    out << " " << t.op() << " [" << t.points_size() << "]";
  }
  out << ")\n";
  return 0;
}

}  // namespace mpsim::cli
