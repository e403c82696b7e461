#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeUimageFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using testing::ProbeAndExtract;
using testing::ReadFileBytes;
using testing::RunCommand;
using testing::ScratchDir;

constexpr char kBusybox[] = "/bin/busybox";

Bytes Pattern(std::size_t size, std::uint32_t seed) {
  Bytes out(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return out;
}

Bytes Embed(const Bytes& inner, std::size_t before, std::size_t after) {
  Bytes out = Pattern(before, 11);
  out.insert(out.end(), inner.begin(), inner.end());
  const Bytes tail = Pattern(after, 12);
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

void PutBe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

// Recomputes the header CRC after a test changed a header field.
void FixHeaderCrc(Bytes& image, std::size_t at = 0) {
  PutBe32(image, at + 4, 0);
  PutBe32(image, at + 4, static_cast<std::uint32_t>(crc32_z(0, image.data() + at, 64)));
}

// A uImage written by hand, for layouts mkimage refuses to produce.
Bytes BuildUimage(const Bytes& data, std::uint8_t type, std::uint8_t comp,
                  const std::string& name = "crafted") {
  Bytes out(64, 0);
  PutBe32(out, 0, 0x27051956);
  PutBe32(out, 8, 1700000000);
  PutBe32(out, 12, static_cast<std::uint32_t>(data.size()));
  PutBe32(out, 24, static_cast<std::uint32_t>(crc32_z(0, data.data(), data.size())));
  out[28] = 5;  // linux
  out[29] = 2;  // arm
  out[30] = type;
  out[31] = comp;
  std::copy(name.begin(), name.begin() + std::min<std::size_t>(name.size(), 32), out.begin() + 32);
  out.insert(out.end(), data.begin(), data.end());
  FixHeaderCrc(out);
  return out;
}

bool HasGap(const testing::Extraction& result, model::GapKind kind) {
  for (const auto& gap : result.gaps) {
    if (gap.kind == kind) return true;
  }
  return false;
}

class UimageFormatTest : public ::testing::Test {
 protected:
  fs::path Path(const std::string& name) const { return scratch_.path() / name; }

  // Runs mkimage on `payload` (a path) and returns the image.
  Bytes Mkimage(const std::string& type, const std::string& comp, const std::string& payload,
                const std::string& name = "busybox image") {
    const fs::path out = Path("image-" + comp + ".ub");
    const std::string command = "mkimage -A mips -O linux -T " + type + " -C " + comp +
                                " -a 0x80000000 -e 0x80000400 -n '" + name + "' -d " + payload +
                                " " + out.string() + " > /dev/null";
    EXPECT_EQ(RunCommand(command), 0) << command;
    return ReadFileBytes(out);
  }

  std::unique_ptr<const Format> format_ = formats::MakeUimageFormat();
  ScratchDir scratch_;
  ScratchDir out_;
};

struct CompressionCase {
  const char* mkimage_name;
  const char* compress_command;  // reads the file named by $IN, writes stdout
};

class UimageCompressionTest : public UimageFormatTest,
                              public ::testing::WithParamInterface<CompressionCase> {};

TEST_P(UimageCompressionTest, UnwrapsBusyboxInsideOtherBytesToTheOriginalBytes) {
  const CompressionCase& param = GetParam();
  const std::string payload = Path("payload").string();
  const std::string command =
      std::string("IN=") + kBusybox + "; " + param.compress_command + " > " + payload;
  ASSERT_EQ(RunCommand(command), 0) << command;
  const Bytes image = Mkimage("kernel", param.mkimage_name, payload);
  ASSERT_GT(image.size(), 64u);
  const Bytes blob = Embed(image, 1000, 500);

  const auto result = ProbeAndExtract(*format_, blob, 1000, out_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 1000u);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("name"), "busybox image");
  EXPECT_EQ(meta.at("os"), "linux");
  EXPECT_EQ(meta.at("arch"), "mips");
  EXPECT_EQ(meta.at("type"), "kernel");
  EXPECT_EQ(meta.at("compression"), param.mkimage_name);
  EXPECT_EQ(meta.at("load_address"), "0x80000000");
  EXPECT_EQ(meta.at("entry_address"), "0x80000400");
  EXPECT_EQ(meta.at("data_crc"), "ok");
  EXPECT_FALSE(meta.at("timestamp").empty());

  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty()) << result.gaps[0].reason;
  ASSERT_EQ(result.entries.size(), 1u);
  const auto* entry = result.Find("busybox_image");
  ASSERT_NE(entry, nullptr);
  const Bytes original = ReadFileBytes(kBusybox);
  EXPECT_EQ(entry->size, original.size());
  EXPECT_EQ(entry->sha256, Sha256::Hex(original));
  EXPECT_EQ(entry->type, "elf");
}

