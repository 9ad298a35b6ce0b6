// Tests of the SQLite trace store: round trip, transactions under WAL, string dedup, refusals,
// merge with clock alignment, rank_path and is_nccl_kernel.
#include "profiler/store/trace_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <tuple>

namespace mpsim::profiler {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  std::string path = ::testing::TempDir() + "mpsim_store_" + name;
  for (const char* suffix : {"", "-wal", "-shm", ".tmp"}) fs::remove(path + suffix);
  return path;
}

ProcessInfo process(int32_t rank, int64_t clock_offset_ns = 0) {
  ProcessInfo p;
  p.rank = rank;
  p.local_rank = rank % 2;
  p.world_size = 2;
  p.pid = 4000 + rank;
  p.hostname = "node" + std::to_string(rank / 2);
  p.command = "python train.py --steps 3";
  p.rank_source = "RANK";
  p.start_ns = 1'000;
  p.clock_offset_ns = clock_offset_ns;
  return p;
}

// One record of every kind, every field set to a distinct value.
RecordBatch full_batch(int64_t t0) {
  RecordBatch b;
  b.kernels.push_back({t0 + 10, t0 + 20, 1, 2, 7, 101, "_Z4gemmIfEvPKfS1_Pfi",
                       "void gemm<float>(const float*, const float*, float*, int)", 128, 2, 3, 256,
                       4, 5, 96, 4096, 8192});
  b.memcpys.push_back({t0 + 30, t0 + 40, 1, 2, 8, 102, 1 << 20, 1, 3, 2});
  b.memsets.push_back({t0 + 50, t0 + 55, 1, 2, 8, 103, 4096, 255});
  b.api_calls.push_back(
      {t0 + 5, t0 + 9, 0xFFFF'FFFF'0000'0001ull, 101, "cudaLaunchKernel", false, 0});
  b.api_calls.push_back({t0 + 6, t0 + 8, 77, 104, "cuLaunchKernel", true, 719});
  b.syncs.push_back({t0 + 60, t0 + 70, 2, 7, 105, 77, 3});
  NvtxRecord range;
  range.start = t0 + 1;
  range.end = t0 + 90;
  range.event_type = 59;
  range.thread_id = 77;
  range.range_id = 9;
  range.domain = "NCCL";
  range.text = "fwd/mb0/L0/attn.qkv";
  range.category = 4;
  range.color = 0xFF00FF00u;
  range.has_int_payload = true;
  range.int_payload = -12345678901;
  NvtxRecord mark;
  mark.start = t0 + 3;
  mark.end = -1;
  mark.event_type = 34;
  mark.thread_id = 78;
  mark.text = "checkpoint";
  mark.has_double_payload = true;
  mark.double_payload = 0.125;
  b.nvtx = {range, mark};
  b.gpus.push_back(
      {1, "NVIDIA H100 80GB HBM3", "GPU-1234", "0000:18:00.0", 85'000'000'000, 132, 9, 0});
  b.overhead.push_back({t0 + 95, t0 + 99, 77});
  b.dropped_records = 3;
  return b;
}

void expect_equal(const RecordBatch& a, const RecordBatch& b) {
  ASSERT_EQ(a.kernels.size(), b.kernels.size());
  for (size_t i = 0; i < a.kernels.size(); ++i) {
    const KernelRecord &x = a.kernels[i], &y = b.kernels[i];
    EXPECT_EQ(std::tie(x.start, x.end, x.device_id, x.context_id, x.stream_id, x.correlation_id,
                       x.mangled_name, x.demangled_name, x.grid_x, x.grid_y, x.grid_z, x.block_x,
                       x.block_y, x.block_z, x.registers_per_thread, x.static_shared_bytes,
                       x.dynamic_shared_bytes),
              std::tie(y.start, y.end, y.device_id, y.context_id, y.stream_id, y.correlation_id,
                       y.mangled_name, y.demangled_name, y.grid_x, y.grid_y, y.grid_z, y.block_x,
                       y.block_y, y.block_z, y.registers_per_thread, y.static_shared_bytes,
                       y.dynamic_shared_bytes));
  }
  ASSERT_EQ(a.memcpys.size(), b.memcpys.size());
  for (size_t i = 0; i < a.memcpys.size(); ++i) {
    const MemcpyRecord &x = a.memcpys[i], &y = b.memcpys[i];
    EXPECT_EQ(std::tie(x.start, x.end, x.device_id, x.context_id, x.stream_id, x.correlation_id,
                       x.bytes, x.copy_kind, x.src_kind, x.dst_kind),
              std::tie(y.start, y.end, y.device_id, y.context_id, y.stream_id, y.correlation_id,
                       y.bytes, y.copy_kind, y.src_kind, y.dst_kind));
  }
  ASSERT_EQ(a.memsets.size(), b.memsets.size());
  for (size_t i = 0; i < a.memsets.size(); ++i) {
    const MemsetRecord &x = a.memsets[i], &y = b.memsets[i];
    EXPECT_EQ(std::tie(x.start, x.end, x.device_id, x.context_id, x.stream_id, x.correlation_id,
                       x.bytes, x.value),
              std::tie(y.start, y.end, y.device_id, y.context_id, y.stream_id, y.correlation_id,
                       y.bytes, y.value));
  }
  ASSERT_EQ(a.api_calls.size(), b.api_calls.size());
  for (size_t i = 0; i < a.api_calls.size(); ++i) {
    const ApiRecord &x = a.api_calls[i], &y = b.api_calls[i];
    EXPECT_EQ(
        std::tie(x.start, x.end, x.thread_id, x.correlation_id, x.name, x.driver, x.return_value),
        std::tie(y.start, y.end, y.thread_id, y.correlation_id, y.name, y.driver, y.return_value));
  }
  ASSERT_EQ(a.syncs.size(), b.syncs.size());
  for (size_t i = 0; i < a.syncs.size(); ++i) {
    const SyncRecord &x = a.syncs[i], &y = b.syncs[i];
    EXPECT_EQ(std::tie(x.start, x.end, x.context_id, x.stream_id, x.correlation_id, x.thread_id,
                       x.sync_type),
              std::tie(y.start, y.end, y.context_id, y.stream_id, y.correlation_id, y.thread_id,
                       y.sync_type));
  }
  ASSERT_EQ(a.nvtx.size(), b.nvtx.size());
  for (size_t i = 0; i < a.nvtx.size(); ++i) {
    const NvtxRecord &x = a.nvtx[i], &y = b.nvtx[i];
    EXPECT_EQ(std::tie(x.start, x.end, x.event_type, x.thread_id, x.range_id, x.domain, x.text,
                       x.category, x.color, x.has_int_payload, x.has_double_payload, x.int_payload,
                       x.double_payload),
              std::tie(y.start, y.end, y.event_type, y.thread_id, y.range_id, y.domain, y.text,
                       y.category, y.color, y.has_int_payload, y.has_double_payload, y.int_payload,
                       y.double_payload));
  }
  ASSERT_EQ(a.gpus.size(), b.gpus.size());
  for (size_t i = 0; i < a.gpus.size(); ++i) {
    const GpuInfo &x = a.gpus[i], &y = b.gpus[i];
    EXPECT_EQ(std::tie(x.device_id, x.name, x.uuid, x.bus_location, x.total_memory_bytes,
                       x.sm_count, x.compute_major, x.compute_minor),
              std::tie(y.device_id, y.name, y.uuid, y.bus_location, y.total_memory_bytes,
                       y.sm_count, y.compute_major, y.compute_minor));
  }
  ASSERT_EQ(a.overhead.size(), b.overhead.size());
  for (size_t i = 0; i < a.overhead.size(); ++i) {
    EXPECT_EQ(std::tie(a.overhead[i].start, a.overhead[i].end, a.overhead[i].thread_id),
              std::tie(b.overhead[i].start, b.overhead[i].end, b.overhead[i].thread_id));
  }
  EXPECT_EQ(a.dropped_records, b.dropped_records);
}

void expect_equal(const ProcessInfo& a, const ProcessInfo& b) {
  EXPECT_EQ(std::tie(a.rank, a.local_rank, a.world_size, a.pid, a.hostname, a.command,
                     a.rank_source, a.start_ns, a.end_ns, a.clock_offset_ns),
            std::tie(b.rank, b.local_rank, b.world_size, b.pid, b.hostname, b.command,
                     b.rank_source, b.start_ns, b.end_ns, b.clock_offset_ns));
}

// Runs one query returning one integer, through a separate raw connection.
int64_t query_int(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  int64_t value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

void exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

std::string file_contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.what();
  }
  return "(no StoreError)";
}

TEST(TraceStore, RoundTripsEveryRecordKindAndField) {
  const std::string path = temp_path("roundtrip.sqlite");
  ProcessInfo p = process(3, -42);
  RecordBatch batch = full_batch(1'000'000);
  {
    TraceWriter writer(path, p);
    EXPECT_EQ(writer.path(), path);
    writer.write(batch);
    writer.finish(2'000'000);
  }
  TraceReader reader(path);
  EXPECT_EQ(reader.ranks(), std::vector<int32_t>{3});
  RankTrace t = reader.read_rank(3);
  p.end_ns = 2'000'000;
  expect_equal(t.process, p);
  // Read back in start order.
  std::swap(batch.api_calls[0], batch.api_calls[1]);
  std::swap(batch.nvtx[0], batch.nvtx[1]);
  std::sort(batch.api_calls.begin(), batch.api_calls.end(),
            [](auto& a, auto& b) { return a.start < b.start; });
  std::sort(batch.nvtx.begin(), batch.nvtx.end(),
            [](auto& a, auto& b) { return a.start < b.start; });
  expect_equal(t.records, batch);
  EXPECT_EQ(query_int(path, "SELECT isNccl FROM CUPTI_ACTIVITY_KIND_KERNEL"), 0);
  EXPECT_EQ(query_int(path,
                      "SELECT count(*) FROM CUPTI_ACTIVITY_KIND_KERNEL k JOIN StringIds s "
                      "ON s.id = k.shortName WHERE s.value = 'void gemm'"),
            1);
  EXPECT_EQ(query_int(path,
                      "SELECT count(*) FROM NVTX_EVENTS WHERE end IS NULL AND "
                      "int64Value IS NULL AND domainId IS NULL"),
            1);
}

TEST(TraceStore, EachBatchIsATransactionVisibleToAnotherReaderUnderWal) {
  const std::string path = temp_path("wal.sqlite");
  TraceWriter writer(path, process(0));
  writer.write(full_batch(0));
  writer.write(full_batch(1000));
  // The writer is still open: a second connection sees both committed batches.
  TraceReader reader(path);
  RankTrace t = reader.read_rank(0);
  EXPECT_EQ(t.records.kernels.size(), 2u);
  EXPECT_EQ(t.records.kernels[1].start, 1010);
  EXPECT_EQ(t.records.dropped_records, 6);
  EXPECT_EQ(t.process.end_ns, 0);  // not finished yet
  EXPECT_TRUE(fs::exists(path + "-wal"));
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"),
            1);
}

TEST(TraceStore, StoresEachDistinctStringOnce) {
  const std::string path = temp_path("dedup.sqlite");
  {
    TraceWriter writer(path, process(0));
    RecordBatch b = full_batch(0);
    b.kernels.push_back(b.kernels[0]);
    b.kernels.back().start += 1;
    writer.write(b);
    writer.write(full_batch(100));
  }
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM CUPTI_ACTIVITY_KIND_KERNEL"), 3);
  // mangled, demangled, short, 2 API names, NVTX range text, domain, mark text.
  EXPECT_EQ(query_int(path, "SELECT count(*) FROM StringIds"), 8);
  EXPECT_EQ(query_int(path, "SELECT count(DISTINCT value) FROM StringIds"), 8);
}

TEST(TraceStore, ReplacesAnExistingStore) {
  const std::string path = temp_path("replace.sqlite");
  { TraceWriter(path, process(0)).write(full_batch(0)); }
  { TraceWriter writer(path, process(1)); }
  TraceReader reader(path);
  EXPECT_EQ(reader.ranks(), std::vector<int32_t>{1});
  EXPECT_TRUE(reader.read_rank(1).records.kernels.empty());
}

TEST(TraceStore, RefusesToOverwriteAFileThatIsNotAStore) {
  const std::string text = temp_path("notes.txt");
  std::ofstream(text) << "my precious notes\n";
  EXPECT_NE(error_of([&] { TraceWriter(text, process(0)); }).find("refusing to replace"),
            std::string::npos);
  EXPECT_EQ(file_contents(text), "my precious notes\n");

  const std::string other_db = temp_path("other.sqlite");
  exec(other_db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  EXPECT_NE(error_of([&] { TraceWriter(other_db, process(0)); }).find("not an mpsim trace store"),
            std::string::npos);
  EXPECT_EQ(query_int(other_db, "SELECT x FROM t"), 1);
}

TEST(TraceStore, ReaderRefusesUnknownSchemaVersion) {
  const std::string path = temp_path("run.sqlite");
  { TraceWriter writer(path, process(0)); }
  exec(path, "UPDATE MPSIM_META SET value = '7' WHERE key = 'schema_version'");
  EXPECT_EQ(error_of([&] { TraceReader reader(path); }),
            path + ": schema_version 7 is not supported; expected 1");
}

TEST(TraceStore, ReaderRefusesMissingFilesAndNonDatabases) {
  const std::string missing = temp_path("missing.sqlite");
  EXPECT_EQ(error_of([&] { TraceReader reader(missing); }),
            missing + ": no such file; expected an mpsim trace store");
  const std::string text = temp_path("text.sqlite");
  std::ofstream(text) << "this is not a database, just enough text to fill a header page......\n";
  EXPECT_EQ(
      error_of([&] { TraceReader reader(text); }),
      text + ": not an SQLite database (file is not a database); expected an mpsim trace store");
  const std::string other_db = temp_path("plain.sqlite");
  exec(other_db, "CREATE TABLE t(x)");
  EXPECT_EQ(error_of([&] { TraceReader reader(other_db); }),
            other_db + ": not an mpsim trace store (no MPSIM_META table)");
}

TEST(TraceStore, ReadingAnAbsentRankNamesIt) {
  const std::string path = temp_path("absent.sqlite");
  { TraceWriter writer(path, process(0)); }
  EXPECT_EQ(error_of([&] { TraceReader(path).read_rank(5); }), path + ": no rank 5 in RANKS");
}

TEST(TraceStore, MergeShiftsEachRankOntoTheFirstInputsClock) {
  const std::string a = temp_path("m.rank0.sqlite"), b = temp_path("m.rank1.sqlite");
  const std::string out = temp_path("m.sqlite");
  {
    TraceWriter w0(a, process(0, 5'000));
    w0.write(full_batch(100'000));
    w0.finish(200'000);
    TraceWriter w1(b, process(1, 5'000 + 1'234));  // its CUPTI clock is 1234 ns behind
    w1.write(full_batch(100'000));
    w1.finish(200'000);
  }
  merge_ranks({a, b}, out);
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  TraceReader merged(out);
  ASSERT_EQ(merged.ranks(), (std::vector<int32_t>{0, 1}));
  RankTrace r0 = merged.read_rank(0), r1 = merged.read_rank(1);
  expect_equal(r0.records, TraceReader(a).read_rank(0).records);
  EXPECT_EQ(r0.process.start_ns, 1'000);
  EXPECT_EQ(r1.process.start_ns, 1'000 + 1'234);
  EXPECT_EQ(r1.process.end_ns, 200'000 + 1'234);
  EXPECT_EQ(r1.process.clock_offset_ns, 5'000);
  EXPECT_EQ(r1.records.kernels[0].start, 100'010 + 1'234);
  EXPECT_EQ(r1.records.kernels[0].end, 100'020 + 1'234);
  EXPECT_EQ(r1.records.nvtx[0].start, 100'001 + 1'234);
  EXPECT_EQ(r1.records.nvtx[1].end, -1);  // a mark stays a mark
  EXPECT_EQ(r1.records.overhead[0].start, 100'095 + 1'234);
  EXPECT_EQ(r1.records.dropped_records, 3);
  EXPECT_EQ(query_int(out, "SELECT count(*) FROM CUPTI_ACTIVITY_KIND_KERNEL WHERE rank = 1"), 1);
}

TEST(TraceStore, MergeRefusesDuplicateRanksNamingBothFiles) {
  const std::string a = temp_path("d.a.sqlite"), b = temp_path("d.b.sqlite");
  const std::string out = temp_path("d.sqlite");
  { TraceWriter w0(a, process(2)), w1(b, process(2)); }
  std::string error = error_of([&] { merge_ranks({a, b}, out); });
  EXPECT_NE(error.find("rank 2 appears in both " + a + " and " + b), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

TEST(TraceStore, MergeRefusesToReplaceANonStoreOutput) {
  const std::string a = temp_path("o.a.sqlite"), out = temp_path("o.txt");
  { TraceWriter w(a, process(0)); }
  std::ofstream(out) << "keep me";
  EXPECT_NE(error_of([&] { merge_ranks({a}, out); }).find("refusing to replace"),
            std::string::npos);
  EXPECT_EQ(file_contents(out), "keep me");
}

TEST(RankPath, ExpandsPatterns) {
  EXPECT_EQ(rank_path("run.sqlite", 3, 99), "run.rank3.sqlite");
  EXPECT_EQ(rank_path("out/run.%r.sqlite", 3, 99), "out/run.3.sqlite");
  EXPECT_EQ(rank_path("run_%p_%r.sqlite", 0, 4242), "run_4242_0.sqlite");
  EXPECT_EQ(rank_path("run.%p.sqlite", 1, 7), "run.7.rank1.sqlite");
  EXPECT_EQ(rank_path("run", 2, 7), "run.rank2");
  EXPECT_EQ(rank_path("dir.d/run", 2, 7), "dir.d/run.rank2");
  EXPECT_EQ(rank_path("dir/.trace", 2, 7), "dir/.trace.rank2");
  EXPECT_EQ(rank_path("%r/%r.sqlite", 12, 7), "12/12.sqlite");
}

TEST(TraceStore, MarksNcclKernelsAsCommunication) {
  const std::string path = temp_path("nccl.sqlite");
  {
    TraceWriter writer(path, process(0));
    RecordBatch b = full_batch(0);
    b.kernels[0].mangled_name = b.kernels[0].demangled_name =
        "ncclDevKernel_AllReduce_Sum_f32_RING_LL";
    writer.write(b);
  }
  EXPECT_EQ(query_int(path, "SELECT isNccl FROM CUPTI_ACTIVITY_KIND_KERNEL"), 1);
}

TEST(NcclKernel, RecognisesNcclKernelNames) {
  EXPECT_TRUE(
      is_nccl_kernel("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)"));
  EXPECT_TRUE(is_nccl_kernel("ncclKernel_AllGather_RING_LL_Sum_int8_t"));
  EXPECT_FALSE(is_nccl_kernel("nvjet_sm90_tst_128x256_64x4_2x1_v_bz_coopA_NTT"));
  EXPECT_FALSE(is_nccl_kernel("void at::native::ncclKernel_like()"));
  EXPECT_FALSE(is_nccl_kernel(""));
}

}  // namespace
}  // namespace mpsim::profiler
