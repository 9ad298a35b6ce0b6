// `mpsim calibrate`; see calibrate_command.h.
#include "tools/mpsim/calibrate_command.h"

#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <stdexcept>

#include "profiler/calibrate/calibrate_profile.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"
#include "tools/mpsim/calibrate_args.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;


// The words as a shell would need them (words with spaces or quotes single-quoted).
std::string command_line(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) {
    const bool plain = !w.empty() && w.find_first_of(" \t\n'\"\\$`*?") == std::string::npos;
    std::string quoted = "'";
    for (char c : w) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    text += (text.empty() ? "" : " ") + (plain ? w : quoted + "'");
  }
  return text;
}

// Runs `argv` with its stdout sent to `stdout_path`; returns its exit status (128 + signal).
int run_with_stdout(const std::vector<std::string>& argv, const std::string& stdout_path) {
  const int fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot create " + stdout_path + ": " + std::strerror(errno));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    ::close(fd);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    dup2(fd, STDOUT_FILENO);
    std::vector<char*> words;
    for (const std::string& w : argv) words.push_back(const_cast<char*>(w.c_str()));
    words.push_back(nullptr);
    execv(words[0], words.data());
    dprintf(STDERR_FILENO, "mpsim calibrate: cannot run '%s': %s\n", words[0],
            std::strerror(errno));
    _exit(127);
  }
  ::close(fd);
  // Ctrl-C reaches the child (same process group); we wait for it to end.
  struct sigaction ignore {
  }, old_int{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

// Records calibration_bench under the profiler; returns the database.
std::string measure(bool quick, std::ostream& err) {
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string bench = find_calibration_bench(self);
  std::string pattern = (fs::temp_directory_path() / "mpsim-calibrate-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("cannot create a temporary folder " + pattern + ": " +
                             std::strerror(errno));
  }
  const fs::path dir = pattern;
  const std::string database = (dir / "calib.sqlite").string();
  const std::string output = (dir / "calib.jsonl").string();
  std::vector<std::string> argv = {self, "profile", "-o", database, "--merge", "--", bench};
  if (quick) argv.emplace_back("--quick");
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
  return database;
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

// Writes `text` to a temporary file beside `path` and renames it over `path`.
void write_atomically(const std::string& path, const std::string& text) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) {
    throw spec::FlagError("-o", "folder '" + dir.string() + "' of '" + path + "' does not exist");
  }
  std::string temp = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = mkstemp(temp.data());
  if (fd < 0) {
    throw std::runtime_error("cannot create a temporary file in '" + dir.string() +
                             "' for -o: " + std::strerror(errno));
  }
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      throw std::runtime_error("cannot write " + temp + ": " + std::strerror(error));
    }
    written += static_cast<std::size_t>(n);
  }
  fchmod(fd, 0644);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot write " + temp + ": " + std::strerror(error));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot rename " + temp + " to " + path + ": " + std::strerror(error));
  }
}

}  // namespace

std::string find_calibration_bench(const std::string& self) {
  const fs::path candidate =
      fs::path(self).parent_path() / "../../profiler/bench/calibration_bench";
  if (fs::exists(candidate)) return fs::canonical(candidate).string();
  throw std::runtime_error(
      "cannot find the calibration bench at " + candidate.lexically_normal().string() +
      " (build the calibration_bench target where CUDA is, or give --from with databases "
      "recorded elsewhere)");
}

int run_calibrate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const CalibrateRequest request = parse_calibrate_args(args);
  if (request.help) {
    out << calibrate_help();
    return 0;
  }
  const spec::HardwareProfile base = spec::load_hardware_profile(request.base);
  std::vector<std::string> databases = request.from;
  const bool measured_here = databases.empty();
  for (const std::string& db : databases) {
    if (!fs::exists(db)) throw spec::SpecError(db, 0, "", "no such file (--from)");
  }
  if (measured_here) databases = {measure(request.quick, err)};

  std::vector<std::string> words = {"mpsim", "calibrate"};
  words.insert(words.end(), args.begin(), args.end());
  profiler::CalibrationInfo info;
  info.profile_name = request.name;
  info.command = command_line(words);
  info.date = profiler::today_utc();
  profiler::CalibrationReport report;
  spec::HardwareProfile profile;
  try {
    profile = profiler::calibrate_from_traces(databases, base, info, &report);
  } catch (const profiler::CalibrationError& e) {
    if (measured_here) throw;
    throw spec::FlagError("--from", e.what());
  }
  for (const std::string& note : report.notes) err << "mpsim calibrate: note: " << note << "\n";
  for (const std::string& fit : report.fitted) err << "mpsim calibrate: fitted " << fit << "\n";

  std::string header = "Hardware profile '" + profile.name() + "', written by `mpsim calibrate` " +
                       info.date + " (UTC):\nthe base profile '" + base.name() +
                       "' (its datasheet and assumed numbers kept) with tables measured by\n"
                       "profiler/bench/calibration_bench under the project's profiler, from:";
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
  write_atomically(request.output, text);
  out << "mpsim calibrate: wrote " << request.output << " (" << profile.calibrated_size()
      << " tables:";
  for (const spec::CalibratedTable& t : profile.calibrated()) {
    out << " " << t.op() << " [" << t.points_size() << "]";
  }
  out << ")\n";
  return 0;
}

}  // namespace mpsim::cli