INSTANTIATE_TEST_SUITE_P(EveryCompression, UimageCompressionTest,
                         ::testing::Values(CompressionCase{"none", "cat \"$IN\""},
                                           CompressionCase{"gzip", "gzip -9 -c \"$IN\""},
                                           CompressionCase{"bzip2", "bzip2 -c \"$IN\""},
                                           CompressionCase{"lzma", "lzma -c \"$IN\""},
                                           CompressionCase{"lzo", "lzop -c \"$IN\""},
                                           CompressionCase{"lz4", "lz4 -c \"$IN\""},
                                           CompressionCase{"zstd", "zstd -q -c \"$IN\""}),
                         [](const auto& test_info) {
                           return std::string(test_info.param.mkimage_name);
                         });

TEST_F(UimageFormatTest, SplitsAMultiFileImageAndHonoursThePadding) {
  const Bytes small = Pattern(5, 1);  // not a multiple of 4: the next image is padded
  testing::WriteFileBytes(Path("small"), small);
  const Bytes image = Mkimage(
      "multi", "none", Path("small").string() + ":" + kBusybox + ":/usr/sbin/dropbear", "multi");
  const auto result = ProbeAndExtract(*format_, image, 0, out_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_EQ(result.chunk->meta.at("type"), "multi");
  EXPECT_EQ(result.chunk->meta.at("images"), "3");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 3u);
  EXPECT_EQ(result.Find("multi-0")->sha256, Sha256::Hex(small));
  EXPECT_EQ(result.Find("multi-1")->sha256, Sha256::Hex(ReadFileBytes(kBusybox)));
  EXPECT_EQ(result.Find("multi-2")->sha256, Sha256::Hex(ReadFileBytes("/usr/sbin/dropbear")));
}

TEST_F(UimageFormatTest, DecompressesTheKernelOfAMultiFileImageAndKeepsAStoredRamdisk) {
  ASSERT_EQ(RunCommand(std::string("gzip -c ") + kBusybox + " > " + Path("kernel.gz").string()), 0);
  const Bytes ramdisk = Pattern(1001, 2);
  testing::WriteFileBytes(Path("ramdisk"), ramdisk);
  const Bytes image =
      Mkimage("multi", "gzip", Path("kernel.gz").string() + ":" + Path("ramdisk").string(), "k");
  const auto result = ProbeAndExtract(*format_, image, 0, out_);
  ASSERT_TRUE(result.chunk);
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("k-0")->sha256, Sha256::Hex(ReadFileBytes(kBusybox)));
  EXPECT_EQ(result.Find("k-1")->sha256, Sha256::Hex(ramdisk));
}

TEST_F(UimageFormatTest, ReadsAScriptImageThroughItsSizeTable) {
  const std::string script = "setenv bootargs console=ttyS0\nbootm 0x80000000\n";
  testing::WriteFileBytes(Path("boot.txt"), AsBytes(script));
  const Bytes image = Mkimage("script", "none", Path("boot.txt").string(), "boot script");
  const auto result = ProbeAndExtract(*format_, image, 0, out_);
  ASSERT_TRUE(result.chunk);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].path, "boot_script-0");
  const Bytes written = result.Read("boot_script-0");
  EXPECT_EQ(std::string(written.begin(), written.end()), script);
}

TEST_F(UimageFormatTest, StopsAtTheStatedSizeOfTheSampleDespiteTrailingData) {
  const auto path = testing::SharedSamplePath("uimage/fact_uboot.image_with_header");
  if (path.empty()) GTEST_SKIP() << "shared sample uimage/fact_uboot.image_with_header is absent";
  const Bytes image = ReadFileBytes(path);
  const auto result = ProbeAndExtract(*format_, image, 0, out_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, 64u + 32753u);
  EXPECT_LT(result.chunk->length, image.size());
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("os"), "linux");
  EXPECT_EQ(meta.at("arch"), "mips");
  EXPECT_EQ(meta.at("type"), "firmware");  // U-Boot itself, as a firmware image
  EXPECT_EQ(meta.at("compression"), "lzma");
  EXPECT_EQ(meta.at("name"), "u-boot image");
  EXPECT_EQ(meta.at("data_crc"), "ok");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.gaps.empty()) << result.gaps[0].reason;
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].path, "u-boot_image");
  EXPECT_EQ(result.entries[0].size, 93576u);  // as Python's lzma module decodes it
}

