// calibration_bench's flags and point list; see bench_options.h.
#include "calibration/bench/bench_options.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <optional>

#include "calibration/calibration_range.h"

namespace mpsim::calibration::bench {

namespace {

int64_t parse_positive(std::string_view flag, std::string_view text, int64_t max) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value <= 0 || value > max) {
    throw UsageError(std::string(flag) + ": '" + std::string(text) + "' is not an integer in [1, " +
                     std::to_string(max) + "]");
  }
  return value;
}

std::vector<int64_t> parse_list(std::string_view flag, std::string_view text) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    values.push_back(parse_positive(flag, item, int64_t{1} << 30));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return values;
}

// A byte count: digits with an optional binary suffix K, KiB, M, MiB, G, GiB.
int64_t parse_bytes(std::string_view flag, std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, int64_t>, 6> kSuffixes = {
      {{"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB}, {"K", kKiB}, {"M", kMiB}, {"G", kGiB}}};
  int64_t unit = 1;
  for (const auto& [suffix, scale] : kSuffixes) {
    if (text.size() > suffix.size() && text.ends_with(suffix)) {
      text.remove_suffix(suffix.size());
      unit = scale;
      break;
    }
  }
  return parse_positive(flag, text, (int64_t{64} << 30) / unit) * unit;
}

std::string join(const std::vector<int64_t>& values) {
  std::string out;
  for (const int64_t v : values) {
    if (!out.empty()) out += ',';
    out += std::to_string(v);
  }
  return out;
}

// The --points file: one range name of the grammar (calibration_range.h) per line, with or without
// its "calib/" prefix, for a gemm.bf16, attention or collective measurement; blank lines and lines
// starting with '#' are skipped. A line that breaks the grammar, or names another measurement,
// is refused naming the file and line.
PointList read_point_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("--points: cannot read '" + path + "'");
  PointList list;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    const std::string where = "--points: " + path + ":" + std::to_string(number) + ": ";
    const std::string name =
        line.starts_with(calibration::kCalibrationRangePrefix) ? line : "calib/" + line;
    std::optional<calibration::CalibrationRange> range;
    try {
      range = calibration::parse_calibration_range(name);
    } catch (const std::invalid_argument& e) {
      throw UsageError(where + e.what());
    }
    const std::vector<int64_t>& k = range->keys;
    switch (range->kind) {
      case calibration::MeasurementKind::kGemm: {
        const bool fp8 = range->table.starts_with("gemm.fp8.");
        (fp8 ? list.fp8_gemm : list.gemm)
            .push_back({range->table.substr(range->table.rfind('.') + 1), {k[0], k[1], k[2]}});
        break;
      }
      case calibration::MeasurementKind::kAttention: {
        const bool flash = range->table.starts_with("attention.flash.");
        auto& passes = list.attention[{k[0], k[1], k[2], flash ? k[3] : 0}];
        (range->table.ends_with(".bwd.bf16") ? passes.second : passes.first) = true;
        break;
      }
      case calibration::MeasurementKind::kCollective:
        if (k[0] > 1024)
          throw UsageError(where + "g = " + std::to_string(k[0]) + ", expected at most 1024 GPUs");
        list.collective.emplace_back(range->table.substr(0, range->table.find('.')),
                                     static_cast<int>(k[0]), k[1]);
        break;
      default:
        throw UsageError(where + "'" + line +
                         "' is not a gemm.bf16, attention or collective measurement");
    }
  }
  return list;
}

// Every flag, declared once: name, value placeholder ("" for a switch), help with unit, how to
// show its default, and how to apply it.
struct Flag {
  std::string_view name;
  std::string_view value;
  std::string_view help;
  std::string (*show)(const Options&);
  void (*apply)(Options&, std::string_view flag, std::string_view value);
};

// The flag table (over 80 lines: one declarative entry per flag, kept together so that each flag
// is declared once).
const std::array<Flag, 19>& flags() {
  static const std::array<Flag, 19> kFlags = {{
      {"--gemm-m", "LIST", "GEMM M sizes (comma list)",
       [](const Options& o) { return join(o.gemm_m); },
       [](Options& o, std::string_view f, std::string_view v) { o.gemm_m = parse_list(f, v); }},
      {"--gemm-n", "LIST", "GEMM N sizes (comma list)",
       [](const Options& o) { return join(o.gemm_n); },
       [](Options& o, std::string_view f, std::string_view v) { o.gemm_n = parse_list(f, v); }},
      {"--gemm-k", "LIST", "GEMM K sizes (comma list)",
       [](const Options& o) { return join(o.gemm_k); },
       [](Options& o, std::string_view f, std::string_view v) { o.gemm_k = parse_list(f, v); }},
      {"--attention-bh", "LIST", "attention batch x heads (comma list)",
       [](const Options& o) { return join(o.attention_bh); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.attention_bh = parse_list(f, v);
       }},
      {"--attention-s", "LIST", "attention sequence lengths (comma list)",
       [](const Options& o) { return join(o.attention_s); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.attention_s = parse_list(f, v);
       }},
      {"--attention-d", "LIST", "attention head sizes (comma list)",
       [](const Options& o) { return join(o.attention_d); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.attention_d = parse_list(f, v);
       }},
      {"--attention-g", "LIST",
       "the fused core's query heads per key/value head (comma list; those that divide bh)",
       [](const Options& o) { return join(o.attention_g); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.attention_g = parse_list(f, v);
       }},
      {"--memory-min", "BYTES",
       "smallest memory-op tensor (powers of 4 up to --memory-max; >= 8KiB)",
       [](const Options& o) { return std::to_string(o.memory_min); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.memory_min = parse_bytes(f, v);
       }},
      {"--memory-max", "BYTES", "largest memory-op tensor",
       [](const Options& o) { return std::to_string(o.memory_max); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.memory_max = parse_bytes(f, v);
       }},
      {"--loss-tokens", "LIST", "cross-entropy rows (tokens; comma list)",
       [](const Options& o) { return join(o.loss_tokens); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.loss_tokens = parse_list(f, v);
       }},
      {"--loss-vocab", "LIST", "cross-entropy columns (a rank's padded vocabulary; comma list)",
       [](const Options& o) { return join(o.loss_vocab); },
       [](Options& o, std::string_view f, std::string_view v) { o.loss_vocab = parse_list(f, v); }},
      {"--softmax-seq", "N",
       "sequence length s of the causal softmax's [bh, s, s] (bh from the memory sizes)",
       [](const Options& o) { return std::to_string(o.softmax_seq); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.softmax_seq = parse_positive(f, v, 1 << 16);
       }},
      {"--collective-min", "BYTES",
       "smallest collective buffer (powers of 4 up to --collective-max)",
       [](const Options& o) { return std::to_string(o.collective_min); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.collective_min = parse_bytes(f, v);
       }},
      {"--collective-max", "BYTES", "largest collective buffer",
       [](const Options& o) { return std::to_string(o.collective_max); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.collective_max = parse_bytes(f, v);
       }},
      {"--reps", "N", "timed repetitions per measurement (after 2 warm-ups)",
       [](const Options& o) { return std::to_string(o.reps); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.reps = static_cast<int>(parse_positive(f, v, 1000));
       }},
      {"--gpus", "N", "use the first N GPUs (collectives over every power-of-two group 2..N)",
       [](const Options& o) { return o.gpus == 0 ? std::string("all") : std::to_string(o.gpus); },
       [](Options& o, std::string_view f, std::string_view v) {
         o.gpus = static_cast<int>(parse_positive(f, v, 1024));
       }},
      {"--points", "FILE",
       "also measure FILE's points after the grids: one range name per line without calib/ "
       "(gemm.bf16, attention and collective measurements; '#' comments)",
       [](const Options& o) { return o.points.empty() ? std::string("none") : o.points; },
       [](Options& o, std::string_view, std::string_view v) { o.points = std::string(v); }},
      {"--only", "LIST",
       "sections to run: gemm,attention,memory,loss,softmax,collectives,interference",
       [](const Options& o) {
         std::string out;
         for (const auto& [section, name] : kSections) {
           if (!o.runs(section)) continue;
           if (!out.empty()) out += ',';
           out += name;
         }
         return out;
       },
       [](Options& o, std::string_view f, std::string_view v) {
         o.run.fill(false);
         size_t start = 0;
         while (true) {
           const size_t comma = v.find(',', start);
           const std::string_view item = v.substr(
               start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
           const auto it = std::find_if(kSections.begin(), kSections.end(),
                                        [&](const auto& s) { return s.second == item; });
           if (it == kSections.end()) {
             throw UsageError(std::string(f) + ": unknown section '" + std::string(item) +
                              "' (expected gemm, attention, memory, loss, softmax, collectives or "
                              "interference)");
           }
           o.run[static_cast<size_t>(it->first)] = true;
           if (comma == std::string_view::npos) break;
           start = comma + 1;
         }
       }},
      {"--quick", "",
       "a small set for a smoke test: 2 GEMM shapes, 1 attention shape, 2 sizes per memory op, "
       "loss and collective; flags given with it still apply",
       [](const Options& o) { return std::string(o.quick ? "on" : "off"); },
       [](Options& o, std::string_view, std::string_view) { o.quick = true; }},
  }};
  return kFlags;
}

}  // namespace

// --quick: a smoke test of every code path in seconds. Flags given with it still apply.
Options quick_options() {
  Options o;
  o.gemm_m = {2048};
  o.gemm_n = {2048};
  o.gemm_k = {1024, 4096};
  o.attention_bh = {16};
  o.attention_s = {512};
  o.attention_d = {64};
  o.attention_g = {1, 4};
  o.memory_min = kMiB;
  o.memory_max = 4 * kMiB;
  o.loss_tokens = {2048};
  o.loss_vocab = {4096, 32000};
  o.softmax_seq = 512;
  o.collective_min = kMiB;
  o.collective_max = 4 * kMiB;
  o.interference_dim = 4096;
  o.quick = true;
  return o;
}

void print_help() {
  std::printf(
      "usage: calibration_bench [flags]\n"
      "Calibration microbenchmarks of the executor's GEMMs, attention, memory-bound kernels\n"
      "(with the cross-entropy and the causal softmax) and NCCL collectives on the local GPUs,\n"
      "one NVTX range per measurement (calib/...), one JSON line per measurement on stdout.\n"
      "Run it under the profiler:\n"
      "  mpsim profile -o calib.sqlite -- calibration_bench\n"
      "Flags (BYTES takes K/KiB, M/MiB, G/GiB suffixes):\n");
  const Options defaults;
  for (const Flag& f : flags()) {
    std::string head(f.name);
    if (!f.value.empty()) {
      head += ' ';
      head += f.value;
    }
    std::printf("  %-22s %.*s [default: %s]\n", head.c_str(), static_cast<int>(f.help.size()),
                f.help.data(), f.show(defaults).c_str());
  }
  std::printf("  %-22s this help\n", "-h, --help");
}

bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") return true;
  }
  return false;
}

