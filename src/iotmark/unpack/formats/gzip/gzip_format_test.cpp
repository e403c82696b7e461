#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>

#include "iotmark/unpack/codec/testing/compressed_input.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"
#include "iotmark/unpack/unpacker.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeGzipFormat();

namespace {

namespace fs = std::filesystem;
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

// gzip of busybox with its name in the header, as `gzip file` writes it.
const std::vector<std::uint8_t>& NamedGzip() {
  return CompressedWith(
      "cd \"$(mktemp -d)\" && cat > busybox && gzip -9 busybox && cat busybox.gz");
}

TEST(GzipFormat, FindsAMemberInsideRandomBytesAndStopsAtItsEnd) {
  const auto format = MakeGzipFormat();
  const auto& gz = NamedGzip();
  ASSERT_FALSE(gz.empty());
  const auto blob = Embed(gz, 1237, 4093);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 1237, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->offset, 1237u);
  EXPECT_TRUE(result.chunk->length_from_extract);
  EXPECT_EQ(result.chunk->meta.at("original_name"), "busybox");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_EQ(result.consumed, gz.size());
  EXPECT_TRUE(result.gaps.empty()) << DescribeGaps(result);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->path, "busybox");
  EXPECT_EQ(files[0]->size, PlainBytes().size());
  EXPECT_EQ(files[0]->sha256, HashOf(PlainBytes()));
  EXPECT_EQ(result.meta.at("uncompressed_size"), std::to_string(PlainBytes().size()));
}

TEST(GzipFormat, NamesAnAnonymousMemberAfterTheBlob) {
  const auto format = MakeGzipFormat();
  const auto& gz = CompressedWith("gzip -n -c");
  ASSERT_FALSE(gz.empty());
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, gz, 0, scratch, {}, "rootfs.tgz");
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.chunk->meta.count("original_name"), 0u);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->path, "rootfs.tar");
  EXPECT_EQ(files[0]->sha256, HashOf(PlainBytes()));
}

TEST(GzipFormat, ReducesAStoredNameToABasename) {
  const auto format = MakeGzipFormat();
  auto gz = CompressedWith("head -c 1000 | gzip -n -c");
  ASSERT_GT(gz.size(), 10u);
  gz[3] |= 0x08;  // FNAME
  const std::string name = "../../etc/\x01passwd";
  gz.insert(gz.begin() + 10, name.begin(), name.end());
  gz.insert(gz.begin() + 10 + static_cast<std::ptrdiff_t>(name.size()), 0);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, gz, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]->path, "passwd");
  EXPECT_EQ(files[0]->size, 1000u);
  EXPECT_FALSE(fs::exists(scratch.path() / "etc"));
}

TEST(GzipFormat, EachMemberIsItsOwnChunk) {
  const auto format = MakeGzipFormat();
  const auto& first = CompressedWith("head -c 5000 | gzip -n -c");
  const auto& second = CompressedWith("tail -c 7000 | gzip -n -c");
  std::vector<std::uint8_t> blob = first;
  blob.insert(blob.end(), second.begin(), second.end());
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  EXPECT_EQ(result.consumed, first.size());
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->size, 5000u);
  ScratchDir scratch2;
  const auto next = ProbeAndExtract(*format, blob, first.size(), scratch2);
  ASSERT_TRUE(next.chunk.has_value());
  EXPECT_EQ(next.consumed, second.size());
  EXPECT_EQ(Files(next)[0]->size, 7000u);
}

TEST(GzipFormat, KeepsWhatATruncatedMemberYieldsAndSaysSo) {
  const auto format = MakeGzipFormat();
  const auto& gz = CompressedWith("gzip -n -c");
  ASSERT_FALSE(gz.empty());
  const auto blob = Embed(ByteView(gz).first(gz.size() / 2), 301, 0);
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, blob, 301, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.consumed, gz.size() / 2);
  ASSERT_EQ(CountGaps(result, GapKind::kTruncated), 1u) << DescribeGaps(result);
  EXPECT_NE(result.gaps[0].reason.find("truncated after"), std::string::npos);
  const auto files = Files(result);
  ASSERT_EQ(files.size(), 1u);
  const auto bytes = result.Read(files[0]->path);
  ASSERT_GT(bytes.size(), PlainBytes().size() / 4);
  EXPECT_EQ(std::memcmp(bytes.data(), PlainBytes().data(), bytes.size()), 0);
}

TEST(GzipFormat, ReportsAWrongCrcAsCorrupt) {
  const auto format = MakeGzipFormat();
  auto gz = CompressedWith("gzip -n -c");
  ASSERT_FALSE(gz.empty());
  gz[gz.size() - 6] ^= 0xff;  // inside the CRC-32 of the trailer
  ScratchDir scratch;
  const auto result = ProbeAndExtract(*format, gz, 0, scratch);
  ASSERT_TRUE(result.chunk.has_value());
  ASSERT_EQ(CountGaps(result, GapKind::kCorrupt), 1u) << DescribeGaps(result);
  EXPECT_NE(result.gaps[0].reason.find("corrupt data"), std::string::npos);
  ASSERT_EQ(Files(result).size(), 1u);
  EXPECT_EQ(Files(result)[0]->size, PlainBytes().size());  // the content itself was fine
}