TEST_F(UimageFormatTest, RejectsAHeaderWhoseCrcDoesNotMatch) {
  const Bytes good = BuildUimage(Pattern(100, 3), 2, 0);
  ASSERT_TRUE(format_->Probe(good, 0));
  for (const std::size_t at : {std::size_t{4}, std::size_t{12}, std::size_t{31}, std::size_t{40}}) {
    Bytes bad = good;
    bad[at] ^= 0x01;
    EXPECT_FALSE(format_->Probe(bad, 0)) << at;
  }
  const Bytes header_only(good.begin(), good.begin() + 63);
  EXPECT_FALSE(format_->Probe(header_only, 0));
}

TEST_F(UimageFormatTest, ReportsADataCrcMismatchAndStillExtracts) {
  Bytes image = Mkimage("kernel", "none", kBusybox);
  image[64 + 1000] ^= 0xff;
  const auto result = ProbeAndExtract(*format_, image, 0, out_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("data_crc"), "mismatch");
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, model::GapKind::kCorrupt);
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].size, image.size() - 64);
}

TEST_F(UimageFormatTest, KeepsWhatATruncatedImageDecodesToAndTheRawPayload) {
  ASSERT_EQ(RunCommand(std::string("gzip -c ") + kBusybox + " > " + Path("bb.gz").string()), 0);
  const Bytes full = Mkimage("kernel", "gzip", Path("bb.gz").string(), "cut");
  const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(full.size() / 2));
  const auto result = ProbeAndExtract(*format_, cut, 0, out_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, cut.size());
  EXPECT_EQ(result.chunk->meta.at("data_crc"), "unchecked");
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, model::GapKind::kTruncated);
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(HasGap(result, model::GapKind::kTruncated));
  const auto* decoded = result.Find("cut");
  ASSERT_NE(decoded, nullptr);
  EXPECT_GT(decoded->size, 0u);
  const Bytes original = ReadFileBytes(kBusybox);
  const Bytes prefix = result.Read("cut");
  ASSERT_LE(prefix.size(), original.size());
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), original.begin()));
  const auto* raw = result.Find("cut.raw");
  ASSERT_NE(raw, nullptr);
  EXPECT_EQ(raw->size, cut.size() - 64);
}

TEST_F(UimageFormatTest, KeepsTheRawPayloadWhenItDoesNotDecode) {
  const Bytes garbage = Pattern(5000, 4);
  const Bytes image = BuildUimage(garbage, 2, 1, "bad gzip");
  const auto result = ProbeAndExtract(*format_, image, 0, out_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("data_crc"), "ok");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(HasGap(result, model::GapKind::kCorrupt));
  EXPECT_EQ(result.Find("bad_gzip"), nullptr);
  const auto* raw = result.Find("bad_gzip.raw");
  ASSERT_NE(raw, nullptr);
  EXPECT_EQ(raw->sha256, Sha256::Hex(garbage));
}

TEST_F(UimageFormatTest, KeepsAPayloadWithAnUnknownCompressionAsItIs) {
  const Bytes data = Pattern(300, 5);
  const Bytes image = BuildUimage(data, 2, 9, "future");
  const auto result = ProbeAndExtract(*format_, image, 0, out_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("compression"), "unknown(9)");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(HasGap(result, model::GapKind::kUnsupported));
  ASSERT_NE(result.Find("future.raw"), nullptr);
  EXPECT_EQ(result.Find("future.raw")->sha256, Sha256::Hex(data));
}

TEST_F(UimageFormatTest, AcceptsUnknownEnumValuesAndSaysSo) {
  Bytes image = BuildUimage(Pattern(10, 6), 2, 0);
  image[28] = 200;
  image[29] = 201;
  image[30] = 202;
  FixHeaderCrc(image);
  const auto chunk = format_->Probe(image, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.at("os"), "unknown(200)");
  EXPECT_EQ(chunk->meta.at("arch"), "unknown(201)");
  EXPECT_EQ(chunk->meta.at("type"), "unknown(202)");
}

TEST_F(UimageFormatTest, TurnsHostileNamesIntoPlainFileNames) {
  const Bytes data = Pattern(10, 7);
  struct Case {
    std::string name;
    std::string file;
  };
  for (const Case& c : {Case{"../../etc/passwd", "etc_passwd"}, Case{"   ", "image"},
                        Case{"..", "image"}, Case{"/abs", "abs"},
                        Case{std::string("a\x01\xff"
                                         "b",
                                         4),
                             "a__b"}}) {
    ScratchDir out;
    const auto result = ProbeAndExtract(*format_, BuildUimage(data, 2, 0, c.name), 0, out);
    ASSERT_TRUE(result.chunk) << c.name;
    ASSERT_EQ(result.entries.size(), 1u) << c.name;
    EXPECT_EQ(result.entries[0].path, c.file);
    EXPECT_TRUE(result.gaps.empty()) << c.name;
  }
}

