// Byte-level text and synthetic token sources; see token_data.h.
#include "executor/core/token_data.h"

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "executor/core/param_init.h"

namespace mpsim::executor {
namespace {

// Keeps the data streams apart from the parameter initialisation drawn from the same seed.
constexpr uint64_t kDataSalt = 0x6461746131323334ULL;  // "data1234"

uint64_t sequence_hash(uint64_t seed, int64_t iteration, int64_t sequence) {
  uint64_t h = splitmix64(seed ^ kDataSalt);
  h = splitmix64(h ^ static_cast<uint64_t>(iteration));
  return splitmix64(h ^ static_cast<uint64_t>(sequence));
}

void check_range(int64_t first_sequence, int64_t count) {
  if (first_sequence < 0 || count < 0) {
    throw std::invalid_argument("token source: first sequence (" + std::to_string(first_sequence) +
                                ") and count (" + std::to_string(count) + ") must not be negative");
  }
}

void check_seq(int64_t seq) {
  if (seq < 1) {
    throw std::invalid_argument("token source: seq must be at least 1, got " + std::to_string(seq));
  }
}

std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw std::runtime_error(path + ": cannot open training text: " + std::strerror(errno));
  }
  std::string data;
  std::array<char, 1 << 16> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) data.append(buffer.data(), n);
  const bool failed = std::ferror(f) != 0;
  const int error = errno;
  std::fclose(f);
  if (failed) {
    throw std::runtime_error(path + ": cannot read training text: " + std::strerror(error));
  }
  return data;
}

int64_t training_bytes(int64_t size) { return size - size / 10; }

class TextSource final : public TokenSource {
 public:
  TextSource(std::string text, int64_t train_bytes, int64_t seq, uint64_t seed)
      : TokenSource(seq), text_(std::move(text)), train_bytes_(train_bytes), seed_(seed) {
    std::array<int64_t, 256> counts{};
    for (int64_t i = 0; i < train_bytes_; ++i) ++counts[static_cast<unsigned char>(text_[i])];
    for (int64_t c : counts) {
      if (c == 0) continue;
      const double p = static_cast<double>(c) / static_cast<double>(train_bytes_);
      entropy_ -= p * std::log(p);
    }
  }

  void fill(int64_t iteration, int64_t first_sequence, int64_t count, int32_t* out) const override {
    check_range(first_sequence, count);
    const int64_t len = seq() + 1;
    const auto starts = static_cast<uint64_t>(train_bytes_ - seq());
    for (int64_t k = 0; k < count; ++k) {
      const auto offset =
          static_cast<int64_t>(sequence_hash(seed_, iteration, first_sequence + k) % starts);
      for (int64_t i = 0; i < len; ++i) {
        out[k * len + i] = static_cast<unsigned char>(text_[offset + i]);
      }
    }
  }

  double unigram_entropy_nats() const override { return entropy_; }

 private:
  std::string text_;
  int64_t train_bytes_;
  uint64_t seed_;
  double entropy_ = 0;
};

class SyntheticSource final : public TokenSource {
 public:
  SyntheticSource(int64_t vocab, int64_t seq, uint64_t seed)
      : TokenSource(seq), vocab_(vocab), seed_(seed) {}

  void fill(int64_t iteration, int64_t first_sequence, int64_t count, int32_t* out) const override {
    check_range(first_sequence, count);
    const int64_t len = seq() + 1;
    for (int64_t k = 0; k < count; ++k) {
      const uint64_t h = sequence_hash(seed_, iteration, first_sequence + k);
      for (int64_t i = 0; i < len; ++i) {
        const uint64_t bits = splitmix64(h ^ splitmix64(static_cast<uint64_t>(i)));
        out[k * len + i] = static_cast<int32_t>(bits % static_cast<uint64_t>(vocab_));
      }
    }
  }

  double unigram_entropy_nats() const override { return std::log(static_cast<double>(vocab_)); }

 private:
  int64_t vocab_;
  uint64_t seed_;
};

}  // namespace

TokenSource::TokenSource(int64_t seq) : seq_(seq) {}
TokenSource::~TokenSource() = default;

std::unique_ptr<TokenSource> make_text_source(const std::string& path, int64_t seq, uint64_t seed) {
  check_seq(seq);
  std::string text = read_file(path);
  const auto size = static_cast<int64_t>(text.size());
  // The training part must hold at least two distinct windows of seq + 1 bytes.
  int64_t needed = seq + 2;
  while (training_bytes(needed) < seq + 2) ++needed;
  if (size < needed) {
    throw std::invalid_argument(path + ": " + std::to_string(size) +
                                " bytes is too short for sequences of " + std::to_string(seq) +
                                " tokens: needs at least " + std::to_string(needed) +
                                " bytes (seq + 2 in the first 90%, the rest is held out)");
  }
  const int64_t train = training_bytes(size);
  return std::make_unique<TextSource>(std::move(text), train, seq, seed);
}

std::unique_ptr<TokenSource> make_synthetic_source(int64_t vocab, int64_t seq, uint64_t seed) {
  check_seq(seq);
  if (vocab < 1) {
    throw std::invalid_argument("synthetic tokens: vocab must be at least 1, got " +
                                std::to_string(vocab));
  }
  return std::make_unique<SyntheticSource>(vocab, seq, seed);
}

}  // namespace mpsim::executor
