// The loss family: calib/memory.loss.<fwd|bwd>/bytes=B for every --loss-tokens x --loss-vocab,
// on GPU 0.
//
// The loss's B is not the principal tensor but exactly the bytes the
//   simulator's graph puts in Op::bytes for its loss op of that pass (training_graph.cpp,
//   head()), so that the table's key is the graph's; the executor's vocabulary-parallel
//   cross-entropy (executor/cuda/gpt_model.cu head_forward / head_backward) on one GPU (TP = 1,
//   no padding columns) over logits [T, V] bf16 with int32 targets:
//   loss.fwd     cross_entropy_partial + cross_entropy_combine (the executor's forward loss;
//                at TP > 1 an all-gather of 12 T bytes sits between them, priced apart),
//                B = loss_forward_bytes(T, V) = 2TV + 4T
//                (calibration/calibration_range.h).
//   loss.bwd     cross_entropy_backward, in place on the logits (grad scale 1/T),
//                B = loss_backward_bytes(T, V) = 4TV. Repetitions run on the previous
//                repetition's gradient with the forward's row max and sums (finite values).
// A (T, V) whose B was measured already (another T x V of equal product) is not measured again.
#include "calibration/bench/harness.h"
#include "executor/cuda/kernels.h"

namespace mpsim::calibration::bench {

namespace kernels = executor::kernels;

namespace {

// The executor's loss at TP = 1 (vocab_start 0, every column real): forward partial + combine,
// backward in place, as executor/cuda/gpt_model.cu calls them.
void run_loss(BenchContext& c) {
  const Options& o = c.options;
  const Lane lane = c.gemm.lane();
  Harness& harness = c.harness;
  std::fprintf(stderr,
               "calibration_bench: loss: %zu tokens x %zu vocab sizes, forward and "
               "backward, on GPU %d\n",
               o.loss_tokens.size(), o.loss_vocab.size(), lane.device);
  auto activate = [&] { CUDA_CHECK(cudaSetDevice(lane.device)); };
  std::set<int64_t> measured_forward, measured_backward;  // B already measured, by pass
  for (const int64_t tokens : o.loss_tokens) {
    for (const int64_t vocab : o.loss_vocab) {
      const int64_t forward_bytes = loss_forward_bytes(tokens, vocab);
      const int64_t backward_bytes = loss_backward_bytes(tokens, vocab);
      const bool forward = measured_forward.insert(forward_bytes).second;
      const bool backward = measured_backward.insert(backward_bytes).second;
      if (!forward && !backward) continue;
      const int64_t logits_bytes = tokens * vocab * 2;
      if (!fits(lane.device, logits_bytes + 7 * tokens * 4,
                loss_range_name(false, forward_bytes) + " and bwd"))
        continue;
      DeviceArray logits(lane.device, logits_bytes), targets(lane.device, tokens * 4);
      DeviceArray partial(lane.device, 3 * tokens * 4), row_max(lane.device, tokens * 4),
          sums(lane.device, 2 * tokens * 4), loss_sum(lane.device, 4);
      fill_uniform<bf16>(logits, -4.0f, 4.0f, 17, lane.stream);
      fill_targets(targets, vocab, 18, lane.stream);
      zero(loss_sum, lane.stream);
      auto issue_forward = [&] {
        activate();
        kernels::cross_entropy_partial(logits.as<bf16>(), targets.as<int32_t>(),
                                       partial.as<float>(), tokens, vocab, 0, vocab, lane.stream);
        kernels::cross_entropy_combine(partial.as<float>(), 1, row_max.as<float>(),
                                       sums.as<float>(), loss_sum.as<float>(), tokens, lane.stream);
      };
      if (forward) {
        harness.measure(loss_range_name(false, forward_bytes), {lane}, issue_forward);
      } else {
        issue_forward();  // the backward needs the row max and sums
      }
      if (!backward) continue;
      const float grad_scale = 1.0f / static_cast<float>(tokens);
      harness.measure(loss_range_name(true, backward_bytes), {lane}, [&] {
        activate();
        kernels::cross_entropy_backward(logits.as<bf16>(), targets.as<int32_t>(),
                                        row_max.as<float>(), sums.as<float>(), tokens, vocab, 0,
                                        vocab, grad_scale, lane.stream);
      });
    }
  }
}

}  // namespace

const BenchFamily kLossFamily = {"loss", run_loss};

}  // namespace mpsim::calibration::bench
