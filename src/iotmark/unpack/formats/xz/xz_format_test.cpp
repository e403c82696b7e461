#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "iotmark/unpack/codec/testing/compressed_input.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeXzFormat();

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

TEST(XzFormat, FindsAStreamInsideRandomBytesAndDecodesItToItsEnd) {
  const auto format = MakeXzFormat();
  // Single-threaded xz leaves the sizes out of the block headers: the decoder finds the end.
  const auto& xz = CompressedWith("xz -3 -T1 -c");
  ASSERT_FALSE(xz.empty());
  const auto blob = Embed(xz, 1237, 4093);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 1237, scratch, {}, "image.bin");
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->offset, 1237u);
  EXPECT_TRUE(result.chunk->length_from_extract);
  EXPECT_EQ(result.chunk->meta.at("check"), "crc64");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_EQ(result.consumed, xz.size());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->path, "decompressed");
  EXPECT_EQ(files[0]->sha256, HashOf(PlainBytes()));
}

TEST(XzFormat, WalksBlocksIndexAndFooterWhenTheBlockHeadersStateTheirSizes) {
  const auto format = MakeXzFormat();
  // Multi-threaded xz writes sizes into the block headers; small blocks make several of them.
  const auto& xz = CompressedWith("xz -1 -T2 --block-size=300000 -C crc32 -c");
  ASSERT_FALSE(xz.empty());
  const auto blob = Embed(xz, 4097, 513);
  const auto chunk = format->Probe(blob, 4097);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_FALSE(chunk->length_from_extract);
  EXPECT_EQ(chunk->length, xz.size());
  EXPECT_EQ(chunk->meta.at("check"), "crc32");
  EXPECT_EQ(chunk->meta.at("uncompressed_size"), std::to_string(PlainBytes().size()));
  EXPECT_EQ(chunk->meta.at("blocks"), std::to_string((PlainBytes().size() + 299999) / 300000));
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 4097, scratch);
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->sha256, HashOf(PlainBytes()));
}

TEST(XzFormat, FallsBackToDecodingWhenTheIndexIsDamaged) {
  const auto format = MakeXzFormat();
  auto xz = CompressedWith("xz -1 -T2 --block-size=300000 -c");
  ASSERT_FALSE(xz.empty());
  xz[xz.size() - 14] ^= 0x40;  // the index CRC, just before the footer
  const auto chunk = format->Probe(xz, 0);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_TRUE(chunk->length_from_extract);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, xz, 0, scratch);
  EXPECT_EQ(CountGaps(result, GapKind::kCorrupt), 1u) << DescribeGaps(result);
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->size, PlainBytes().size());  // all blocks decoded before the index
}

TEST(XzFormat, KeepsWhatATruncatedStreamYieldsAndSaysSo) {
  const auto format = MakeXzFormat();
  const auto& xz = CompressedWith("xz -1 -T2 --block-size=300000 -c");
  ASSERT_FALSE(xz.empty());
  const std::vector<std::uint8_t> cut(xz.begin(), xz.begin() + static_cast<long>(xz.size() / 2));
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, cut, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_TRUE(result.chunk->length_from_extract);
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.consumed, cut.size());
  EXPECT_EQ(CountGaps(result, GapKind::kTruncated), 1u) << DescribeGaps(result);
  ASSERT_EQ(Files(result).size(), 1u);
  const auto bytes = result.Read(Files(result)[0]->path);
  ASSERT_GT(bytes.size(), 300000u);
  EXPECT_EQ(std::memcmp(bytes.data(), PlainBytes().data(), bytes.size()), 0);
}

TEST(XzFormat, RejectsAHeaderWhoseCrcDoesNotMatch) {
  const auto format = MakeXzFormat();
  auto xz = CompressedWith("head -c 5000 | xz -c");
  ASSERT_FALSE(xz.empty());
  EXPECT_TRUE(format->Probe(xz, 0).has_value());
  xz[7] = 0x0a;  // SHA-256 instead of CRC64: the header CRC no longer matches
  EXPECT_FALSE(format->Probe(xz, 0).has_value());
  auto random = RandomBytes(4096, 3);
  std::memcpy(random.data() + 10,
              "\xfd"
              "7zXZ\0",
              6);
  EXPECT_FALSE(format->Probe(random, 10).has_value());
}

TEST(XzFormat, ReportsCorruptBlockDataAsAGap) {
  const auto format = MakeXzFormat();
  auto xz = CompressedWith("xz -3 -T1 -c");
  ASSERT_FALSE(xz.empty());
  for (std::size_t i = 0; i < 32; ++i) xz[xz.size() / 2 + i] ^= 0xa5;
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, xz, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(CountGaps(result, GapKind::kCorrupt), 1u) << DescribeGaps(result);
  EXPECT_LT(*result.consumed, xz.size());
}

TEST(XzFormat, ExtractsTheSharedSample) {
  const auto format = MakeXzFormat();
  const auto path = testing::SharedSamplePath("xz/fact_test.xz");
  if (path.empty()) GTEST_SKIP() << "shared samples not present";
  const auto bytes = testing::ReadFileBytes(path);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, bytes, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  EXPECT_EQ(result.consumed.value_or(result.chunk->length), bytes.size());
  EXPECT_EQ(Files(result).size(), 1u);
}

}  // namespace
}  // namespace iotmark::unpack::formats
