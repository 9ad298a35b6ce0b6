// ChromeTraceWriter: the file parses as JSON, each event kind carries the fields Perfetto and
// chrome://tracing need, and failures never leave a half-written file at the target path.
#include "common/chrome_trace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "tests/common/scratch_dir_test.h"

namespace mpsim::common {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A fresh folder per test, removed afterwards.
class ChromeTraceTest : public testing::ScratchDirTest {
 protected:
  ChromeTraceTest() : ScratchDirTest("mpsim_chrome_trace_") {}
  static json parse(const fs::path& path) { return json::parse(read(path)); }

  // The events of `trace` with phase `ph`.
  static json events(const json& trace, const std::string& ph) {
    json out = json::array();
    for (const json& e : trace.at("traceEvents")) {
      if (e.at("ph") == ph) out.push_back(e);
    }
    return out;
  }
};

TEST_F(ChromeTraceTest, EmptyTraceIsValidJsonWithTopLevelKeys) {
  const fs::path path = dir_ / "empty.json";
  {
    ChromeTraceWriter writer(path.string(), 42);
    writer.finish();
    EXPECT_EQ(writer.events_written(), 0);
  }
  const json trace = parse(path);
  EXPECT_TRUE(trace.at("traceEvents").is_array());
  EXPECT_TRUE(trace.at("traceEvents").empty());
  EXPECT_EQ(trace.at("displayTimeUnit"), "ns");
  EXPECT_EQ(trace.at("base_time_ns"), 42);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST_F(ChromeTraceTest, MetadataEventsNameProcessesAndThreads) {
  const fs::path path = dir_ / "meta.json";
  {
    ChromeTraceWriter writer(path.string(), 0);
    writer.process_name(3, "rank 3");
    writer.process_sort_index(3, 7);
    writer.thread_name(3, 1, "compute");
    writer.thread_sort_index(3, 1, 0);
  }  // the destructor finishes
  const json m = events(parse(path), "M");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(
      m[0],
      json({{"ph", "M"}, {"name", "process_name"}, {"pid", 3}, {"args", {{"name", "rank 3"}}}}));
  EXPECT_EQ(m[1].at("name"), "process_sort_index");
  EXPECT_EQ(m[1].at("args").at("sort_index"), 7);
  EXPECT_EQ(m[2].at("name"), "thread_name");
  EXPECT_EQ(m[2].at("tid"), 1);
  EXPECT_EQ(m[2].at("args").at("name"), "compute");
  EXPECT_EQ(m[3].at("name"), "thread_sort_index");
  EXPECT_EQ(m[3].at("tid"), 1);
  EXPECT_EQ(m[3].at("args").at("sort_index"), 0);
}

TEST_F(ChromeTraceTest, CompleteEventsKeepNanosecondResolution) {
  const fs::path path = dir_ / "complete.json";
  {
    ChromeTraceWriter writer(path.string(), 0);
    // 1 hour into the trace plus 1 ns: needs ~13 significant digits.
    writer.complete(0, 1, "fwd/mb0/L0/attn.qkv", "compute", 3600e6 + 0.001, 12.3456789,
                    {{"flops", 1.5e12}});
    writer.complete(0, 2, "comm/dp/bucket0", "comm", 0.5, 0.25);
    writer.finish();
  }
  const json x = events(parse(path), "X");
  ASSERT_EQ(x.size(), 2u);
  EXPECT_EQ(x[0].at("name"), "fwd/mb0/L0/attn.qkv");
  EXPECT_EQ(x[0].at("cat"), "compute");
  EXPECT_EQ(x[0].at("pid"), 0);
  EXPECT_EQ(x[0].at("tid"), 1);
  EXPECT_DOUBLE_EQ(x[0].at("ts").get<double>(), 3600e6 + 0.001);
  EXPECT_DOUBLE_EQ(x[0].at("dur").get<double>(), 12.346);  // rounded to whole ns
  EXPECT_EQ(x[0].at("args").at("flops"), 1.5e12);
  EXPECT_FALSE(x[1].contains("args"));  // null args are omitted
  EXPECT_NE(read(path).find("3600000000.001"), std::string::npos);
}

TEST_F(ChromeTraceTest, InstantCounterAndFlowEvents) {
  const fs::path path = dir_ / "kinds.json";
  {
    ChromeTraceWriter writer(path.string(), 0);
    writer.instant(1, 0, "marker", 5.0);
    writer.counter(1, "memory", 10.0, {{"allocated_bytes", 1024}, {"reserved_bytes", 2048}});
    writer.flow(77, "launch", 1, 100, 2.0, 1, 7, 3.5);
  }
  const json trace = parse(path);
  const json i = events(trace, "i");
  ASSERT_EQ(i.size(), 1u);
  EXPECT_EQ(i[0].at("s"), "t");
  EXPECT_EQ(i[0].at("ts"), 5.0);

  const json c = events(trace, "C");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].at("name"), "memory");
  EXPECT_EQ(c[0].at("pid"), 1);
  EXPECT_EQ(c[0].at("ts"), 10.0);
  EXPECT_EQ(c[0].at("args"), json({{"allocated_bytes", 1024}, {"reserved_bytes", 2048}}));

