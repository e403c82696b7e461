#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "iotmark/unpack/codec/testing/compressed_input.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeLz4Format();

namespace {

using model::GapKind;
using testing::CompressedWith;
using testing::CountGaps;
using testing::DescribeGaps;
using testing::Embed;
using testing::Files;
using testing::HashOf;
using testing::PlainBytes;
using testing::ProbeAndExtract;
using testing::RandomBytes;
using testing::ScratchDir;

TEST(Lz4Format, WalksAFrameToItsExactEndWithoutDecompressing) {
  const auto format = MakeLz4Format();
  // 64 KiB blocks with block checksums: many blocks to walk.
  const auto& lz4 = CompressedWith("lz4 -q -B4 -BX -c");
  ASSERT_FALSE(lz4.empty());
  const auto blob = Embed(lz4, 1237, 4093);
  const auto chunk = format->Probe(blob, 1237);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->offset, 1237u);
  EXPECT_EQ(chunk->length, lz4.size());
  EXPECT_FALSE(chunk->length_from_extract);
  EXPECT_EQ(chunk->meta.at("variant"), "frame");
  EXPECT_EQ(chunk->meta.at("block_max_size"), "65536");
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 1237, scratch);
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->path, "decompressed");
  EXPECT_EQ(files[0]->sha256, HashOf(PlainBytes()));
}

TEST(Lz4Format, DecodesTheDefaultFrameOfTheCli) {
  const auto format = MakeLz4Format();
  const auto& lz4 = CompressedWith("lz4 -q -c");
  ASSERT_FALSE(lz4.empty());
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, lz4, 0, scratch, {}, "kernel.lz4");
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->length, lz4.size());
  EXPECT_EQ(result.chunk->meta.at("checksum"), "xxh32");
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->path, "kernel");
  EXPECT_EQ(Files(result)[0]->sha256, HashOf(PlainBytes()));
}

TEST(Lz4Format, DecodesALegacyStreamAndStopsAfterItsLastBlock) {
  const auto format = MakeLz4Format();
  const auto& lz4 = CompressedWith("lz4 -q -l -c");
  ASSERT_FALSE(lz4.empty());
  // Kernels put their uncompressed size right after the stream.
  auto stream = lz4;
  const auto size = static_cast<std::uint32_t>(PlainBytes().size());
  for (int i = 0; i < 4; ++i) stream.push_back(static_cast<std::uint8_t>(size >> (8 * i)));
  const auto blob = Embed(stream, 1237, 4093);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 1237, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_TRUE(result.chunk->length_from_extract);
  EXPECT_EQ(result.chunk->meta.at("variant"), "legacy");
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.consumed, lz4.size());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->sha256, HashOf(PlainBytes()));
}

TEST(Lz4Format, ReportsATruncatedFrame) {
  const auto format = MakeLz4Format();
  const auto& lz4 = CompressedWith("lz4 -q -B4 -c");
  ASSERT_FALSE(lz4.empty());
  const auto blob = Embed(ByteView(lz4).first(lz4.size() / 2), 99, 0);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 99, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_TRUE(result.chunk->length_from_extract);
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.consumed, lz4.size() / 2);
  EXPECT_EQ(CountGaps(result, GapKind::kTruncated), 1u) << DescribeGaps(result);
  ASSERT_EQ(Files(result).size(), 1u);
  const auto bytes = result.Read(Files(result)[0]->path);
  ASSERT_GT(bytes.size(), PlainBytes().size() / 4);
  EXPECT_EQ(std::memcmp(bytes.data(), PlainBytes().data(), bytes.size()), 0);
}

TEST(Lz4Format, ReportsATruncatedLegacyStream) {
  const auto format = MakeLz4Format();
  const auto& lz4 = CompressedWith("lz4 -q -l -c");
  ASSERT_FALSE(lz4.empty());
  const std::vector<std::uint8_t> cut(lz4.begin(), lz4.begin() + static_cast<long>(lz4.size() / 2));
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, cut, 0, scratch);
  // The first block is cut short: nothing decodes, so there is nothing to claim.
  EXPECT_FALSE(result.chunk.has_value());
}

TEST(Lz4Format, ReportsCorruptDataAsAGap) {
  const auto format = MakeLz4Format();
  auto lz4 = CompressedWith("lz4 -q -B4 -BX -c");
  ASSERT_FALSE(lz4.empty());
  const auto chunk = format->Probe(lz4, 0);
  ASSERT_TRUE(chunk.has_value());
  // Flip bytes inside the blocks' data; the walk of block sizes may or may not notice.
  for (std::size_t i = 0; i < 8; ++i) lz4[lz4.size() / 2 + i] ^= 0x5a;
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, lz4, 0, scratch);
  if (!result.chunk) GTEST_SKIP() << "the damage hit a block size field";
  ASSERT_TRUE(result.status);
  EXPECT_EQ(CountGaps(result, GapKind::kCorrupt), 1u) << DescribeGaps(result);
}

TEST(Lz4Format, RejectsMagicsFollowedByRandomBytes) {
  const auto format = MakeLz4Format();
  int accepted = 0;
  for (std::uint32_t seed = 0; seed < 200; ++seed) {
    auto blob = RandomBytes(4096, seed);
    std::memcpy(blob.data() + 10, seed % 2 == 0 ? "\x04\x22\x4d\x18" : "\x02\x21\x4c\x18", 4);
    accepted += format->Probe(blob, 10).has_value() ? 1 : 0;
  }
  EXPECT_EQ(accepted, 0);
  // A block larger than the frame's maximum ends the match.
  auto lz4 = CompressedWith("head -c 100000 | lz4 -q -B4 -c");
  ASSERT_TRUE(format->Probe(lz4, 0).has_value());
  lz4[7 + 2] = 0x7f;  // first block size: 0x7fxxxx > 64 KiB
  EXPECT_FALSE(format->Probe(lz4, 0).has_value());
}

TEST(Lz4Format, ExtractsTheSharedSample) {
  const auto format = MakeLz4Format();
  const auto path = testing::SharedSamplePath("lz4/fact_test.lz4");
  if (path.empty()) GTEST_SKIP() << "shared samples not present";
  const auto bytes = testing::ReadFileBytes(path);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, bytes, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->length, bytes.size());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  EXPECT_EQ(Files(result).size(), 1u);
}

}  // namespace
}  // namespace iotmark::unpack::formats
