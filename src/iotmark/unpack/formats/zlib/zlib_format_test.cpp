#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "iotmark/unpack/codec/testing/compressed_input.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeZlibFormat();

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

std::string PythonZlib(int level) {
  return "python3 -c 'import zlib,sys;sys.stdout.buffer.write(zlib.compress("
         "sys.stdin.buffer.read()," +
         std::to_string(level) + "))'";
}

TEST(ZlibFormat, FindsAStreamInsideRandomBytesAndDecodesItToItsEnd) {
  const auto format = MakeZlibFormat();
  const auto& zz = CompressedWith(PythonZlib(9));
  ASSERT_FALSE(zz.empty());
  ASSERT_EQ(zz[1], 0xda);
  const auto blob = Embed(zz, 1237, 4093);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 1237, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->offset, 1237u);
  EXPECT_TRUE(result.chunk->length_from_extract);
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_EQ(result.consumed, zz.size());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->path, "decompressed");
  EXPECT_EQ(files[0]->sha256, HashOf(PlainBytes()));
}

TEST(ZlibFormat, AcceptsEveryLevelsHeader) {
  const auto format = MakeZlibFormat();
  for (int level : {1, 5, 6, 9}) {
    const auto& zz = CompressedWith("head -c 50000 | " + PythonZlib(level));
    ASSERT_FALSE(zz.empty());
    const auto blob = Embed(zz, 3, 10);
    const auto chunk = format->Probe(blob, 3);
    EXPECT_TRUE(chunk.has_value()) << level;
  }
}

TEST(ZlibFormat, KnowsTheLengthOfASmallStreamFromTheProbe) {
  const auto format = MakeZlibFormat();
  const auto& zz = CompressedWith("head -c 600 | " + PythonZlib(6));
  ASSERT_GE(zz.size(), 32u);
  const auto blob = Embed(zz, 5, 100);
  const auto chunk = format->Probe(blob, 5);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_FALSE(chunk->length_from_extract);
  EXPECT_EQ(chunk->length, zz.size());
}

TEST(ZlibFormat, IgnoresTinyStreams) {
  const auto format = MakeZlibFormat();
  const auto& zz = CompressedWith("printf hello | " + PythonZlib(6));
  ASSERT_LT(zz.size(), 32u);
  const auto blob = Embed(zz, 5, 100);
  EXPECT_FALSE(format->Probe(blob, 5).has_value());
}

TEST(ZlibFormat, KeepsWhatATruncatedStreamYieldsAndSaysSo) {
  const auto format = MakeZlibFormat();
  const auto& zz = CompressedWith(PythonZlib(6));
  ASSERT_FALSE(zz.empty());
  const std::vector<std::uint8_t> cut(zz.begin(), zz.begin() + static_cast<long>(zz.size() / 2));
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

TEST(ZlibFormat, ReportsAWrongAdlerAsCorrupt) {
  const auto format = MakeZlibFormat();
  auto zz = CompressedWith(PythonZlib(6));
  ASSERT_FALSE(zz.empty());
  zz.back() ^= 0x01;
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, zz, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(CountGaps(result, GapKind::kCorrupt), 1u) << DescribeGaps(result);
}

TEST(ZlibFormat, FindsNoStreamsInRandomOrCompressedData) {
  const auto format = MakeZlibFormat();
  // Two-byte magics turn up every 16 KiB or so in such data; none of them may become a chunk.
  const auto check = [&](ByteView bytes, const std::string& what) {
    int candidates = 0;
    int accepted = 0;
    for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
      if (bytes[i] != 0x78) continue;
      const std::uint8_t flg = bytes[i + 1];
      if (flg != 0x01 && flg != 0x5e && flg != 0x9c && flg != 0xda) continue;
      ++candidates;
      accepted += format->Probe(bytes, i).has_value() ? 1 : 0;
    }
    EXPECT_GT(candidates, 10) << what;
    EXPECT_EQ(accepted, 0) << what;
  };
  check(RandomBytes(4 << 20, 11), "random bytes");
  check(CompressedWith("xz -1 -c"), "xz data");
  check(CompressedWith("zstd -q -c"), "zstd data");
}

}  // namespace
}  // namespace iotmark::unpack::formats
