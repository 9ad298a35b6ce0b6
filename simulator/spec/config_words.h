// The words for ParallelConfig's enums, as the `mpsim` flags spell them ("1f1b", "selective",
// "tp-dp-pp", "flash"); used in every output so that a printed config can be typed back as flags.
// Unspecified or unknown values give "unspecified".
#pragma once

#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::spec {

const char* schedule_word(Schedule schedule);
const char* recompute_word(Recompute recompute);
const char* rank_order_word(RankOrder order);
const char* attention_word(Attention attention);

}  // namespace mpsim::spec
