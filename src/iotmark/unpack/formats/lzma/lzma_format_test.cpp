#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "iotmark/unpack/codec/testing/compressed_input.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeLzmaFormat();

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

bool HasMagicAt(const Format& format, ByteView bytes) {
  for (const Magic& magic : format.magics()) {
    if (bytes.size() >= magic.bytes.size() &&
        std::memcmp(bytes.data(), magic.bytes.data(), magic.bytes.size()) == 0) {
      return true;
    }
  }
  return false;
}

TEST(LzmaFormat, FindsAStreamInsideRandomBytesAndDecodesItToItsEnd) {
  const auto format = MakeLzmaFormat();
  const auto& lzma = CompressedWith("lzma -3 -c");  // 4 MiB dictionary, end marker
  ASSERT_FALSE(lzma.empty());
  ASSERT_TRUE(HasMagicAt(*format, lzma));
  const auto blob = Embed(lzma, 1237, 4093);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 1237, scratch, {}, "image.bin");
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->offset, 1237u);
  EXPECT_EQ(result.chunk->meta.at("dictionary_size"), std::to_string(4 << 20));
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_EQ(result.consumed, lzma.size());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->sha256, HashOf(PlainBytes()));
}

TEST(LzmaFormat, AcceptsTheDictionarySizesOfCommonPresets) {
  const auto format = MakeLzmaFormat();
  for (const char* preset : {"-0", "-6", "-9"}) {
    const auto& lzma = CompressedWith(std::string("head -c 100000 | lzma -c ") + preset);
    ASSERT_FALSE(lzma.empty());
    EXPECT_TRUE(HasMagicAt(*format, lzma)) << preset;
    EXPECT_TRUE(format->Probe(lzma, 0).has_value()) << preset;
  }
}

TEST(LzmaFormat, HonoursAStatedSizeWithoutAnEndMarker) {
  const auto format = MakeLzmaFormat();
  // A header stating the size and no end marker, as U-Boot kernels and the LZMA SDK have it.
  const auto lzma = testing::LzmaAloneWithKnownSize(PlainBytes());
  ASSERT_FALSE(lzma.empty());
  ASSERT_TRUE(HasMagicAt(*format, lzma));
  const auto blob = Embed(lzma, 17, 100);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 17, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->meta.at("stated_size"), std::to_string(PlainBytes().size()));
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  EXPECT_EQ(result.consumed, lzma.size());
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->sha256, HashOf(PlainBytes()));
}

TEST(LzmaFormat, KeepsWhatATruncatedStreamYieldsAndSaysSo) {
  const auto format = MakeLzmaFormat();
  const auto& lzma = CompressedWith("lzma -3 -c");
  ASSERT_FALSE(lzma.empty());
  const std::vector<std::uint8_t> cut(lzma.begin(),
                                      lzma.begin() + static_cast<long>(lzma.size() / 2));
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

TEST(LzmaFormat, RejectsMagicsInRandomBytes) {
  const auto format = MakeLzmaFormat();
  int accepted = 0;
  for (std::uint32_t seed = 0; seed < 300; ++seed) {
    auto blob = RandomBytes(16384, seed);
    const Magic& magic = format->magics()[seed % format->magics().size()];
    std::memcpy(blob.data() + 64, magic.bytes.data(), magic.bytes.size());
    // Make the rest of the header plausible: unknown size, zero first range-coder byte.
    std::memset(blob.data() + 64 + 5, 0xff, 8);
    blob[64 + 13] = 0;
    accepted += format->Probe(blob, 64).has_value() ? 1 : 0;
  }
  EXPECT_EQ(accepted, 0);
}

TEST(LzmaFormat, RejectsImplausibleHeaders) {
  const auto format = MakeLzmaFormat();
  auto lzma = CompressedWith("head -c 100000 | lzma -c");
  ASSERT_FALSE(lzma.empty());
  auto huge = lzma;
  huge[12] = 0x01;  // a stated size of 2^56 bytes
  EXPECT_FALSE(format->Probe(huge, 0).has_value());
  auto nonzero = lzma;
  nonzero[13] = 0x80;  // the range coder always starts with a zero byte
  EXPECT_FALSE(format->Probe(nonzero, 0).has_value());
}

TEST(LzmaFormat, StopsAtTheEndOfTheSharedSampleWithTrailingData) {
  const auto format = MakeLzmaFormat();
  const auto path = testing::SharedSamplePath("lzma/fact_trailing_data.lzma");
  if (path.empty()) GTEST_SKIP() << "shared samples not present";
  const auto bytes = testing::ReadFileBytes(path);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, bytes, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  // The sample is a 35-byte stream (12 bytes of text) followed by 100 bytes of other data.
  ASSERT_TRUE(result.consumed.has_value());
  EXPECT_EQ(*result.consumed, bytes.size() - 100);
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->size, 12u);
}

}  // namespace
}  // namespace iotmark::unpack::formats
