#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "iotmark/unpack/codec/testing/compressed_input.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeZstdFormat();

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

TEST(ZstdFormat, FindsTheExactEndOfAFrameWithoutDecompressing) {
  const auto format = MakeZstdFormat();
  const auto& zst = CompressedWith("zstd -q -c");
  ASSERT_FALSE(zst.empty());
  const auto blob = Embed(zst, 1237, 4093);
  const auto chunk = format->Probe(blob, 1237);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->offset, 1237u);
  EXPECT_EQ(chunk->length, zst.size());
  EXPECT_FALSE(chunk->length_from_extract);
  EXPECT_EQ(chunk->meta.at("checksum"), "xxh64");
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 1237, scratch, {}, "image.bin");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->path, "decompressed");
  EXPECT_EQ(files[0]->sha256, HashOf(PlainBytes()));
}

TEST(ZstdFormat, StatesTheContentSizeAndNamesTheOutputAfterTheBlob) {
  const auto format = MakeZstdFormat();
  const auto& zst = CompressedWith("cd \"$(mktemp -d)\" && cat > f && zstd -q -19 f && cat f.zst");
  ASSERT_FALSE(zst.empty());
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, zst, 0, scratch, {}, "rootfs.bin.zst");
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->meta.at("content_size"), std::to_string(PlainBytes().size()));
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->path, "rootfs.bin");
  EXPECT_EQ(Files(result)[0]->sha256, HashOf(PlainBytes()));
}

TEST(ZstdFormat, TakesLeadingSkippableFramesAlong) {
  const auto format = MakeZstdFormat();
  const auto& zst = CompressedWith("head -c 70000 | zstd -q -c");
  std::vector<std::uint8_t> blob = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4};
  blob.insert(blob.end(), zst.begin(), zst.end());
  blob.insert(blob.end(), 64, 0xcc);
  const auto chunk = format->Probe(blob, 0);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->length, 12 + zst.size());
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 0, scratch);
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->size, 70000u);
  // A skippable frame on its own, or followed by something else, is not a chunk.
  std::vector<std::uint8_t> alone = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9};
  EXPECT_FALSE(format->Probe(alone, 0).has_value());
}

TEST(ZstdFormat, KeepsWhatATruncatedFrameYieldsAndSaysSo) {
  const auto format = MakeZstdFormat();
  const auto& zst = CompressedWith("zstd -q -c");
  ASSERT_FALSE(zst.empty());
  const auto blob = Embed(ByteView(zst).first(zst.size() / 2), 99, 0);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 99, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_TRUE(result.chunk->length_from_extract);
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.consumed, zst.size() / 2);
  EXPECT_EQ(CountGaps(result, GapKind::kTruncated), 1u) << DescribeGaps(result);
  ASSERT_EQ(Files(result).size(), 1u);
  const auto bytes = result.Read(Files(result)[0]->path);
  ASSERT_GT(bytes.size(), PlainBytes().size() / 4);
  EXPECT_EQ(std::memcmp(bytes.data(), PlainBytes().data(), bytes.size()), 0);
}

TEST(ZstdFormat, ReportsCorruptDataAsAGap) {
  const auto format = MakeZstdFormat();
  auto zst = CompressedWith("zstd -q -c");
  ASSERT_FALSE(zst.empty());
  // Damage the content of a block, not its header, so the probe still finds the frame.
  const std::size_t at = zst.size() / 2;
  for (std::size_t i = 0; i < 16; ++i) zst[at + i] ^= 0x11;
  const auto chunk = format->Probe(zst, 0);
  if (!chunk) GTEST_SKIP() << "the damage hit a block header";
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, zst, 0, scratch);
  ASSERT_TRUE(result.status);
  EXPECT_EQ(CountGaps(result, GapKind::kCorrupt), 1u) << DescribeGaps(result);
}

TEST(ZstdFormat, RejectsAMagicFollowedByRandomBytes) {
  const auto format = MakeZstdFormat();
  int accepted = 0;
  for (std::uint32_t seed = 0; seed < 1000; ++seed) {
    auto blob = RandomBytes(4096, seed);
    std::memcpy(blob.data() + 10, "\x28\xb5\x2f\xfd", 4);
    blob[14] &= 0xf4;  // a valid frame header descriptor: no reserved bit, no dictionary
    accepted += format->Probe(blob, 10).has_value() ? 1 : 0;
  }
  EXPECT_EQ(accepted, 0);
}

TEST(ZstdFormat, LeavesFramesWithAWindowBeyondTheMemoryLimitAlone) {
  const auto format = MakeZstdFormat();
  // Through a pipe zstd does not know the size, so --long=31 keeps a 2 GiB window.
  const auto& zst = CompressedWith("head -c 100000 | zstd -q -c --long=31");
  ASSERT_FALSE(zst.empty());
  EXPECT_FALSE(format->Probe(zst, 0).has_value());
}

TEST(ZstdFormat, ExtractsTheSharedSample) {
  const auto format = MakeZstdFormat();
  const auto path = testing::SharedSamplePath("zstd/fact_test.zst");
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
