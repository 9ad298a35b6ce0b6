#include "profiler/analyze/run_measurement.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "common/median.h"
#include "profiler/analyze/issue_slots.h"
#include "profiler/analyze/nvtx_projection.h"
#include "simulator/graph/op_name.h"

namespace mpsim::profiler {
namespace {

constexpr std::string_view kIterationPrefix = "iteration/";

// The step of an `iteration/<N>` range, or -1.
int64_t iteration_step(const std::string& text) {
  if (text.rfind(kIterationPrefix, 0) != 0) return -1;
  const std::string digits = text.substr(kIterationPrefix.size());
  if (digits.empty() || digits.size() > 12 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  return std::stoll(digits);
}

// Op names, and the executor's communication ranges outside the grammar (pipeline receives,
// statistics and sequence-parallel gradient all-reduces), which are work a rank waits in.
bool is_op_range(const std::string& text) {
  return text.rfind("comm/", 0) == 0 || graph::parse_op_name(text).has_value();
}

struct RankWork {
  RankRun run;
  std::map<int64_t, double> iteration_by_step;  // every iteration seen
};

// Where each kernel ran: its iteration and its innermost op range.
struct KernelPlaces {
  std::vector<int64_t> step;  // per kernel: the step of its iteration/<N> range, or -1
  std::vector<int64_t> op;    // per kernel: index into records.nvtx of its op range, or -1
  std::map<int64_t, const NvtxRecord*> iterations;  // the iteration ranges by step
};

// Each kernel's iteration (the range's step) and innermost op range (latest start wins).
KernelPlaces place_kernels(const RecordBatch& records) {
  const auto projection = project_kernels_to_ranges(records);
  const size_t kernels = records.kernels.size();
  KernelPlaces places;
  places.step.assign(kernels, -1);
  places.op.assign(kernels, -1);
  std::vector<int64_t> op_start(kernels, 0);
  for (size_t i = 0; i < records.nvtx.size(); ++i) {
    const NvtxRecord& r = records.nvtx[i];
    if (!is_nvtx_range(r)) continue;
    if (const int64_t step = iteration_step(r.text); step >= 0) {
      places.iterations[step] = &r;
      for (size_t k : projection[i]) places.step[k] = step;
      continue;
    }
    if (projection[i].empty() || !is_op_range(r.text)) continue;
    for (size_t k : projection[i]) {
      if (places.op[k] < 0 || r.start > op_start[k]) {
        places.op[k] = static_cast<int64_t>(i);
        op_start[k] = r.start;
      }
    }
  }
  return places;
}

// Every iteration's time, and the measured ones (after `warmup`): their steps and times, and the
// timeline iteration, the measured one whose time is the median (the lower middle).
void measure_iterations(const std::map<int64_t, const NvtxRecord*>& iterations, int64_t warmup,
                        RankWork* work) {
  RankRun& run = work->run;
  int64_t index = 0;
  for (const auto& [step, range] : iterations) {
    const double seconds = (range->end - range->start) * 1e-9;
    work->iteration_by_step[step] = seconds;
    if (index++ < warmup) continue;
    run.steps.push_back(step);
    run.iteration_s.push_back(seconds);
  }
  std::vector<std::pair<double, int64_t>> by_time;
  for (size_t i = 0; i < run.steps.size(); ++i)
    by_time.push_back({run.iteration_s[i], run.steps[i]});
  std::sort(by_time.begin(), by_time.end());
  run.timeline_step = by_time[(by_time.size() - 1) / 2].second;
  run.timeline_iteration_s = by_time[(by_time.size() - 1) / 2].first;
}

// The timeline iteration's kernels, each with the name of its op range (empty when none), into
// run->timeline in order of start then end, each naming its op by index into run->op_names.
void set_timeline(std::vector<std::pair<MeasuredKernel, std::string>> timeline, RankRun* run) {
  std::sort(timeline.begin(), timeline.end(), [](const auto& a, const auto& b) {
    return a.first.start_s != b.first.start_s ? a.first.start_s < b.first.start_s
                                              : a.first.end_s < b.first.end_s;
  });
  for (auto& [kernel, name] : timeline) {
    if (!name.empty()) {
      const auto it = std::lower_bound(run->op_names.begin(), run->op_names.end(), name);
      kernel.op = static_cast<int32_t>(it - run->op_names.begin());
    }
    run->timeline.push_back(kernel);
  }
}

// Over the measured iterations of run->steps: each op's issue-slot seconds and the unattributed
// ones, per iteration; and the kernels of the timeline iteration, which starts at
// `timeline_start` (ns).
void measure_kernels(const RecordBatch& records, const KernelPlaces& places, int64_t timeline_start,
                     RankRun* run) {
  const size_t kernels = records.kernels.size();
  const std::set<int64_t> measured(run->steps.begin(), run->steps.end());
  std::vector<std::size_t> all(kernels);
  for (size_t k = 0; k < kernels; ++k) all[k] = k;
  const std::vector<int64_t> gaps = launch_gaps(records.kernels, all);
  std::map<std::string, double> op_total;
  double unattributed = 0;
  std::vector<std::pair<MeasuredKernel, std::string>> timeline;
  for (size_t k = 0; k < kernels; ++k) {
    if (!measured.count(places.step[k])) continue;
    const KernelRecord& kr = records.kernels[k];
    const double seconds = (kr.end - kr.start + gaps[k]) * 1e-9;  // the issue slot
    const std::string* name = places.op[k] >= 0 ? &records.nvtx[places.op[k]].text : nullptr;
    if (name) {
      op_total[*name] += seconds;
    } else {
      unattributed += seconds;
    }
    if (places.step[k] == run->timeline_step) {
      MeasuredKernel mk;
      mk.start_s = (kr.start - gaps[k] - timeline_start) * 1e-9;
      mk.end_s = (kr.end - timeline_start) * 1e-9;
      mk.stream = kr.stream_id;
      mk.nccl = is_nccl_kernel(kr.demangled_name.empty() ? kr.mangled_name : kr.demangled_name);
      timeline.push_back({mk, name ? *name : std::string()});
    }
  }
  const double count = static_cast<double>(run->steps.size());
  for (const auto& [name, total] : op_total) {
    run->op_names.push_back(name);
    run->op_seconds.push_back(total / count);
  }
  run->unattributed_s = unattributed / count;
  set_timeline(std::move(timeline), run);
}

RankWork measure_rank(const RankTrace& trace, int64_t warmup) {
  const RecordBatch& records = trace.records;
  const std::string who = "rank " + std::to_string(trace.process.rank);
  const KernelPlaces places = place_kernels(records);
  if (places.iterations.empty())
    throw std::invalid_argument(
        who + ": no iteration/<N> range (was this a profiled `mpsim train` run?)");
  if (static_cast<int64_t>(places.iterations.size()) <= warmup)
    throw std::invalid_argument(who + ": " + std::to_string(places.iterations.size()) +
                                " iterations recorded, need more than the " +
                                std::to_string(warmup) + " warm-up iterations");

  RankWork work;
  // A process without a rank variable (a one-GPU run) is rank 0; the profiler named it by pid.
  work.run.rank = trace.process.rank_source == "pid" ? 0 : trace.process.rank;
  measure_iterations(places.iterations, warmup, &work);
  const int64_t timeline_start = places.iterations.at(work.run.timeline_step)->start;
  measure_kernels(records, places, timeline_start, &work.run);
  return work;
}

// The GPUs that ran kernels, each once (by UUID, else bus location), over every rank.
std::vector<GpuInfo> gpus_used(const std::vector<RankTrace>& traces) {
  std::map<std::string, GpuInfo> by_id;
  for (const RankTrace& t : traces) {
    std::set<uint32_t> used;
    for (const KernelRecord& k : t.records.kernels) used.insert(k.device_id);
    for (const GpuInfo& g : t.records.gpus)
      if (used.count(g.device_id)) by_id.emplace(g.uuid.empty() ? g.bus_location : g.uuid, g);
  }
  std::vector<GpuInfo> gpus;
  for (const auto& [id, gpu] : by_id) gpus.push_back(gpu);
  return gpus;
}

template <typename T>
T field(const nlohmann::json& json, const char* key, const std::string& where) {
  if (!json.is_object() || !json.contains(key))
    throw std::invalid_argument(where + ": missing field '" + key + "'");
  try {
    return json.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(where + ": field '" + key + "' has the wrong type (" + e.what() +
                                ")");
  }
}

}  // namespace

double RunMeasurement::median_iteration_s() const { return common::median(iteration_s); }

RunMeasurement measure_run(const std::vector<RankTrace>& traces, int64_t warmup) {
  if (traces.empty()) throw std::invalid_argument("no ranks to measure");
  for (const RankTrace& t : traces)
    if (t.process.rank_source == "pid" && traces.size() > 1)
      throw std::invalid_argument("process " + std::to_string(t.process.pid) +
                                  " has no rank (no rank variable in its environment) and the run "
                                  "has several processes");
  RunMeasurement run;
  run.warmup = warmup;
  std::vector<RankWork> works;
  for (const RankTrace& t : traces) works.push_back(measure_rank(t, warmup));
  std::sort(works.begin(), works.end(),
            [](const RankWork& a, const RankWork& b) { return a.run.rank < b.run.rank; });
  const RankWork& first = works.front();
  for (const RankWork& w : works) {
    if (w.run.steps != first.run.steps)
      throw std::invalid_argument("rank " + std::to_string(w.run.rank) +
                                  " measured other iterations than rank " +
                                  std::to_string(first.run.rank));
  }
  for (size_t i = 0; i < first.run.steps.size(); ++i) {
    double longest = 0;
    for (const RankWork& w : works) longest = std::max(longest, w.run.iteration_s[i]);
    run.iteration_s.push_back(longest);
  }
  for (RankWork& w : works) run.ranks.push_back(std::move(w.run));
  const RankTrace* rank0 = &traces.front();
  for (const RankTrace& t : traces)
    if (t.process.rank < rank0->process.rank) rank0 = &t;
  run.command = rank0->process.command;
  run.hostname = rank0->process.hostname;
  run.date = recording_date(rank0->process);
  run.gpu = gpu_summary(gpus_used(traces));
  return run;
}

std::vector<std::string> run_database_files(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path stem_path(path);
  std::string name = stem_path.filename().string();
  if (fs::exists(path)) {
    const size_t at = name.rfind(".rank");
    if (at == std::string::npos) return {path};  // a merged database (or a single one)
    name = name.substr(0, at) + ".sqlite";       // one rank's: gather its siblings
  }
  // "<stem>.rank<R><ext>" beside the stem, R decimal (a rank, or a pid for unranked processes).
  const size_t dot = name.rfind('.');
  const std::string prefix = (dot == std::string::npos ? name : name.substr(0, dot)) + ".rank";
  const std::string ext = dot == std::string::npos ? "" : name.substr(dot);
  const fs::path dir = stem_path.has_parent_path() ? stem_path.parent_path() : fs::path(".");
  std::vector<std::string> files;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    if (f.size() <= prefix.size() + ext.size() || f.rfind(prefix, 0) != 0 ||
        f.compare(f.size() - ext.size(), ext.size(), ext) != 0)
      continue;
    const std::string digits = f.substr(prefix.size(), f.size() - prefix.size() - ext.size());
    if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<RankTrace> read_run_traces(const std::string& path) {
  const std::vector<std::string> files = run_database_files(path);
  if (files.empty())
    throw std::invalid_argument(path + ": no such database, and no per-rank databases " +
                                rank_path(path, 0, 0) + ", ...");
  std::vector<RankTrace> traces;
  for (const std::string& file : files)
    for (RankTrace& t : TraceReader(file).read_all()) traces.push_back(std::move(t));
  return traces;
}

nlohmann::json to_json(const RunMeasurement& run) {
  nlohmann::json ranks = nlohmann::json::array();
  for (const RankRun& r : run.ranks) {
    nlohmann::json ops = nlohmann::json::object();
    for (size_t i = 0; i < r.op_names.size(); ++i) ops[r.op_names[i]] = r.op_seconds[i];
    // The timeline as parallel arrays (compact): start and end in ns, op index, stream, nccl.
    nlohmann::json start = nlohmann::json::array(), end = nlohmann::json::array(),
                   op = nlohmann::json::array(), stream = nlohmann::json::array(),
                   nccl = nlohmann::json::array();
    for (const MeasuredKernel& k : r.timeline) {
      start.push_back(std::llround(k.start_s * 1e9));
      end.push_back(std::llround(k.end_s * 1e9));
      op.push_back(k.op);
      stream.push_back(k.stream);
      nccl.push_back(k.nccl ? 1 : 0);
    }
    ranks.push_back({{"rank", r.rank},
                     {"steps", r.steps},
                     {"iteration_s", r.iteration_s},
                     {"op_seconds", ops},
                     {"unattributed_s", r.unattributed_s},
                     {"timeline_step", r.timeline_step},
                     {"timeline_iteration_s", r.timeline_iteration_s},
                     {"timeline",
                      {{"op_names", r.op_names},
                       {"start_ns", start},
                       {"end_ns", end},
                       {"op", op},
                       {"stream", stream},
                       {"nccl", nccl}}}});
  }
  return {{"command", run.command}, {"gpu", run.gpu},       {"hostname", run.hostname},
          {"date", run.date},       {"warmup", run.warmup}, {"iteration_s", run.iteration_s},
          {"ranks", ranks}};
}

RunMeasurement run_measurement_from_json(const nlohmann::json& json, const std::string& source) {
  RunMeasurement run;
  run.command = field<std::string>(json, "command", source);
  run.gpu = field<std::string>(json, "gpu", source);
  run.hostname = field<std::string>(json, "hostname", source);
  run.date = field<std::string>(json, "date", source);
  run.warmup = field<int64_t>(json, "warmup", source);
  run.iteration_s = field<std::vector<double>>(json, "iteration_s", source);
  const nlohmann::json ranks = field<nlohmann::json>(json, "ranks", source);
  for (const nlohmann::json& r : ranks) {
    RankRun rank;
    rank.rank = field<int32_t>(r, "rank", source);
    const std::string where = source + ": rank " + std::to_string(rank.rank);
    rank.steps = field<std::vector<int64_t>>(r, "steps", where);
    rank.iteration_s = field<std::vector<double>>(r, "iteration_s", where);
    const nlohmann::json ops = field<nlohmann::json>(r, "op_seconds", where);
    for (const auto& [name, seconds] : ops.items()) {
      if (!seconds.is_number())
        throw std::invalid_argument(where + ": op_seconds of '" + name + "' is not a number");
      rank.op_names.push_back(name);
      rank.op_seconds.push_back(seconds.get<double>());
    }
    rank.unattributed_s = field<double>(r, "unattributed_s", where);
    rank.timeline_step = field<int64_t>(r, "timeline_step", where);
    rank.timeline_iteration_s = field<double>(r, "timeline_iteration_s", where);
    const nlohmann::json timeline = field<nlohmann::json>(r, "timeline", where);
    const auto names = field<std::vector<std::string>>(timeline, "op_names", where + " timeline");
    if (names != rank.op_names)
      throw std::invalid_argument(where + ": timeline op_names differ from op_seconds' names");
    const auto start = field<std::vector<int64_t>>(timeline, "start_ns", where + " timeline");
    const auto end = field<std::vector<int64_t>>(timeline, "end_ns", where + " timeline");
    const auto op = field<std::vector<int32_t>>(timeline, "op", where + " timeline");
    const auto stream = field<std::vector<uint32_t>>(timeline, "stream", where + " timeline");
    const auto nccl = field<std::vector<int>>(timeline, "nccl", where + " timeline");
    if (end.size() != start.size() || op.size() != start.size() || stream.size() != start.size() ||
        nccl.size() != start.size())
      throw std::invalid_argument(where + ": timeline arrays differ in length");
    for (size_t i = 0; i < start.size(); ++i) {
      if (op[i] < -1 || op[i] >= static_cast<int32_t>(names.size()))
        throw std::invalid_argument(where + ": timeline kernel " + std::to_string(i) +
                                    " names op " + std::to_string(op[i]) + ", outside op_names");
      rank.timeline.push_back({start[i] * 1e-9, end[i] * 1e-9, op[i], stream[i], nccl[i] != 0});
    }
    run.ranks.push_back(std::move(rank));
  }
  return run;
}

}  // namespace mpsim::profiler
