#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeArcadyanFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using model::GapKind;
using testing::ProbeAndExtract;
using testing::RunCommand;
using testing::ScratchDir;

Bytes Pattern(std::size_t size, std::uint8_t seed) {
  Bytes out(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return out;
}

void PutLe32(Bytes& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// Scrambles an image the way Arcadyan's tools do (test-only): the 32-byte block at 4 is
// nibble- and pair-swapped, then swapped with the block at 0x68.
void Scramble(Bytes& image) {
  for (std::size_t i = 4; i < 36; i += 2) {
    const auto swap = [](std::uint8_t b) { return static_cast<std::uint8_t>((b << 4) | (b >> 4)); };
    const std::uint8_t a = swap(image[i]);
    image[i] = swap(image[i + 1]);
    image[i + 1] = a;
  }
  std::swap_ranges(image.begin() + 4, image.begin() + 36, image.begin() + 0x68);
}

// Signature word, scrambled LZMA stream, optional filler and trailer (length, 0x12345678, CRC).
Bytes BuildImage(const Bytes& lzma, bool trailer, std::size_t filler = 0, bool good_crc = true) {
  Bytes image;
  PutLe32(image, 0x20110530);
  image.insert(image.end(), lzma.begin(), lzma.end());
  Scramble(image);
  if (!trailer) return image;
  const auto length = static_cast<std::uint32_t>(image.size());
  const auto crc = static_cast<std::uint32_t>(crc32_z(0, image.data(), image.size()));
  const Bytes fill = Pattern(filler, 3);
  image.insert(image.end(), fill.begin(), fill.end());
  PutLe32(image, length);
  PutLe32(image, 0x12345678);
  PutLe32(image, good_crc ? crc : crc ^ 1);
  return image;
}

Bytes Lzma(const ScratchDir& scratch, const std::string& source) {
  const auto path = scratch.path() / "payload.lzma";
  EXPECT_EQ(RunCommand("xz --format=lzma -c '" + source + "' > '" + path.string() + "'"), 0);
  return testing::ReadFileBytes(path);
}

class ArcadyanFormatTest : public ::testing::Test {
 protected:
  // busybox compressed once for the whole suite, by xz's default preset (8 MiB dictionary).
  static const Bytes& BusyboxLzma() {
    static const Bytes lzma = [] {
      const ScratchDir scratch;
      return Lzma(scratch, "/bin/busybox");
    }();
    return lzma;
  }

  std::unique_ptr<const Format> format_ = formats::MakeArcadyanFormat();
  ScratchDir scratch_;
};

TEST_F(ArcadyanFormatTest, DeobfuscatesBinwalksSampleSoItsLzmaDecodes) {
  const auto path = testing::SharedSamplePath("arcadyan/binwalk_arcadyan.bin");
  if (path.empty()) GTEST_SKIP() << "shared sample arcadyan/binwalk_arcadyan.bin is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_FALSE(result.chunk->length_from_extract);
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.at("trailer_crc"), "ok");
  EXPECT_EQ(result.chunk->meta.at("signature"), "0x20110530");
  EXPECT_EQ(result.chunk->meta.at("signed_length"), "733166");
  EXPECT_EQ(result.chunk->meta.at("stated_size"), "2813252");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].path, "payload.lzma");
  EXPECT_EQ(result.entries[0].size, 733162u);
  const auto out = scratch_.path() / "decoded";
  ASSERT_EQ(RunCommand("xz --format=lzma -dc '" + (result.root / "payload.lzma").string() +
                       "' > '" + out.string() + "'"),
            0);
  EXPECT_EQ(std::filesystem::file_size(out), 2813252u);
}

TEST_F(ArcadyanFormatTest, RestoresACraftedImageWithTrailerAtAnOffset) {
  const Bytes& lzma = BusyboxLzma();
  ASSERT_GT(lzma.size(), 0x100u);
  const Bytes image = BuildImage(lzma, true, 300);
  Bytes blob = Pattern(1000, 1);
  blob.insert(blob.end(), image.begin(), image.end());
  blob.resize(blob.size() + 2048, 0xff);
  const auto result = ProbeAndExtract(*format_, blob, 1000, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 1000u);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_EQ(result.chunk->meta.at("trailer_crc"), "ok");
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].sha256, Sha256::Hex(lzma));
}