TEST_F(UimageFormatTest, BoundsAMultiFileTableThatNeverEnds) {
  Bytes table(4 * 100);
  for (std::size_t i = 0; i < 100; ++i) PutBe32(table, 4 * i, 1);
  const auto result = ProbeAndExtract(*format_, BuildUimage(table, 4, 0, "endless"), 0, out_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.count("images"), 0u);
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(HasGap(result, model::GapKind::kCorrupt));
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].path, "endless.raw");
}

TEST_F(UimageFormatTest, ClipsMultiFileImagesThatClaimMoreThanThereIs) {
  Bytes data(12 + 100);
  PutBe32(data, 0, 60);
  PutBe32(data, 4, 0xfffffff0);  // far beyond the payload
  PutBe32(data, 8, 0);
  const auto result = ProbeAndExtract(*format_, BuildUimage(data, 4, 0, "liar"), 0, out_);
  ASSERT_TRUE(result.chunk);
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(HasGap(result, model::GapKind::kCorrupt));
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("liar-0")->size, 60u);
  EXPECT_EQ(result.Find("liar-1")->size, 40u);
}

TEST_F(UimageFormatTest, ReadsTheOkliVariant) {
  Bytes image = BuildUimage(Pattern(50, 8), 2, 0, "okli");
  PutBe32(image, 0, 0x4f4b4c49);
  FixHeaderCrc(image);
  const auto chunk = format_->Probe(image, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.at("magic"), "OKLI");
  EXPECT_EQ(chunk->length, image.size());
}

TEST_F(UimageFormatTest, SurvivesEveryTruncationOfSmallImages) {
  ASSERT_EQ(RunCommand("head -c 3000 " + std::string(kBusybox) + " | lzop -c > " +
                       Path("small.lzo").string()),
            0);
  const Bytes lzo = Mkimage("kernel", "lzo", Path("small.lzo").string(), "small");
  Bytes table(12 + 64);
  PutBe32(table, 0, 30);
  PutBe32(table, 4, 34);
  const Bytes multi = BuildUimage(table, 4, 1, "multi");
  for (const Bytes* full : {&lzo, &multi}) {
    for (std::size_t size = 60; size <= full->size(); size += 7) {
      const Bytes cut(full->begin(), full->begin() + static_cast<std::ptrdiff_t>(size));
      ScratchDir out;
      const auto result = ProbeAndExtract(*format_, cut, 0, out);
      if (size < 64) {
        EXPECT_FALSE(result.chunk);
        continue;
      }
      ASSERT_TRUE(result.chunk) << size;
      EXPECT_TRUE(result.status) << size;
    }
  }
}

TEST_F(UimageFormatTest, SurvivesRandomDamageBehindAValidHeaderCrc) {
  ASSERT_EQ(RunCommand("head -c 4000 " + std::string(kBusybox) + " | lzop -c > " +
                       Path("s.lzo").string() + " && head -c 4000 " + kBusybox + " | gzip -c > " +
                       Path("s.gz").string()),
            0);
  Bytes table(12 + 64);
  PutBe32(table, 0, 30);
  PutBe32(table, 4, 34);
  const std::vector<Bytes> seeds = {Mkimage("kernel", "lzo", Path("s.lzo").string(), "a"),
                                    Mkimage("kernel", "gzip", Path("s.gz").string(), "b"),
                                    BuildUimage(table, 4, 0, "multi")};
  Limits limits;
  limits.max_file_bytes = 1 << 20;
  std::uint32_t x = 12345;
  const auto next = [&x] {
    x = x * 1103515245u + 12345u;
    return x >> 8;
  };
  for (int round = 0; round < 300; ++round) {
    Bytes image = seeds[round % seeds.size()];
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int i = 0; i < flips; ++i) {
      // Half the damage lands in the header fields and the lzop/table area, where it matters.
      const std::size_t span =
          next() % 2 == 0 ? std::min<std::size_t>(image.size(), 160) : image.size();
      image[next() % span] ^= static_cast<std::uint8_t>(1 + next() % 255);
    }
    PutBe32(image, 0, 0x27051956);
    FixHeaderCrc(image);
    ScratchDir out;
    const auto result = ProbeAndExtract(*format_, image, 0, out, limits);
    ASSERT_TRUE(result.chunk) << round;
    EXPECT_LE(result.chunk->length, image.size());
  }
}

}  // namespace
}  // namespace iotmark::unpack