TEST(GzipFormat, RejectsAMagicFollowedByRandomBytes) {
  const auto format = MakeGzipFormat();
  int accepted = 0;
  for (std::uint32_t seed = 0; seed < 200; ++seed) {
    auto blob = RandomBytes(8192, seed);
    blob[100] = 0x1f;
    blob[101] = 0x8b;
    blob[102] = 0x08;
    blob[103] = 0x00;  // no flags: the header itself is fine
    blob[109] = 0x03;  // unix
    accepted += format->Probe(blob, 100).has_value() ? 1 : 0;
  }
  EXPECT_EQ(accepted, 0);
  // Reserved flag bits are refused outright.
  auto gz = CompressedWith("gzip -n -c");
  gz[3] = 0x20;
  EXPECT_FALSE(format->Probe(gz, 0).has_value());
}

TEST(GzipFormat, ChecksTheHeaderCrcWhenThereIsOne) {
  const auto format = MakeGzipFormat();
  auto gz = CompressedWith("head -c 3000 | gzip -n -c");
  ASSERT_GT(gz.size(), 10u);
  gz[3] |= 0x02;  // FHCRC
  const auto crc = crc32(0L, gz.data(), 10);
  gz.insert(gz.begin() + 10, {static_cast<std::uint8_t>(crc), static_cast<std::uint8_t>(crc >> 8)});
  ScratchDir scratch;
  const auto good = ProbeAndExtract(*format, gz, 0, scratch);
  ASSERT_TRUE(good.chunk.has_value());
  EXPECT_TRUE(good.gaps.empty()) << DescribeGaps(good);
  EXPECT_EQ(good.consumed, gz.size());
  gz[10] ^= 1;
  EXPECT_FALSE(format->Probe(gz, 0).has_value());
}

TEST(GzipFormat, ExtractsTheSharedSamples) {
  const auto format = MakeGzipFormat();
  for (const char* name : {"gzip/binwalk_gzip.bin", "gzip/fact_test.gz"}) {
    const auto path = testing::SharedSamplePath(name);
    if (path.empty()) GTEST_SKIP() << "shared samples not present";
    const auto bytes = testing::ReadFileBytes(path);
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format, bytes, 0, scratch);
    ASSERT_TRUE(result.chunk.has_value()) << name;
    EXPECT_TRUE(result.gaps.empty()) << name << DescribeGaps(result);
    EXPECT_EQ(result.consumed, bytes.size()) << name;
    ASSERT_EQ(Files(result).size(), 1u) << name;
    EXPECT_EQ(Files(result)[0]->path, result.chunk->meta.at("original_name")) << name;
  }
}

// A gzip of a gzip of 512 MiB of zeros: about 1 KB that would expand to half a gigabyte.
std::vector<std::uint8_t> DoubleGzipBomb() {
  const auto deflate_all = [](const auto& feed, int strategy) {
    z_stream zs{};
    deflateInit2(&zs, 9, Z_DEFLATED, 31, 9, strategy);
    std::vector<std::uint8_t> out;
    std::vector<std::uint8_t> buffer(1 << 20);
    const auto pump = [&](int flush) {
      do {
        zs.next_out = buffer.data();
        zs.avail_out = static_cast<uInt>(buffer.size());
        deflate(&zs, flush);
        out.insert(out.end(), buffer.data(), buffer.data() + (buffer.size() - zs.avail_out));
      } while (zs.avail_out == 0);
    };
    feed([&](ByteView bytes) {
      zs.next_in = const_cast<Bytef*>(bytes.data());
      zs.avail_in = static_cast<uInt>(bytes.size());
      pump(Z_NO_FLUSH);
    });
    pump(Z_FINISH);
    deflateEnd(&zs);
    return out;
  };
  const std::vector<std::uint8_t> zeros(std::size_t{1} << 20, 0);
  const auto inner = deflate_all(
      [&](const auto& write) {
        for (int i = 0; i < 512; ++i) write(zeros);
      },
      Z_RLE);
  return deflate_all([&](const auto& write) { write(inner); }, Z_DEFAULT_STRATEGY);
}

TEST(GzipFormat, StopsADoubleGzipBombAtTheRatioLimitQuickly) {
  const auto start = std::chrono::steady_clock::now();
  const auto bomb = DoubleGzipBomb();
  ASSERT_LT(bomb.size(), 4096u);
  ScratchDir scratch;
  const auto image = scratch.path() / "bomb.gz";
  testing::WriteFileBytes(image, bomb);

  FormatList formats;
  formats.push_back(MakeGzipFormat());
  UnpackOptions options;
  options.limits.ratio_floor_bytes = std::uint64_t{4} << 20;
  options.limits.max_ratio = 20;
  auto unpacker = Unpacker::Create(options, &formats);
  ASSERT_TRUE(unpacker);
  auto report = unpacker->Run(image, scratch.path() / "out");
  ASSERT_TRUE(report) << report.error().ToString();
  bool limit_gap = false;
  for (const auto& gap : report->gaps) {
    limit_gap = limit_gap || (gap.kind == GapKind::kLimit && gap.format == "gzip" &&
                              gap.reason.find("ratio") != std::string::npos);
  }
  EXPECT_TRUE(limit_gap);
  // The outer layer (half a megabyte) came out; the inner one stopped near 20:1.
  EXPECT_LT(report->stats.bytes_written, std::uint64_t{32} << 20);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

}  // namespace
}  // namespace iotmark::unpack::formats