TEST_F(ArcadyanFormatTest, FindsTheEndByDecodingWhenThereIsNoTrailer) {
  const Bytes& lzma = BusyboxLzma();
  const Bytes image = BuildImage(lzma, false);
  Bytes blob = image;
  blob.resize(blob.size() + 5000, 0x00);
  const auto result = ProbeAndExtract(*format_, blob, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_TRUE(result.chunk->length_from_extract);
  ASSERT_TRUE(result.status);
  ASSERT_TRUE(result.consumed);
  EXPECT_EQ(*result.consumed, image.size());
  EXPECT_EQ(result.meta.at("trailer_crc"), "absent");
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].sha256, Sha256::Hex(lzma));
}

TEST_F(ArcadyanFormatTest, ReportsATrailerWhoseCrcDoesNotMatch) {
  const Bytes& lzma = BusyboxLzma();
  const Bytes image = BuildImage(lzma, true, 0, /*good_crc=*/false);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_TRUE(result.chunk->length_from_extract);
  ASSERT_TRUE(result.status);
  EXPECT_EQ(result.meta.at("trailer_crc"), "mismatch");
  ASSERT_TRUE(result.consumed);
  EXPECT_EQ(*result.consumed, image.size());
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, GapKind::kCorrupt);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].sha256, Sha256::Hex(lzma));
}

TEST_F(ArcadyanFormatTest, KeepsWhatATruncatedImageHolds) {
  const Bytes& lzma = BusyboxLzma();
  const Bytes image = BuildImage(lzma, true);
  const Bytes cut(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(image.size() / 2));
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, GapKind::kTruncated);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].size, cut.size() - 4);
}

TEST_F(ArcadyanFormatTest, RejectsWhatIsNotAScrambledLzmaStream) {
  const Bytes& lzma = BusyboxLzma();
  const Bytes good = BuildImage(lzma, true);
  ASSERT_TRUE(format_->Probe(good, 0));
  Bytes plain;
  PutLe32(plain, 0);
  plain.insert(plain.end(), lzma.begin(), lzma.end());  // not scrambled
  EXPECT_FALSE(format_->Probe(plain, 0));
  // The range coder's first byte (clear offset 17) comes from scrambled offset 0x74.
  Bytes bad_coder = good;
  bad_coder[0x74] = 0x10;
  EXPECT_FALSE(format_->Probe(bad_coder, 0));
  Bytes bad_properties = good;
  bad_properties[0x69] = 0xff;
  EXPECT_FALSE(format_->Probe(bad_properties, 0));
  EXPECT_FALSE(format_->Probe(Bytes(good.begin(), good.begin() + 0x88), 0));
  for (std::uint8_t seed = 0; seed < 30; ++seed) {
    Bytes noise = Pattern(4096, seed);
    const Bytes magic = {0x00, 0xd5, 0x08, 0x00};
    std::copy(magic.begin(), magic.end(), noise.begin() + 0x68);
    EXPECT_FALSE(format_->Probe(noise, 0)) << int{seed};
  }
}

TEST_F(ArcadyanFormatTest, SurvivesTruncationAndRandomDamage) {
  Bytes small(20000);
  for (std::size_t i = 0; i < small.size(); ++i) small[i] = static_cast<std::uint8_t>(i % 251);
  const auto source = scratch_.path() / "small.bin";
  testing::WriteFileBytes(source, small);
  const Bytes full = BuildImage(Lzma(scratch_, source.string()), true);
  for (std::size_t size = 0x80; size <= full.size(); size += 13) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
    if (result.chunk) {
      EXPECT_TRUE(result.status) << size;
    }
  }
  std::uint32_t x = 23;
  for (int round = 0; round < 200; ++round) {
    Bytes image = full;
    for (int i = 0; i < 3; ++i) {
      x = x * 1103515245u + 12345u;
      image[(x >> 8) % image.size()] ^= static_cast<std::uint8_t>(x >> 20);
    }
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, image, 0, scratch);
    if (!result.chunk) continue;
    EXPECT_LE(result.chunk->length, image.size());
    EXPECT_TRUE(result.status) << round;
  }
}

}  // namespace
}  // namespace iotmark::unpack
