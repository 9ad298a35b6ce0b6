// Model specs and configs built in code for tests (no files), so tests state their inputs.
#pragma once

#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::testing {

// A GPT in the style of Narayanan et al. 2021: LayerNorm, GeLU 4h MLP, learned positions, tied
// embeddings, biases.
inline spec::ModelSpec gpt(int64_t layers, int64_t hidden, int64_t heads, int64_t seq = 2048,
                           int64_t vocab = 51200) {
  spec::ModelSpec m;
  m.set_name("test-gpt");
  m.set_num_layers(layers);
  m.set_hidden_size(hidden);
  m.set_ffn_hidden_size(4 * hidden);
  m.set_num_attention_heads(heads);
  m.set_num_kv_heads(heads);
  m.set_seq_length(seq);
  m.set_vocab_size(vocab);
  m.set_norm(spec::LAYER_NORM);
  m.set_activation(spec::GELU);
  m.set_tied_embeddings(true);
  m.set_position_embedding(spec::LEARNED);
  m.set_dtype(spec::BF16);
  m.set_linear_bias(true);
  m.set_dropout(0.1);
  return m;
}

// A Llama-style model: RMSNorm, SwiGLU, rotary, GQA, untied, no biases.
inline spec::ModelSpec llama(int64_t layers, int64_t hidden, int64_t ffn, int64_t heads,
                             int64_t kv_heads, int64_t seq, int64_t vocab) {
  spec::ModelSpec m = gpt(layers, hidden, heads, seq, vocab);
  m.set_name("test-llama");
  m.set_ffn_hidden_size(ffn);
  m.set_num_kv_heads(kv_heads);
  m.set_norm(spec::RMS_NORM);
  m.set_activation(spec::SWIGLU);
  m.set_tied_embeddings(false);
  m.set_position_embedding(spec::ROTARY);
  m.set_linear_bias(false);
  m.set_dropout(0);
  return m;
}

// A config already in the normalized form validate_parallel_config returns.
inline spec::ParallelConfig config(int64_t tp, int64_t pp, int64_t dp, int64_t mbs, int64_t gbs,
                                   spec::Schedule schedule = spec::ONE_F_ONE_B, int64_t vpp = 1) {
  spec::ParallelConfig c;
  c.set_num_gpus(tp * pp * dp);
  c.set_tensor_parallel(tp);
  c.set_pipeline_parallel(pp);
  c.set_data_parallel(dp);
  c.set_micro_batch_size(mbs);
  c.set_global_batch_size(gbs);
  c.set_schedule(schedule);
  c.set_virtual_pipeline_stages(vpp);
  c.set_recompute(spec::RECOMPUTE_NONE);
  c.set_rank_order(spec::TP_DP_PP);
  c.set_overlap_dp_comm(true);
  c.set_dp_bucket_params(40'000'000);
  c.set_attention(spec::ATTENTION_FLASH);
  c.set_context_parallel(1);
  return c;
}

// `c` with the reference executor's attention core (unfused), for graphs joined to its runs.
inline spec::ParallelConfig executor_attention(spec::ParallelConfig c) {
  c.set_attention(spec::ATTENTION_UNFUSED);
  return c;
}

}  // namespace mpsim::testing
