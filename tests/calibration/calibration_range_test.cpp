// calibration_bench's range names (the grammar of calibration/calibration_range.h) parsed
// into the table each feeds and its keys; names breaking the grammar are refused by name; the
// formatters the bench names its ranges with write exactly the grammar and parse back.
#include "calibration/calibration_range.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace mpsim::calibration {
namespace {

using Keys = std::vector<int64_t>;

CalibrationRange parse(const std::string& text) {
  const std::optional<CalibrationRange> range = parse_calibration_range(text);
  if (!range) throw std::logic_error("not a calibration range: " + text);
  return *range;
}

std::string refusal(const std::string& text) {
  try {
    parse_calibration_range(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(CalibrationRangeTest, EveryMeasurementOfTheGrammar) {
  CalibrationRange r = parse("calib/gemm.bf16/dgrad/m=1024,n=768,k=16384");
  EXPECT_EQ(r.kind, MeasurementKind::kGemm);
  EXPECT_EQ(r.table, "gemm.bf16.dgrad");
  EXPECT_EQ(r.keys, (Keys{1024, 768, 16384}));
  EXPECT_EQ(parse("calib/gemm.bf16/fwd/m=1,n=2,k=3").table, "gemm.bf16.fwd");
  EXPECT_EQ(parse("calib/gemm.bf16/wgrad/m=1,n=2,k=3").table, "gemm.bf16.wgrad");

  r = parse("calib/attention.bwd.bf16/bh=128,s=4096,d=64");
  EXPECT_EQ(r.kind, MeasurementKind::kAttention);
  EXPECT_EQ(r.table, "attention.bwd.bf16");
  EXPECT_EQ(r.keys, (Keys{128, 4096, 64}));
  EXPECT_EQ(parse("calib/attention.fwd.bf16/bh=16,s=512,d=64").table, "attention.fwd.bf16");

  for (const std::string op : {"norm", "elementwise", "optimizer"}) {
    r = parse("calib/memory." + op + "/bytes=1048576");
    EXPECT_EQ(r.kind, MeasurementKind::kMemory);
    EXPECT_EQ(r.table, "memory." + op);
    EXPECT_EQ(r.keys, (Keys{1048576}));
  }
  for (const std::string op : {"allreduce", "allgather", "reducescatter", "send"}) {
    r = parse("calib/" + op + ".nvlink/g=2,bytes=1073741824");
    EXPECT_EQ(r.kind, MeasurementKind::kCollective);
    EXPECT_EQ(r.table, op + ".nvlink");
    EXPECT_EQ(r.keys, (Keys{2, 1073741824}));
  }
  r = parse("calib/interference/gemm.bf16/m=8192,n=8192,k=8192");
  EXPECT_EQ(r.kind, MeasurementKind::kInterference);
  EXPECT_EQ(r.table, "interference.gemm.bf16");
  EXPECT_EQ(r.measurement, "interference.gemm.bf16");
  EXPECT_EQ(r.keys, (Keys{8192, 8192, 8192}));

  // Both passes of the loss feed one table; the measurement keeps the pass.
  for (const std::string pass : {"fwd", "bwd"}) {
    r = parse("calib/memory.loss." + pass + "/bytes=411041792");
    EXPECT_EQ(r.kind, MeasurementKind::kMemory);
    EXPECT_EQ(r.table, "memory.loss");
    EXPECT_EQ(r.measurement, "memory.loss." + pass);
    EXPECT_EQ(r.keys, (Keys{411041792}));
  }
  r = parse("calib/memory.softmax/bytes=8388608");
  EXPECT_EQ(r.kind, MeasurementKind::kMemory);
  EXPECT_EQ(r.table, "memory.softmax");
  EXPECT_EQ(r.measurement, "memory.softmax");

  r = parse("calib/meta/driver=13000,runtime=13000,cublas=130100,nccl=22803");
  EXPECT_EQ(r.kind, MeasurementKind::kMeta);
  EXPECT_EQ(r.table, "");
  EXPECT_EQ(r.measurement, "meta");
  EXPECT_EQ(r.keys, (Keys{13000, 13000, 130100, 22803}));
}

// The loss keys are the graph's Op::bytes formulas (checked against the graph in
// calibrate_profile_test.cpp): 2 tokens vocab + 4 tokens forward, 4 tokens vocab backward.
TEST(CalibrationRangeTest, LossBytes) {
  EXPECT_EQ(loss_forward_bytes(2048, 50304), 2 * 2048 * 50304 + 4 * 2048);
  EXPECT_EQ(loss_backward_bytes(2048, 50304), 4 * 2048 * 50304);
}

TEST(CalibrationRangeTest, OtherRangesAreNotCalibrationRanges) {
  EXPECT_FALSE(parse_calibration_range("ncclAllReduce"));
  EXPECT_FALSE(parse_calibration_range("layer3/fwd/mlp.fc1"));
  EXPECT_FALSE(parse_calibration_range("calib"));
}

TEST(CalibrationRangeTest, BrokenNamesAreRefusedNamingTheRange) {
  EXPECT_EQ(refusal("calib/gemm.bf16/bwd/m=1,n=2,k=3"),
            "calibration range 'calib/gemm.bf16/bwd/m=1,n=2,k=3': layout 'bwd', expected fwd, "
            "dgrad or wgrad");
  EXPECT_EQ(refusal("calib/gemm.bf16/fwd/m=1,k=2,n=3"),
            "calibration range 'calib/gemm.bf16/fwd/m=1,k=2,n=3': keys 'm=1,k=2,n=3', expected "
            "'m=<positive integer>,n=<positive integer>,k=<positive integer>'");
  EXPECT_EQ(refusal("calib/memory.norm/bytes=0"),
            "calibration range 'calib/memory.norm/bytes=0': key bytes = '0', expected "
            "'bytes=<positive integer>'");
  EXPECT_EQ(refusal("calib/memory.norm/bytes=12x"),
            "calibration range 'calib/memory.norm/bytes=12x': key bytes = '12x', expected "
            "'bytes=<positive integer>'");
  EXPECT_EQ(refusal("calib/allreduce.nvlink/g=2,bytes=4,extra=1"),
            "calibration range 'calib/allreduce.nvlink/g=2,bytes=4,extra=1': keys "
            "'g=2,bytes=4,extra=1', expected 'g=<positive integer>,bytes=<positive integer>'");
  EXPECT_EQ(refusal("calib/memory.loss/bytes=4"),
            "calibration range 'calib/memory.loss/bytes=4': unknown measurement 'memory.loss', "
            "expected gemm.bf16, gemm.fp8, attention.fwd.bf16, attention.bwd.bf16, "
            "attention.flash.fwd.bf16, "
            "attention.flash.bwd.bf16, memory.norm, memory.fp8_cast, "
            "memory.elementwise, memory.optimizer, memory.loss.fwd, memory.loss.bwd, "
            "memory.softmax, allreduce.nvlink, allgather.nvlink, reducescatter.nvlink, "
            "send.nvlink, interference/gemm.bf16 or meta");
  EXPECT_EQ(refusal("calib/meta/driver=13000,runtime=13000,cublas=130100"),
            "calibration range 'calib/meta/driver=13000,runtime=13000,cublas=130100': keys "
            "'driver=13000,runtime=13000,cublas=130100', expected 'driver=<positive "
            "integer>,runtime=<positive integer>,cublas=<positive integer>,nccl=<positive "
            "integer>'");
}

// The names written by hand from the grammar, not from the parser.
TEST(CalibrationRangeTest, FormattersWriteTheGrammar) {
  EXPECT_EQ(gemm_range_name("wgrad", 1024, 768, 16384),
            "calib/gemm.bf16/wgrad/m=1024,n=768,k=16384");
  EXPECT_EQ(attention_range_name(false, 16, 512, 64), "calib/attention.fwd.bf16/bh=16,s=512,d=64");
  EXPECT_EQ(attention_range_name(true, 128, 4096, 128),
            "calib/attention.bwd.bf16/bh=128,s=4096,d=128");
  EXPECT_EQ(fp8_gemm_range_name("dgrad", 8192, 4096, 14336),
            "calib/gemm.fp8/dgrad/m=8192,n=4096,k=14336");
  EXPECT_EQ(flash_attention_range_name(true, 64, 2048, 128, 8),
            "calib/attention.flash.bwd.bf16/bh=64,s=2048,d=128,g=8");
  EXPECT_EQ(memory_range_name("norm", 1048576), "calib/memory.norm/bytes=1048576");
  EXPECT_EQ(memory_range_name("softmax", 8388608), "calib/memory.softmax/bytes=8388608");
  EXPECT_EQ(loss_range_name(false, 16392), "calib/memory.loss.fwd/bytes=16392");
  EXPECT_EQ(loss_range_name(true, 32768), "calib/memory.loss.bwd/bytes=32768");
  EXPECT_EQ(collective_range_name("reducescatter", 4, 1024),
            "calib/reducescatter.nvlink/g=4,bytes=1024");
  EXPECT_EQ(interference_range_name(8192, 8192, 8192),
            "calib/interference/gemm.bf16/m=8192,n=8192,k=8192");
  EXPECT_EQ(meta_range_name(13000, 13000, 130100, 22703),
            "calib/meta/driver=13000,runtime=13000,cublas=130100,nccl=22703");
}

TEST(CalibrationRangeTest, FormattedNamesParseBack) {
  CalibrationRange r = parse(gemm_range_name("dgrad", 1, 2, 3));
  EXPECT_EQ(r.table, "gemm.bf16.dgrad");
  EXPECT_EQ(r.keys, (Keys{1, 2, 3}));
  r = parse(attention_range_name(true, 4, 5, 6));
  EXPECT_EQ(r.table, "attention.bwd.bf16");
  EXPECT_EQ(r.keys, (Keys{4, 5, 6}));
  r = parse(fp8_gemm_range_name("wgrad", 7, 8, 9));
  EXPECT_EQ(r.table, "gemm.fp8.wgrad");
  EXPECT_EQ(r.kind, MeasurementKind::kGemm);
  EXPECT_EQ(r.keys, (Keys{7, 8, 9}));
  r = parse(flash_attention_range_name(false, 4, 5, 6, 2));
  EXPECT_EQ(r.table, "attention.flash.fwd.bf16");
  EXPECT_EQ(r.kind, MeasurementKind::kAttention);
  EXPECT_EQ(r.keys, (Keys{4, 5, 6, 2}));
  // The fused core's names need the group.
  EXPECT_THROW(parse("calib/attention.flash.fwd.bf16/bh=4,s=5,d=6"), std::invalid_argument);
  for (const char* op : {"norm", "elementwise", "optimizer", "softmax", "fp8_cast"}) {
    r = parse(memory_range_name(op, 7));
    EXPECT_EQ(r.table, std::string("memory.") + op);
    EXPECT_EQ(r.keys, (Keys{7}));
  }
  r = parse(loss_range_name(true, loss_backward_bytes(2048, 4096)));
  EXPECT_EQ(r.table, "memory.loss");
  EXPECT_EQ(r.measurement, kLossBackwardMeasurement);
  EXPECT_EQ(r.keys, (Keys{4 * 2048 * 4096}));
  r = parse(loss_range_name(false, loss_forward_bytes(2048, 4096)));
  EXPECT_EQ(r.measurement, kLossForwardMeasurement);
  EXPECT_EQ(r.keys, (Keys{2 * 2048 * 4096 + 4 * 2048}));
  for (const char* op : {"allreduce", "allgather", "reducescatter", "send"}) {
    r = parse(collective_range_name(op, 2, 1024));
    EXPECT_EQ(r.kind, MeasurementKind::kCollective);
    EXPECT_EQ(r.table, std::string(op) + ".nvlink");
    EXPECT_EQ(r.keys, (Keys{2, 1024}));
  }
  r = parse(interference_range_name(8, 9, 10));
  EXPECT_EQ(r.kind, MeasurementKind::kInterference);
  EXPECT_EQ(r.keys, (Keys{8, 9, 10}));
  r = parse(meta_range_name(1, 2, 3, 4));
  EXPECT_EQ(r.kind, MeasurementKind::kMeta);
  EXPECT_EQ(r.keys, (Keys{1, 2, 3, 4}));
}

}  // namespace
}  // namespace mpsim::calibration