  const json s = events(trace, "s");
  const json f = events(trace, "f");
  ASSERT_EQ(s.size(), 1u);
  ASSERT_EQ(f.size(), 1u);
  for (const json* e : {&s[0], &f[0]}) {
    EXPECT_EQ(e->at("id"), 77);
    EXPECT_EQ(e->at("name"), "launch");
    EXPECT_EQ(e->at("cat"), "flow");
    EXPECT_EQ(e->at("pid"), 1);
  }
  EXPECT_EQ(s[0].at("tid"), 100);
  EXPECT_EQ(s[0].at("ts"), 2.0);
  EXPECT_EQ(f[0].at("tid"), 7);
  EXPECT_EQ(f[0].at("ts"), 3.5);
  EXPECT_EQ(f[0].at("bp"), "e");
}

TEST_F(ChromeTraceTest, DistributedInfoAndMetadataAreTopLevel) {
  const fs::path path = dir_ / "dist.json";
  {
    ChromeTraceWriter writer(path.string(), 0);
    writer.distributed_info({{"rank", 5}, {"world_size", 16}, {"backend", "simulated"}});
    writer.metadata("mpsim", {{"model", "gpt3-175b"}});
    EXPECT_THROW(writer.metadata("traceEvents", 1), std::invalid_argument);
    writer.complete(5, 0, "optimizer", "compute", 0, 1);
  }
  const json trace = parse(path);
  EXPECT_EQ(trace.at("distributedInfo").at("rank"), 5);
  EXPECT_EQ(trace.at("distributedInfo").at("world_size"), 16);
  EXPECT_EQ(trace.at("mpsim").at("model"), "gpt3-175b");
  EXPECT_EQ(trace.at("traceEvents").size(), 1u);
}

TEST_F(ChromeTraceTest, NamesAreEscapedAndInvalidUtf8Replaced) {
  const fs::path path = dir_ / "escape.json";
  {
    ChromeTraceWriter writer(path.string(), 0);
    writer.complete(0, 0, "quote \" backslash \\ newline \n", "c", 0, 1);
    writer.complete(0, 0, std::string("bad \xff byte"), "c", 1, 1);
  }
  const json x = events(parse(path), "X");
  ASSERT_EQ(x.size(), 2u);
  EXPECT_EQ(x[0].at("name"), "quote \" backslash \\ newline \n");
}

TEST_F(ChromeTraceTest, UnwritablePathThrowsNamingItAndLeavesNoFile) {
  const fs::path path = dir_ / "missing_folder" / "trace.json";
  try {
    ChromeTraceWriter writer(path.string(), 0);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST_F(ChromeTraceTest, RenameFailureThrowsAndRemovesTemporaryFile) {
  const fs::path path = dir_ / "a_folder";  // a non-empty directory cannot be replaced by a file
  fs::create_directories(path / "child");
  ChromeTraceWriter writer(path.string(), 0);
  writer.complete(0, 0, "op", "c", 0, 1);
  EXPECT_THROW(writer.finish(), std::runtime_error);
  EXPECT_TRUE(fs::is_directory(path / "child"));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST_F(ChromeTraceTest, ExistingFileUntouchedWhenWriterThrowsBeforeFinish) {
  const fs::path path = dir_ / "trace.json";
  { std::ofstream(path) << "previous trace"; }
  try {
    ChromeTraceWriter writer(path.string(), 0);
    writer.complete(0, 0, "op", "c", 0, 1);
    throw std::runtime_error("simulation failed");  // unwinds through the writer
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(read(path), "previous trace");
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST_F(ChromeTraceTest, ExistingFileReplacedOnlyByFinish) {
  const fs::path path = dir_ / "trace.json";
  { std::ofstream(path) << "previous trace"; }
  ChromeTraceWriter writer(path.string(), 0);
  writer.complete(0, 0, "op", "c", 0, 1);
  EXPECT_EQ(read(path), "previous trace");  // still the old file while writing
  writer.finish();
  writer.finish();  // idempotent
  EXPECT_EQ(parse(path).at("traceEvents").size(), 1u);
  EXPECT_THROW(writer.complete(0, 0, "late", "c", 2, 1), std::logic_error);
}

}  // namespace
}  // namespace mpsim::common
