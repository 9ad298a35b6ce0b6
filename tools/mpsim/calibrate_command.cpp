// `mpsim calibrate`; see calibrate_command.h.
#include "tools/mpsim/calibrate_command.h"

#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <stdexcept>

#include "profiler/analyze/run_measurement.h"
#include "profiler/calibrate/calibrate_profile.h"
#include "profiler/calibrate/model_gemm_grid.h"
#include "profiler/calibrate/model_points.h"
#include "profiler/calibrate/op_points.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"
#include "tools/mpsim/calibrate_args.h"
#include "tools/mpsim/child_process.h"
#include "tools/mpsim/file_output.h"
#include "tools/mpsim/run_op_tables.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

// The bench's GEMM axes from the models of `folder` on `base`, as flags; the grid is reported.
std::vector<std::string> gemm_grid_flags(const std::vector<spec::ModelSpec>& specs,
                                         const std::string& folder,
                                         const spec::HardwareProfile& base, std::ostream& err) {
  const profiler::GemmGrid grid = profiler::model_gemm_grid(
      specs, spec::to_hardware(base, "base profile '" + base.name() + "'"));
  std::string models;
  for (const std::string& m : grid.models) models += (models.empty() ? "" : ", ") + m;
  char flop[32];
  std::snprintf(flop, sizeof flop, "%.2g", 3 * grid.flop_per_layout());
  err << "mpsim calibrate: GEMM grid from " << grid.shapes.size() << " GEMM shapes of "
      << grid.models.size() << " models in " << folder << " (" << models << ") at TP "
      << profiler::comma_list(grid.tensor_parallel) << ": m " << profiler::comma_list(grid.m)
      << "; n " << profiler::comma_list(grid.n) << "; k " << profiler::comma_list(grid.k) << " ("
      << grid.m.size() * grid.n.size() * grid.k.size() << " shapes x 3 layouts, " << flop
      << " FLOP a repetition)\n";
  for (const std::string& note : grid.notes) err << "mpsim calibrate: note: " << note << "\n";
  return {"--gemm-m", profiler::comma_list(grid.m), "--gemm-n", profiler::comma_list(grid.n),
          "--gemm-k", profiler::comma_list(grid.k)};
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
  profiler::ModelPointsOptions options;
  options.gpus = gpus;
  const profiler::ModelPoints points = profiler::model_points(
      models, spec::to_hardware(base, "base profile '" + base.name() + "'"), options);
  std::ofstream out(file);
  out << points.file_text();
  if (!out.flush()) throw std::runtime_error("cannot write the point list " + file);
  char work[96];
  std::snprintf(work, sizeof work, "%.2g GEMM FLOP, %.2g attention FLOP, %.2g collective bytes",
                points.gemm_flop, points.attention_flop, points.collective_bytes);
  err << "mpsim calibrate: " << points.size() << " exact shapes of the models' graphs on " << gpus
      << " GPU(s) (" << points.gemm.size() << " GEMM, " << points.attention.size() << " attention, "
      << points.collective.size() << " collective; from " << points.graphs << " graphs; " << work
      << " a repetition) in " << file << "\n";
  for (const std::string& note : points.notes) {
    err << "mpsim calibrate: note: point list: " << note << "\n";
  }
}

// The ranges the bench measured from its point list: its JSON lines (`output`) marked
// "listed": true (list points on a grid were measured there, unmarked, and are not among them).
std::set<std::string> listed_ranges(const std::string& output) {
  std::ifstream in(output);
  if (!in) throw std::runtime_error("cannot read the bench's output " + output);
  std::set<std::string> listed;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("listed", false) && j.contains("range") &&
        j["range"].is_string()) {
      listed.insert(j["range"].get<std::string>());
    }
  }
  return listed;
}

// Iterations excluded from a profiled executor run's op times (its first: cuBLAS heuristics,
// NCCL connections, allocator growth).
constexpr int64_t kRunWarmup = 1;

// Whether `path` (a database, or the stem of per-rank databases) is a profiled executor run:
// it holds the executor's `iteration/<N>` ranges.
bool is_executor_run(const std::string& path) {
  for (const profiler::RankTrace& t : profiler::read_run_traces(path))
    for (const profiler::NvtxRecord& r : t.records.nvtx)
      if (r.text.rfind("iteration/", 0) == 0) return true;
  return false;
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
    models = profiler::load_model_folder(folder);
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
  err << "mpsim calibrate: running " << command_line(argv) << " > " << output << "\n";
  const auto start = std::chrono::steady_clock::now();
  const int status = run_with_stdout(argv, output);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (status != 0) {
    throw std::runtime_error("the calibration run failed (exit status " + std::to_string(status) +
                             "); its files are in " + dir.string());
  }
  if (!fs::exists(database)) {
    throw std::runtime_error("the calibration run left no database " + database);
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", seconds);
  err << "mpsim calibrate: measured in " << text << " s; database and bench output kept in "
      << dir.string() << "\n";
  Measured measured;
  measured.database = database;
  measured.listed_ranges = listed_ranges(output);
  if (!request.quick) {
    err << "mpsim calibrate: " << measured.listed_ranges.size()
        << " point-list measurements off the grids (their exact tables only)\n";
  }
  return measured;
}

// "# " before every line of `text`.
std::string comment(const std::string& text) {
  std::string out = "# ";
  for (char c : text) out += c == '\n' ? std::string("\n# ") : std::string(1, c);
  return out + "\n";
}

// The profile as protobuf text: everything but the tables as the printer writes it, then each
// table with one line per point.
std::string profile_text(const spec::HardwareProfile& profile) {
  namespace pb = google::protobuf;
  spec::HardwareProfile head = profile;
  head.clear_calibrated();
  std::string text;
  pb::TextFormat::Printer printer;
  printer.SetUseUtf8StringEscaping(true);
  if (!printer.PrintToString(head, &text)) throw std::runtime_error("cannot print the profile");
  pb::TextFormat::Printer table_printer;
  table_printer.SetInitialIndentLevel(1);
  table_printer.SetUseUtf8StringEscaping(true);
  pb::TextFormat::Printer point_printer;
  point_printer.SetSingleLineMode(true);
  point_printer.SetUseShortRepeatedPrimitives(true);
  for (const spec::CalibratedTable& table : profile.calibrated()) {
    spec::CalibratedTable fields = table;
    fields.clear_points();
    std::string body;
    table_printer.PrintToString(fields, &body);
    text += "calibrated {\n" + body;
    for (const spec::CalibratedPoint& p : table.points()) {
      std::string line;
      point_printer.PrintToString(p, &line);
      while (!line.empty() && line.back() == ' ') line.pop_back();
      text += "  points { " + line + " }\n";
    }
    text += "}\n";
  }
  return text;
}

}  // namespace

