// Tests of the byte-level text and synthetic token sources.
#include "executor/core/token_data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mpsim::executor {
namespace {

namespace fs = std::filesystem;

// A file under a fresh temporary folder, removed with the fixture.
class TokenDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mpsim_token_data_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) const {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

  fs::path dir_;
};

std::vector<int32_t> fill(const TokenSource& s, int64_t it, int64_t first, int64_t count) {
  std::vector<int32_t> out(static_cast<size_t>(count * (s.seq() + 1)), -1);
  s.fill(it, first, count, out.data());
  return out;
}

std::string pseudo_text(size_t n) {
  std::string t;
  uint64_t x = 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    t.push_back(static_cast<char>('a' + (x >> 59) % 26));
  }
  return t;
}

TEST_F(TokenDataTest, TextIsDeterministicAndSplitInvariant) {
  const std::string path = write("text.txt", pseudo_text(5000));
  const auto a = make_text_source(path, 16, 7);
  const auto b = make_text_source(path, 16, 7);
  EXPECT_EQ(a->seq(), 16);
  EXPECT_EQ(fill(*a, 3, 0, 8), fill(*b, 3, 0, 8));
  std::vector<int32_t> joined = fill(*a, 3, 0, 4);
  const std::vector<int32_t> rest = fill(*a, 3, 4, 4);
  joined.insert(joined.end(), rest.begin(), rest.end());
  EXPECT_EQ(fill(*a, 3, 0, 8), joined);
  std::vector<int32_t> singles;
  for (int64_t g = 0; g < 8; ++g) {
    const std::vector<int32_t> one = fill(*a, 3, g, 1);
    singles.insert(singles.end(), one.begin(), one.end());
  }
  EXPECT_EQ(fill(*a, 3, 0, 8), singles);
  EXPECT_NE(fill(*a, 3, 0, 8), fill(*a, 4, 0, 8));                              // iterations differ
  EXPECT_NE(fill(*a, 3, 0, 8), fill(*make_text_source(path, 16, 8), 3, 0, 8));  // seeds differ
}

TEST_F(TokenDataTest, TextSequencesAreWindowsOfTheTrainingPart) {
  // 900 training bytes of lower-case text, then 100 held-out bytes of 'Z' that must never appear.
  const std::string train = pseudo_text(900);
  const std::string path = write("text.txt", train + std::string(100, 'Z'));
  const auto s = make_text_source(path, 32, 1);
  for (int64_t it = 0; it < 50; ++it) {
    const std::vector<int32_t> t = fill(*s, it, 0, 16);
    for (int64_t k = 0; k < 16; ++k) {
      std::string window;
      for (int64_t i = 0; i < 33; ++i) {
        const int32_t id = t[k * 33 + i];
        ASSERT_GE(id, 0);
        ASSERT_LT(id, 256);
        window.push_back(static_cast<char>(id));
      }
      EXPECT_NE(train.find(window), std::string::npos) << window;
    }
  }
}

TEST_F(TokenDataTest, BytesAboveAsciiAreNonNegativeIds) {
  std::string content(1000, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(200 + i % 50);
  const auto s = make_text_source(write("high.bin", content), 8, 1);
  for (int32_t id : fill(*s, 0, 0, 32)) {
    EXPECT_GE(id, 200);
    EXPECT_LT(id, 250);
  }
}

TEST_F(TokenDataTest, UnigramEntropyOfTheTrainingPart) {
  // "ab" repeated over the 900 training bytes: two equally likely bytes, ln 2; the held-out
  // 'z's do not count.
  std::string ab;
  for (int i = 0; i < 450; ++i) ab += "ab";
  EXPECT_NEAR(
      make_text_source(write("ab.txt", ab + std::string(100, 'z')), 8, 1)->unigram_entropy_nats(),
      std::log(2.0), 1e-12);
  // "aabc": p = 1/2, 1/4, 1/4 -> 1.5 ln 2 (1000 bytes, the first 900 are 225 whole repeats).
  std::string aabc;
  for (int i = 0; i < 250; ++i) aabc += "aabc";
  EXPECT_NEAR(make_text_source(write("aabc.txt", aabc), 8, 1)->unigram_entropy_nats(),
              1.5 * std::log(2.0), 1e-12);
  // A single repeated byte carries no information.
  EXPECT_EQ(make_text_source(write("a.txt", std::string(100, 'a')), 8, 1)->unigram_entropy_nats(),
            0.0);
}

TEST_F(TokenDataTest, MissingFileNamesThePath) {
  const std::string path = (dir_ / "no_such_file.txt").string();
  try {
    make_text_source(path, 8, 1);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("No such file"), std::string::npos) << what;
  }
}

TEST_F(TokenDataTest, ShortFileNamesPathSizeAndNeed) {
  // seq 8 needs 10 training bytes; 11 bytes keep 10 (11 - 11/10), 10 bytes keep only 9.
  EXPECT_NO_THROW(make_text_source(write("ok.txt", std::string(11, 'x')), 8, 1));
  const std::string path = write("short.txt", std::string(10, 'x'));
  try {
    make_text_source(path, 8, 1);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("10 bytes"), std::string::npos) << what;
    EXPECT_NE(what.find("at least 11 bytes"), std::string::npos) << what;
  }
}

TEST(SyntheticTokens, DeterministicSplitInvariantAndInRange) {
  const auto s = make_synthetic_source(50, 16, 3);
  EXPECT_EQ(s->seq(), 16);
  const std::vector<int32_t> all = fill(*s, 2, 0, 8);
  std::vector<int32_t> joined = fill(*s, 2, 0, 4);
  const std::vector<int32_t> rest = fill(*s, 2, 4, 4);
  joined.insert(joined.end(), rest.begin(), rest.end());
  EXPECT_EQ(all, joined);
  EXPECT_EQ(all, fill(*make_synthetic_source(50, 16, 3), 2, 0, 8));
  EXPECT_NE(all, fill(*s, 3, 0, 8));
  EXPECT_NE(all, fill(*make_synthetic_source(50, 16, 4), 2, 0, 8));
  for (int32_t id : all) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 50);
  }
  EXPECT_NEAR(s->unigram_entropy_nats(), std::log(50.0), 1e-15);
}

TEST(SyntheticTokens, RoughlyUniform) {
  // 4 ids over 64 * 1000 * 17 draws ~ 1.09 M: each count within 1% of a quarter (its std is
  // about 0.1% of the total).
  const auto s = make_synthetic_source(4, 16, 9);
  std::vector<int64_t> counts(4, 0);
  int64_t total = 0;
  for (int64_t it = 0; it < 1000; ++it)
    for (int32_t id : fill(*s, it, 0, 64)) {
      ++counts[id];
      ++total;
    }
  for (int64_t c : counts) EXPECT_NEAR(static_cast<double>(c) / total, 0.25, 0.01);
}

TEST(SyntheticTokens, RejectsBadArguments) {
  EXPECT_THROW(make_synthetic_source(0, 16, 1), std::invalid_argument);
  EXPECT_THROW(make_synthetic_source(10, 0, 1), std::invalid_argument);
  const auto s = make_synthetic_source(10, 4, 1);
  std::vector<int32_t> out(5);
  EXPECT_THROW(s->fill(0, -1, 1, out.data()), std::invalid_argument);
}

}  // namespace
}  // namespace mpsim::executor