Options parse_options(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) quick = quick || std::string_view(argv[i]) == "--quick";
  Options o = quick ? quick_options() : Options{};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!arg.starts_with("--")) throw UsageError("unexpected argument '" + std::string(arg) + "'");
    const size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const auto it =
        std::find_if(flags().begin(), flags().end(), [&](const Flag& f) { return f.name == name; });
    if (it == flags().end()) throw UsageError("unknown flag '" + std::string(name) + "'");
    std::string_view value;
    if (it->value.empty()) {
      if (eq != std::string_view::npos) throw UsageError(std::string(name) + " takes no value");
    } else if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw UsageError(std::string(name) + ": missing value " + std::string(it->value));
    }
    it->apply(o, name, value);
  }
  if (o.memory_min < 8 * kKiB)
    throw UsageError("--memory-min: must be at least 8KiB (one row of 4096 bf16)");
  if (o.memory_min > o.memory_max) throw UsageError("--memory-min: larger than --memory-max");
  if (o.collective_min > o.collective_max)
    throw UsageError("--collective-min: larger than --collective-max");
  if (!o.points.empty()) o.point_list = read_point_list(o.points);
  return o;
}

// min, 4 min, 16 min, ... up to max.
std::vector<int64_t> powers_of_four(int64_t min, int64_t max) {
  std::vector<int64_t> sizes;
  for (int64_t b = min; b <= max; b *= 4) sizes.push_back(b);
  return sizes;
}

}  // namespace mpsim::calibration::bench
