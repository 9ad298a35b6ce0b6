// The exact points family: after the grids, the measurements the --points list names, each under
// its grid family's name (gemm.bf16, attention and collective measurements).
//
// The list (--points FILE): one measurement per line in the grammar (calibration/
// calibration_range.h) without the "calib/" prefix (gemm.bf16, attention and collective
// measurements only; blank lines and '#' comments skipped; any other line is refused naming
// FILE:LINE before CUDA starts), under exactly the names above and with the same protocol. `mpsim
// calibrate -o` writes the models' exact shapes there (calibration/fit/model_points.h). A name
// measured already (a grid point) is not measured again; a GEMM over the grid's buffer limit, a
// shape or size that does not fit in the free memory, a collective group larger than the GPUs used
// and a send not between 2 GPUs are skipped with a note; a collective size that is not whole bf16
// elements in equal shares over the group is rounded down as the grid's are (noted). GEMMs share
// one set of buffers (the largest shapes are dropped, noted, until it fits); an attention shape
// whose backward alone is listed runs its forward once outside any range; collectives get one
// communicator set per group size. Their JSON lines carry "listed":true, which `mpsim calibrate`
// reads to keep them off the grid tables (calibration/fit/calibrate_profile.h).
//
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "calibration/bench/attention_bench.h"
#include "calibration/bench/collective_bench.h"
#include "calibration/bench/gemm_bench.h"

namespace mpsim::calibration::bench {

namespace {

// The --points collectives by group: one communicator set and one buffer per GPU (the largest
// size that fits) for each group size. A group larger than the GPUs used, a send not between 2
// GPUs, and sizes that do not fit are skipped; a size that is not whole bf16 elements in equal
// shares is rounded down as the grid's are (collective_bytes); each is printed.
void measure_collective_points(const std::vector<std::tuple<std::string, int, int64_t>>& points,
                               const GpuStreams& streams, Harness& harness) {
  std::map<int, std::set<std::pair<Collective, int64_t>>> by_group;
  for (const auto& [op, g, requested] : points) {
    Collective c = Collective::kAllReduce;
    for (const Collective each : {Collective::kAllReduce, Collective::kAllGather,
                                  Collective::kReduceScatter, Collective::kSend}) {
      if (collective_name(each) == op) c = each;
    }
    const std::string requested_range = collective_range_name(op, g, requested);
    if (g < 2 || g > streams.size() || (c == Collective::kSend && g != 2)) {
      std::fprintf(
          stderr, "calibration_bench: skipped %s: %s\n", requested_range.c_str(),
          c == Collective::kSend && g != 2
              ? "sends are measured between 2 GPUs"
              : ("needs a group of 2 to " + std::to_string(streams.size()) + " GPUs").c_str());
      continue;
    }
    const int64_t bytes = collective_bytes(requested, g);
    if (bytes != requested) {
      std::fprintf(stderr,
                   "calibration_bench: %s rounded to %lld bytes (whole bf16 elements, equal "
                   "shares over the group)\n",
                   requested_range.c_str(), static_cast<long long>(bytes));
    }
    if (!harness.measured(collective_range_name(op, g, bytes))) by_group[g].insert({c, bytes});
  }
  for (auto& [g, wanted] : by_group) {
    int64_t largest = 0;
    while (!wanted.empty()) {
      largest = 0;
      for (const auto& point : wanted) largest = std::max(largest, point.second);
      if (fits(0, largest,
               "point-list collectives of " + std::to_string(g) + " GPUs of " +
                   std::to_string(largest) + " bytes")) {
        break;
      }
      std::erase_if(wanted, [&](const auto& point) { return point.second == largest; });
    }
    std::fprintf(stderr,
                 "calibration_bench: collectives: group of %d GPUs, %zu point-list "
                 "sizes\n",
                 g, wanted.size());
    if (wanted.empty()) continue;
    const std::vector<Lane> lanes = streams.comm_lanes(g);
    NcclComms comms(g);
    const std::vector<DeviceArray> buffers = zeroed_buffers(lanes, largest);
    for (const auto& [c, bytes] : wanted) {
      harness.measure(
          collective_range_name(collective_name(c), g, bytes), lanes,
          [&, c = c, bytes = bytes] { issue_collective(c, comms, buffers, lanes, bytes); },
          std::string(kListedJson));
    }
  }
}

// The --points measurements after the grids, each under its grid name; names measured already
// (on a grid) are not measured again.
void run_points(BenchContext& c) {
  const Options& o = c.options;
  GemmContext& ctx = c.gemm;
  Harness& harness = c.harness;
  const PointList& list = o.point_list;
  std::fprintf(stderr,
               "calibration_bench: points: %zu GEMMs, %zu attention shapes, %zu collectives from "
               "%s\n",
               list.gemm.size(), list.attention.size(), list.collective.size(), o.points.c_str());
  std::vector<GemmShape> shapes;
  for (const bool fp8 : {false, true}) {
    for (const auto& [layout, mnk] : fp8 ? list.fp8_gemm : list.gemm) {
      const auto it = std::find_if(kLayouts.begin(), kLayouts.end(),
                                   [&](const auto& l) { return l.second == layout; });
      shapes.push_back({it->first, it->second, mnk[0], mnk[1], mnk[2], fp8});
    }
  }
  measure_gemm_shapes(std::move(shapes), "point-list", std::string(kListedJson), ctx, harness);
  std::fprintf(stderr, "calibration_bench: attention: %zu point-list shapes on GPU %d\n",
               list.attention.size(), ctx.lane().device);
  for (const auto& [shape, passes] : list.attention) {
    measure_attention_shape(shape[0], shape[1], shape[2], shape[3], passes.first, passes.second,
                            std::string(kListedJson), ctx, harness);
  }
  measure_collective_points(list.collective, c.streams, harness);
}

}  // namespace

const BenchFamily kPointsFamily = {"points", run_points};

}  // namespace mpsim::calibration::bench