std::string find_calibration_bench(const std::string& self) {
  const fs::path dir = fs::path(self).parent_path();
  const fs::path build_tree = dir / "../../profiler/bench/calibration_bench";
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
  std::vector<fs::path> candidates;
  if (const char* dir = std::getenv("MPSIM_DATA_DIR"); dir != nullptr && *dir != '\0') {
    candidates.push_back(fs::path(dir) / "models");
  }
  candidates.emplace_back("models");
  candidates.push_back(fs::path(self).parent_path() / "../../../models");
#ifdef MPSIM_SOURCE_DIR
  candidates.push_back(fs::path(MPSIM_SOURCE_DIR) / "models");
#endif
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
  std::vector<std::string> databases, runs;
  for (const std::string& db : request.from) {
    if (profiler::run_database_files(db).empty())
      throw spec::SpecError(
          db, 0, "",
          "no such file, nor per-rank files " + profiler::rank_path(db, 0, 0) + ", ... (--from)");
    (is_executor_run(db) ? runs : databases).push_back(db);
  }
  const bool measured_here = request.from.empty();
  profiler::CalibrationInfo info;
  if (measured_here) {
    Measured measured = measure(request, base, err);
    databases = {measured.database};
    info.listed_ranges = std::move(measured.listed_ranges);
  }

  std::vector<std::string> words = {"mpsim", "calibrate"};
  words.insert(words.end(), args.begin(), args.end());
  info.profile_name = request.name;
  info.command = command_line(words);
  info.date = profiler::today_utc();
  profiler::CalibrationReport report;
  spec::HardwareProfile profile = base;
  if (!databases.empty()) {
    try {
      profile = profiler::calibrate_from_traces(databases, base, info, &report);
    } catch (const profiler::CalibrationError& e) {
      if (measured_here) throw;
      throw spec::FlagError("--from", e.what());
    }
  } else {
    profile.set_name(request.name.empty() ? base.name() + "-runs" : request.name);
  }
  for (const std::string& run_path : runs) {
    std::vector<std::string> notes;
    const profiler::RunMeasurement run =
        profiler::measure_run(profiler::read_run_traces(run_path), kRunWarmup);
    profiler::merge_exact_tables(&profile, op_tables_from_run(run, run_path, &notes));
    for (const std::string& note : notes) report.notes.push_back(run_path + ": " + note);
    report.sources.push_back(run_path + ": executor run on " + run.gpu + " (host " + run.hostname +
                             "), recorded " + run.date + " by `" + run.command + "`");
  }
  if (!runs.empty() && databases.empty())
    profile.set_provenance(base.provenance() + "; exact-shape op tables learned from " +
                           std::to_string(runs.size()) + " profiled executor run(s) by `" +
                           info.command + "` on " + info.date);
  for (const std::string& note : report.notes) err << "mpsim calibrate: note: " << note << "\n";
  for (const std::string& fit : report.fitted) err << "mpsim calibrate: fitted " << fit << "\n";

  std::string header =
      "Hardware profile '" + profile.name() + "', written by `mpsim calibrate` " + info.date +
      " (UTC):\nthe base profile '" + base.name() +
      "' (its datasheet and assumed numbers kept) with tables measured under the\n"
      "project's profiler (profiler/bench/calibration_bench, and op times of profiled\n"
      "executor runs at exact shapes), from:";
  for (const std::string& source : report.sources) header += "\n  " + source;
  header += "\nCommand: " + info.command +
            "\nWhere each number comes from: the provenance and source fields. Table names, keys "
            "and how\nthe cost model uses them: simulator/cost/README.md; the fit: "
            "profiler/calibrate/README.md.";
  const std::string text = comment(header) + profile_text(profile);

  // The text must read back as the same profile, through the loader's checks.
  const spec::HardwareProfile reread = spec::parse_hardware_profile(text, request.output);
  if (!google::protobuf::util::MessageDifferencer::Equals(reread, profile)) {
    throw std::runtime_error("internal error: the profile's text does not read back as written");
  }
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
