#include "simulator/spec/config_words.h"

namespace mpsim::spec {

const char* schedule_word(Schedule schedule) {
  switch (schedule) {
    case GPIPE:
      return "gpipe";
    case ONE_F_ONE_B:
      return "1f1b";
    case INTERLEAVED_1F1B:
      return "interleaved";
    default:
      return "unspecified";
  }
}

const char* recompute_word(Recompute recompute) {
  switch (recompute) {
    case RECOMPUTE_NONE:
      return "none";
    case RECOMPUTE_SELECTIVE:
      return "selective";
    case RECOMPUTE_FULL:
      return "full";
    default:
      return "unspecified";
  }
}

const char* rank_order_word(RankOrder order) {
  switch (order) {
    case TP_DP_PP:
      return "tp-dp-pp";
    case TP_PP_DP:
      return "tp-pp-dp";
    default:
      return "unspecified";
  }
}

const char* attention_word(Attention attention) {
  switch (attention) {
    case ATTENTION_FLASH:
      return "flash";
    case ATTENTION_UNFUSED:
      return "unfused";
    default:
      return "unspecified";
  }
}

}  // namespace mpsim::spec
