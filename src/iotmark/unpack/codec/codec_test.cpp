#include "iotmark/unpack/codec/codec.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "iotmark/unpack/codec/testing/compressed_input.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::codec {
namespace {

using iotmark::testing::CompressedWith;
using iotmark::testing::HashOf;
using iotmark::testing::PlainBytes;
using iotmark::testing::RandomBytes;

constexpr const char* kPythonZlib =
    "python3 -c 'import "
    "zlib,sys;sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read(),9))'";
constexpr const char* kPythonDeflate =
    "python3 -c 'import zlib,sys;c=zlib.compressobj(6,zlib.DEFLATED,-15);"
    "sys.stdout.buffer.write(c.compress(sys.stdin.buffer.read())+c.flush())'";

struct ToolCase {
  Codec codec;
  const char* command;
  bool has_check;  // the stream carries a checksum of its content
};

std::string CaseName(const ::testing::TestParamInfo<ToolCase>& info) {
  std::string name(ToString(info.param.codec));
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

// Collects the output and the sizes of the pieces it came in.
struct Collector {
  std::vector<std::uint8_t> bytes;
  std::size_t largest_piece = 0;
  Output AsOutput() {
    return [this](ByteView piece) {
      bytes.insert(bytes.end(), piece.begin(), piece.end());
      largest_piece = std::max(largest_piece, piece.size());
      return Ok();
    };
  }
};

class CodecRoundTrip : public ::testing::TestWithParam<ToolCase> {
 protected:
  const std::vector<std::uint8_t>& Stream() {
    const auto& stream = CompressedWith(GetParam().command);
    if (stream.empty()) ADD_FAILURE() << "could not run: " << GetParam().command;
    return stream;
  }
};

TEST_P(CodecRoundTrip, DecodesARealStreamAndStopsExactlyAtItsEnd) {
  const auto& stream = Stream();
  ASSERT_FALSE(stream.empty());
  auto input = stream;
  const auto garbage = RandomBytes(3001, 99);
  input.insert(input.end(), garbage.begin(), garbage.end());

  Collector collector;
  auto result = Decode(GetParam().codec, input, collector.AsOutput());
  ASSERT_TRUE(result) << result.error().ToString();
  EXPECT_TRUE(result->complete) << result->problem;
  EXPECT_EQ(result->stop, Stop::kEnd);
  EXPECT_EQ(result->consumed, stream.size());
  EXPECT_EQ(result->produced, PlainBytes().size());
  EXPECT_LE(collector.largest_piece, kPieceSize);
  EXPECT_EQ(HashOf(collector.bytes), HashOf(PlainBytes()));
}

TEST_P(CodecRoundTrip, ReportsATruncatedStreamAndKeepsWhatDecoded) {
  const auto& stream = Stream();
  ASSERT_FALSE(stream.empty());
  const ByteView cut = ByteView(stream).first(stream.size() / 2);
  Collector collector;
  auto result = Decode(GetParam().codec, cut, collector.AsOutput());
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->complete);
  EXPECT_EQ(result->stop, Stop::kTruncated) << result->problem;
  EXPECT_EQ(result->consumed, cut.size());
  EXPECT_NE(result->problem.find("truncated after"), std::string::npos) << result->problem;
  // What came out is the start of the original, and a good part of it.
  ASSERT_LE(collector.bytes.size(), PlainBytes().size());
  // An LZ4 block decodes only whole, and busybox fits in one (lz4 writes 4 MiB blocks).
  if (GetParam().codec != Codec::kLz4Legacy && GetParam().codec != Codec::kLz4Frame) {
    EXPECT_GT(collector.bytes.size(), PlainBytes().size() / 8);
  }
  EXPECT_TRUE(std::equal(collector.bytes.begin(), collector.bytes.end(), PlainBytes().begin()));
}

TEST_P(CodecRoundTrip, ReportsCorruptDataWithoutCrashing) {
  auto stream = Stream();
  ASSERT_FALSE(stream.empty());
  // Overwrite a run in the middle of the stream.
  for (std::size_t i = 0; i < 64; ++i) stream[stream.size() / 2 + i] ^= 0x5a;
  Collector collector;
  auto result = Decode(GetParam().codec, stream, collector.AsOutput());
  ASSERT_TRUE(result);
  if (GetParam().has_check) {
    EXPECT_FALSE(result->complete);
    EXPECT_EQ(result->stop, Stop::kCorrupt) << result->problem;
    EXPECT_NE(result->problem.find("corrupt data"), std::string::npos) << result->problem;
  } else {
    EXPECT_TRUE(!result->complete || HashOf(collector.bytes) != HashOf(PlainBytes()));
  }
  EXPECT_LE(result->consumed, stream.size());
}

TEST_P(CodecRoundTrip, StopsAtMaxOutput) {
  const auto& stream = Stream();
  ASSERT_FALSE(stream.empty());
  Collector collector;
  DecodeOptions options;
  options.max_output = 100'000;
  auto result = Decode(GetParam().codec, stream, collector.AsOutput(), options);
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->complete);
  EXPECT_EQ(result->stop, Stop::kOutputLimit);
  EXPECT_EQ(result->produced, 100'000u);
  ASSERT_EQ(collector.bytes.size(), 100'000u);
  EXPECT_EQ(std::memcmp(collector.bytes.data(), PlainBytes().data(), 100'000), 0);
  EXPECT_LT(result->consumed, stream.size());
}

TEST_P(CodecRoundTrip, ReturnsTheErrorOfTheOutputAndStillSaysHowFarItGot) {
  const auto& stream = Stream();
  ASSERT_FALSE(stream.empty());
  std::uint64_t seen = 0;
  const Output refuse_after_a_megabyte = [&](ByteView piece) -> Status {
    seen += piece.size();
    if (seen >= (1U << 20)) return Fail(ErrorCode::kLimitExceeded, "enough");
    return Ok();
  };
  auto result = Decode(GetParam().codec, stream, refuse_after_a_megabyte);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kLimitExceeded);

  seen = 0;
  const DecodeResult stopped = DecodeStream(GetParam().codec, stream, refuse_after_a_megabyte);
  EXPECT_EQ(stopped.stop, Stop::kOutputError);
  ASSERT_TRUE(stopped.output_error.has_value());
  EXPECT_EQ(stopped.output_error->message, "enough");
  EXPECT_GT(stopped.consumed, 0u);
  EXPECT_LT(stopped.consumed, stream.size());
}

TEST_P(CodecRoundTrip, LooksValidAcceptsTheStreamAndRejectsRandomBytes) {
  const auto& stream = Stream();
  ASSERT_FALSE(stream.empty());
  EXPECT_TRUE(LooksValid(GetParam().codec, stream, 4096));
  // Raw deflate has neither header nor check: random bits often form a short, complete stream.
  if (GetParam().codec == Codec::kDeflate) return;
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    EXPECT_FALSE(LooksValid(GetParam().codec, RandomBytes(64 * 1024, seed), 4096)) << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(RealTools, CodecRoundTrip,
                         ::testing::Values(ToolCase{Codec::kGzip, "gzip -c", true},
                                           ToolCase{Codec::kZlib, kPythonZlib, true},
                                           ToolCase{Codec::kDeflate, kPythonDeflate, false},
                                           ToolCase{Codec::kXz, "xz -c -3", true},
                                           ToolCase{Codec::kLzmaAlone, "lzma -c -3", false},
                                           ToolCase{Codec::kBzip2, "bzip2 -c", true},
                                           ToolCase{Codec::kZstd, "zstd -q -c", true},
                                           ToolCase{Codec::kLz4Frame, "lz4 -q -c", true},
                                           ToolCase{Codec::kLz4Legacy, "lz4 -q -l -c", false}),
                         CaseName);

TEST(Codec, DecodesLzmaAloneWithAKnownSizeAndNoEndMarkerAndStopsThere) {
  const auto stream = iotmark::testing::LzmaAloneWithKnownSize(PlainBytes());
  ASSERT_FALSE(stream.empty());
  auto input = stream;
  const auto garbage = RandomBytes(500, 3);
  input.insert(input.end(), garbage.begin(), garbage.end());
  Collector collector;
  auto result = Decode(Codec::kLzmaAlone, input, collector.AsOutput());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->complete) << result->problem;
  EXPECT_EQ(result->consumed, stream.size());
  EXPECT_EQ(HashOf(collector.bytes), HashOf(PlainBytes()));
  // Cut short, it is truncated, not complete.
  const auto cut = DecodeStream(Codec::kLzmaAlone, ByteView(stream).first(stream.size() - 1),
                                [](ByteView) { return Ok(); });
  EXPECT_EQ(cut.stop, Stop::kTruncated) << cut.problem;
}

TEST(Codec, DecodesLzmaAloneWithAKnownSizeAndAnEndMarker) {
  // Python writes an end marker; with the size patched into the header, both are present.
  const auto& stream = CompressedWith(
      "python3 -c 'import lzma,sys;d=sys.stdin.buffer.read();"
      "f=[{\"id\":lzma.FILTER_LZMA1,\"preset\":3}];"
      "c=lzma.compress(d,format=lzma.FORMAT_ALONE,filters=f);"
      "sys.stdout.buffer.write(c[:5]+len(d).to_bytes(8,\"little\")+c[13:])'");
  ASSERT_FALSE(stream.empty());
  auto input = stream;
  input.insert(input.end(), 500, 0xee);
  Collector collector;
  auto result = Decode(Codec::kLzmaAlone, input, collector.AsOutput());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->complete) << result->problem;
  EXPECT_EQ(result->consumed, stream.size());
  EXPECT_EQ(HashOf(collector.bytes), HashOf(PlainBytes()));
}

TEST(Codec, DecodesTheXzFromTheSharedSamplesUpToItsEnd) {
  const auto path = iotmark::testing::SharedSamplePath("xz/fact_test.xz");
  if (path.empty()) GTEST_SKIP() << "shared samples not present";
  const auto bytes = iotmark::testing::ReadFileBytes(path);
  Collector collector;
  auto result = Decode(Codec::kXz, bytes, collector.AsOutput());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->complete) << result->problem;
  EXPECT_EQ(result->consumed, bytes.size());
  EXPECT_GT(collector.bytes.size(), 0u);
}

TEST(Codec, RefusesAnLzmaDictionaryBeyondTheMemoryLimit) {
  // A crafted header asking for a 4 GiB dictionary must not make us allocate it.
  std::vector<std::uint8_t> input = {0x5d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  const auto noise = RandomBytes(100, 5);
  input.insert(input.end(), noise.begin(), noise.end());
  const auto result = DecodeStream(Codec::kLzmaAlone, input, [](ByteView) { return Ok(); });
  EXPECT_EQ(result.stop, Stop::kMemoryLimit) << result.problem;
  EXPECT_EQ(GapKindOf(result.stop), model::GapKind::kLimit);
}

TEST(Codec, RefusesAZstdWindowBeyondTheLimit) {
  // Through a pipe zstd does not know the size, so --long=31 keeps a 2 GiB window.
  const auto& stream = CompressedWith("head -c 100000 | zstd -q -c --long=31");
  ASSERT_FALSE(stream.empty());
  const auto result = DecodeStream(Codec::kZstd, stream, [](ByteView) { return Ok(); });
  EXPECT_EQ(result.stop, Stop::kMemoryLimit) << result.problem;
}

TEST(Codec, SkipsLeadingSkippableFramesOfZstdAndLz4) {
  const auto& zstd = CompressedWith("head -c 5000 | zstd -q -c");
  const auto& lz4 = CompressedWith("head -c 5000 | lz4 -q -c");
  ASSERT_FALSE(zstd.empty());
  ASSERT_FALSE(lz4.empty());
  for (const auto& [codec, frame] :
       {std::pair{Codec::kZstd, &zstd}, std::pair{Codec::kLz4Frame, &lz4}}) {
    std::vector<std::uint8_t> input = {0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'};
    input.insert(input.end(), frame->begin(), frame->end());
    input.insert(input.end(), frame->begin(), frame->end());  // a second frame is not consumed
    Collector collector;
    auto result = Decode(codec, input, collector.AsOutput());
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->complete) << result->problem;
    EXPECT_EQ(result->consumed, 11 + frame->size());
    EXPECT_EQ(collector.bytes.size(), 5000u);
  }
}

// The first block of an lzop file: its LZO1X data and its decompressed size.
struct LzopBlock {
  ByteView data;
  std::uint32_t plain_size = 0;
};

std::optional<LzopBlock> FirstLzopBlock(ByteView lzop) {
  // lzop's header: magic, versions, method, level, flags, mode, mtime, name, checksum.
  ByteReader reader(lzop, ByteReader::Order::kBig);
  reader.Skip(9);
  const auto version = reader.Read<std::uint16_t>();
  reader.Skip(2);
  if (version >= 0x0940) reader.Skip(2);
  reader.Skip(1);
  if (version >= 0x0940) reader.Skip(1);
  const auto flags = reader.Read<std::uint32_t>();
  if ((flags & 0x800) != 0) reader.Skip(4);
  reader.Skip(8);
  if (version >= 0x0940) reader.Skip(4);
  const auto name_length = reader.Read<std::uint8_t>();
  reader.Skip(name_length + 4u);
  const auto plain_size = reader.Read<std::uint32_t>();
  const auto packed_size = reader.Read<std::uint32_t>();
  if ((flags & 0x001) != 0) reader.Skip(4);  // adler32 of the plain data
  if ((flags & 0x100) != 0) reader.Skip(4);  // crc32 of the plain data
  if ((flags & 0x002) != 0 && packed_size < plain_size) reader.Skip(4);
  if ((flags & 0x200) != 0 && packed_size < plain_size) reader.Skip(4);
  const ByteView block = reader.ReadBytes(packed_size);
  if (!reader.ok() || packed_size >= plain_size) return std::nullopt;
  return LzopBlock{block, plain_size};
}

TEST(Codec, DecodesAnLzo1xBlockFromLzop) {
  const auto& lzop = CompressedWith("head -c 200000 | lzop -c");
  ASSERT_GT(lzop.size(), 64u);
  const auto lzop_block = FirstLzopBlock(lzop);
  ASSERT_TRUE(lzop_block.has_value());
  const ByteView block = lzop_block->data;
  const std::uint32_t plain_size = lzop_block->plain_size;
  const std::size_t packed_size = block.size();

  Collector collector;
  DecodeOptions options;
  options.expected_output = plain_size;
  auto result = Decode(Codec::kLzo1x, block, collector.AsOutput(), options);
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->complete) << result->problem;
  EXPECT_EQ(result->consumed, packed_size);
  ASSERT_EQ(collector.bytes.size(), plain_size);
  EXPECT_EQ(std::memcmp(collector.bytes.data(), PlainBytes().data(), plain_size), 0);

  const auto truncated = DecodeStream(
      Codec::kLzo1x, block.first(block.size() / 2), [](ByteView) { return Ok(); }, options);
  EXPECT_EQ(truncated.stop, Stop::kTruncated);
  options.expected_output = 0;
  EXPECT_EQ(DecodeStream(
                Codec::kLzo1x, block, [](ByteView) { return Ok(); }, options)
                .stop,
            Stop::kUnsupported);
  options.expected_output = kMaxLzoBlock + 1;
  EXPECT_EQ(DecodeStream(
                Codec::kLzo1x, block, [](ByteView) { return Ok(); }, options)
                .stop,
            Stop::kMemoryLimit);
}

TEST(Codec, EndsAnLz4LegacyStreamAtASizeFieldThatIsNoBlock) {
  // Two full 8 MiB blocks, then the size kernels append: a field beyond the block bound ends it.
  const auto& stream = CompressedWith("head -c 16777216 /dev/zero | lz4 -q -l -c", "/dev/null");
  ASSERT_FALSE(stream.empty());
  auto input = stream;
  for (std::uint8_t byte : {0x00, 0x00, 0x00, 0x01}) input.push_back(byte);  // 16 MiB
  Collector collector;
  auto result = Decode(Codec::kLz4Legacy, input, collector.AsOutput());
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->complete) << result->problem;
  EXPECT_EQ(result->consumed, stream.size());
  EXPECT_EQ(collector.bytes.size(), 16u << 20);

  // A limit inside a block, larger than one piece, is met exactly.
  DecodeOptions options;
  options.max_output = 5'000'000;
  const auto limited = DecodeStream(
      Codec::kLz4Legacy, input, [](ByteView) { return Ok(); }, options);
  EXPECT_EQ(limited.stop, Stop::kOutputLimit);
  EXPECT_EQ(limited.produced, 5'000'000u);
}

TEST(Codec, DecodesQuickly) {
  // The codec bounds the whole unpacker: a 2 MB binary must not take long even in Debug.
  const auto& stream = CompressedWith("zstd -q -c");
  ASSERT_FALSE(stream.empty());
  std::uint64_t total = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto result = Decode(Codec::kZstd, stream, [&](ByteView piece) {
      total += piece.size();
      return Ok();
    });
    ASSERT_TRUE(result && result->complete);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(total, 20 * PlainBytes().size());
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

}  // namespace
}  // namespace iotmark::unpack::codec
