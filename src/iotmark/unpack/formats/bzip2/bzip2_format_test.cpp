#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "iotmark/unpack/codec/testing/compressed_input.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeBzip2Format();

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

TEST(Bzip2Format, FindsAStreamInsideRandomBytesAndDecodesItToItsEnd) {
  const auto format = MakeBzip2Format();
  const auto& bz = CompressedWith("bzip2 -c");
  ASSERT_FALSE(bz.empty());
  const auto blob = Embed(bz, 1237, 4093);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 1237, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->offset, 1237u);
  EXPECT_EQ(result.chunk->meta.at("block_size"), "900k");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_EQ(result.consumed, bz.size());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->path, "decompressed");
  EXPECT_EQ(files[0]->sha256, HashOf(PlainBytes()));
}

TEST(Bzip2Format, NamesTheOutputAfterTheBlob) {
  const auto format = MakeBzip2Format();
  const auto& bz = CompressedWith("head -c 20000 | bzip2 -1 -c");
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, bz, 0, scratch, {}, "rootfs.tar.bz2");
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->path, "rootfs.tar");
  EXPECT_EQ(result.chunk->meta.at("block_size"), "100k");
}

TEST(Bzip2Format, ExtractsAnEmptyStream) {
  const auto format = MakeBzip2Format();
  const auto& bz = CompressedWith("bzip2 -c", "/dev/null");
  ASSERT_EQ(bz.size(), 14u);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, bz, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  EXPECT_EQ(result.consumed, 14u);
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->size, 0u);
}

TEST(Bzip2Format, KeepsTheBlocksBeforeATruncationAndSaysSo) {
  const auto format = MakeBzip2Format();
  const auto& bz = CompressedWith("bzip2 -1 -c");  // 100k blocks: many of them
  ASSERT_FALSE(bz.empty());
  const std::vector<std::uint8_t> cut(bz.begin(), bz.begin() + static_cast<long>(bz.size() / 2));
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, cut, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.consumed, cut.size());
  EXPECT_EQ(CountGaps(result, GapKind::kTruncated), 1u) << DescribeGaps(result);
  ASSERT_EQ(Files(result).size(), 1u);
  const auto bytes = result.Read(Files(result)[0]->path);
  ASSERT_GT(bytes.size(), PlainBytes().size() / 4);
  EXPECT_EQ(std::memcmp(bytes.data(), PlainBytes().data(), bytes.size()), 0);
}

TEST(Bzip2Format, ReportsACorruptBlockAsAGap) {
  const auto format = MakeBzip2Format();
  auto bz = CompressedWith("bzip2 -1 -c");
  ASSERT_FALSE(bz.empty());
  for (std::size_t i = 0; i < 16; ++i) bz[bz.size() / 2 + i] ^= 0x33;
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, bz, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(CountGaps(result, GapKind::kCorrupt), 1u) << DescribeGaps(result);
  EXPECT_LT(*result.consumed, bz.size());
}

TEST(Bzip2Format, RejectsAMagicFollowedByRandomBytes) {
  const auto format = MakeBzip2Format();
  int accepted = 0;
  for (std::uint32_t seed = 0; seed < 100; ++seed) {
    auto blob = RandomBytes(4096, seed);
    std::memcpy(blob.data() + 10, "BZh9", 4);
    accepted += format->Probe(blob, 10).has_value() ? 1 : 0;
  }
  EXPECT_EQ(accepted, 0);
  // A block magic with the obsolete "randomised" bit set is not from any current bzip2.
  auto bz = CompressedWith("head -c 20000 | bzip2 -c");
  ASSERT_TRUE(format->Probe(bz, 0).has_value());
  bz[14] |= 0x80;
  EXPECT_FALSE(format->Probe(bz, 0).has_value());
}

TEST(Bzip2Format, StopsAtTheEndOfTheSharedSamples) {
  const auto format = MakeBzip2Format();
  // {sample, bytes of other data after the stream, decompressed size}
  const struct {
    const char* name;
    std::uint64_t trailing;
    std::uint64_t size;
  } samples[] = {{"bzip2/fact_test.bz2", 0, 0},
                 {"bzip2/fact_trailing_data.bz2", 100, 13},
                 {"bzip2/binwalk_bzip2.bin", 35718, 21043}};
  for (const auto& sample : samples) {
    const auto path = testing::SharedSamplePath(sample.name);
    if (path.empty()) GTEST_SKIP() << "shared samples not present";
    const auto bytes = testing::ReadFileBytes(path);
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format, bytes, 0, scratch);
    ASSERT_TRUE(result.chunk.has_value()) << sample.name;
    EXPECT_TRUE(result.gaps.empty()) << sample.name << DescribeGaps(result);
    EXPECT_EQ(result.consumed, bytes.size() - sample.trailing) << sample.name;
    ASSERT_EQ(Files(result).size(), 1u) << sample.name;
    if (sample.size != 0) {
      EXPECT_EQ(Files(result)[0]->size, sample.size) << sample.name;
    }
  }
}

}  // namespace
}  // namespace iotmark::unpack::formats
