// Training tokens for the executor: byte-level text (token id = byte value, 0..255) or uniform
// synthetic ids. A source is a pure function of (iteration, sequence index in the global batch):
// whatever data-parallel rank or micro-batch asks for sequence g of iteration it gets the same
// tokens, so every parallel layout trains on identical data and can be compared with the others
// and with the float64 reference (reference_gpt.h).
//
// Text: sequence (it, g) is the seq + 1 bytes starting at offset
//   splitmix64-hash(seed, it, g) % (train_bytes - seq)
// of the training part of the file, which is its first train_bytes = size - size / 10 bytes; the
// last size / 10 bytes are held out as validation text and never sampled.
//
// Failure: make_text_source throws std::runtime_error naming the path and the system's reason when
// the file cannot be read, and std::invalid_argument naming the path, its size and the size needed
// when its training part holds fewer than seq + 2 bytes. Bad arguments (seq < 1, vocab < 1,
// negative sequence index or count) throw std::invalid_argument.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace mpsim::executor {

class TokenSource {
 public:
  virtual ~TokenSource();
  TokenSource(const TokenSource&) = delete;
  TokenSource& operator=(const TokenSource&) = delete;

  // Writes `count` sequences of seq() + 1 token ids (inputs are the first seq(), targets the last
  // seq()) for sequences [first_sequence, first_sequence + count) of iteration `iteration`.
  virtual void fill(int64_t iteration, int64_t first_sequence, int64_t count,
                    int32_t* out) const = 0;

  // Entropy in nats of the distribution of single tokens the source draws from (for text: the
  // byte frequencies of the training part): the loss of a model that learnt only those
  // frequencies, a landmark for training curves.
  virtual double unigram_entropy_nats() const = 0;

  int64_t seq() const { return seq_; }

 protected:
  explicit TokenSource(int64_t seq);

 private:
  int64_t seq_;
};

// Byte-level text read whole from `path`; see the header comment for sampling and failures.
std::unique_ptr<TokenSource> make_text_source(const std::string& path, int64_t seq, uint64_t seed);

// Independent uniform ids in [0, vocab); unigram_entropy_nats() is ln(vocab).
std::unique_ptr<TokenSource> make_synthetic_source(int64_t vocab, int64_t seq, uint64_t seed);

}  // namespace mpsim::executor
