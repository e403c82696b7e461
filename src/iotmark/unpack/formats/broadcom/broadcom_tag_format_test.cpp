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
std::unique_ptr<const Format> MakeBroadcomTagFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using model::GapKind;
using testing::ProbeAndExtract;
using testing::ScratchDir;

constexpr std::uint32_t kFlashBase = 0xbfc10000;

void PutBe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

void PutText(Bytes& out, std::size_t at, const std::string& text) {
  std::copy(text.begin(), text.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
}

std::uint32_t BcmCrc(const std::uint8_t* data, std::size_t size) {
  return ~static_cast<std::uint32_t>(crc32_z(0, data, size));
}

struct Options {
  bool kernel_first = true;  // OpenWrt; Broadcom's own images put the rootfs first
  std::size_t rootfs_gap = 0;
  std::string signature = "Broadcom Corporatio";
};

// A BCM963xx image (test-only writer): tag, then the parts at flash addresses base + 256 ...;
// the image CRC covers everything after the tag, the header CRC the first 236 bytes.
Bytes BuildTag(const Bytes& kernel, const Bytes& rootfs, const Options& options = {}) {
  Bytes out(256, 0);
  PutText(out, 0, "6");
  PutText(out, 4, options.signature);
  PutText(out, 24, "ver. 2.0");
  PutText(out, 38, "6348");
  PutText(out, 44, "96348GW-11");
  PutText(out, 60, "1");
  const Bytes& first = options.kernel_first ? kernel : rootfs;
  const Bytes& second = options.kernel_first ? rootfs : kernel;
  const std::uint32_t first_address = kFlashBase + 256;
  const std::uint32_t second_address =
      first_address + static_cast<std::uint32_t>(first.size() + options.rootfs_gap);
  const std::uint32_t kernel_address = options.kernel_first ? first_address : second_address;
  const std::uint32_t rootfs_address = options.kernel_first ? second_address : first_address;
  const std::size_t total = first.size() + options.rootfs_gap + second.size();
  PutText(out, 62, std::to_string(total));
  PutText(out, 72, "0");
  PutText(out, 84, "0");
  PutText(out, 94, std::to_string(rootfs_address));
  PutText(out, 106, std::to_string(rootfs.size()));
  PutText(out, 116, std::to_string(kernel_address));
  PutText(out, 128, std::to_string(kernel.size()));
  PutText(out, 138, "0");
  PutText(out, 140, "0");
  out.insert(out.end(), first.begin(), first.end());
  out.resize(out.size() + options.rootfs_gap, 0xff);
  out.insert(out.end(), second.begin(), second.end());
  PutBe32(out, 216, BcmCrc(out.data() + 256, total));
  PutBe32(out, 224, BcmCrc(kernel.data(), kernel.size()));
  PutBe32(out, 236, BcmCrc(out.data(), 236));
  return out;
}

Bytes Pattern(std::size_t size, std::uint8_t seed) {
  Bytes out(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return out;
}

bool HasIssue(const Chunk& chunk, GapKind kind, const std::string& text) {
  return std::any_of(chunk.issues.begin(), chunk.issues.end(), [&](const ProbeIssue& issue) {
    return issue.kind == kind && issue.reason.find(text) != std::string::npos;
  });
}

class BroadcomTagFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeBroadcomTagFormat();
  ScratchDir scratch_;
};

TEST_F(BroadcomTagFormatTest, ExtractsAnOpenwrtStyleImageBuiltFromRealParts) {
  const auto dir = scratch_.path() / "build";
  ASSERT_EQ(
      testing::RunCommand("set -e; mkdir -p '" + dir.string() + "/root/bin'; cd '" + dir.string() +
                          "'; cp /bin/busybox root/bin/; xz --format=lzma -1 -c /bin/busybox "
                          "> kernel.lzma; mksquashfs root rootfs.sqfs -quiet -noappend "
                          ">/dev/null"),
      0);
  // OpenWrt's kernel part: load address, entry point and LZMA length, then the LZMA stream.
  Bytes kernel(12, 0);
  const Bytes lzma = testing::ReadFileBytes(dir / "kernel.lzma");
  PutBe32(kernel, 0, 0x80010000);
  PutBe32(kernel, 4, 0x80010000);
  PutBe32(kernel, 8, static_cast<std::uint32_t>(lzma.size()));
  kernel.insert(kernel.end(), lzma.begin(), lzma.end());
  const Bytes rootfs = testing::ReadFileBytes(dir / "rootfs.sqfs");
  const Bytes image = BuildTag(kernel, rootfs, {.rootfs_gap = 1000});
  Bytes blob = Pattern(4096, 1);
  blob.insert(blob.end(), image.begin(), image.end());
  blob.resize(blob.size() + 777, 0xff);

  const auto result = ProbeAndExtract(*format_, blob, 4096, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 4096u);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("tag_version"), "6");
  EXPECT_EQ(meta.at("signature"), "Broadcom Corporatio");
  EXPECT_EQ(meta.at("signature2"), "ver. 2.0");
  EXPECT_EQ(meta.at("chip_id"), "6348");
  EXPECT_EQ(meta.at("board_id"), "96348GW-11");
  EXPECT_EQ(meta.at("big_endian"), "yes");
  EXPECT_EQ(meta.at("kernel_address"), "0xbfc10100");
  EXPECT_EQ(meta.at("header_crc"), "ok");
  EXPECT_EQ(meta.at("image_crc"), "ok");
  EXPECT_EQ(meta.at("kernel_crc"), "ok");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("kernel")->sha256, Sha256::Hex(kernel));
  EXPECT_EQ(result.Find("rootfs")->sha256, Sha256::Hex(rootfs));
}

TEST_F(BroadcomTagFormatTest, PlacesTheRootfsFirstInBroadcomsOwnLayout) {
  const Bytes kernel = Pattern(3000, 1);
  const Bytes rootfs = Pattern(5000, 2);
  const Bytes image = BuildTag(kernel, rootfs, {.kernel_first = false});
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_TRUE(result.chunk->issues.empty());
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("kernel")->sha256, Sha256::Hex(kernel));
  EXPECT_EQ(result.Find("rootfs")->sha256, Sha256::Hex(rootfs));
}

TEST_F(BroadcomTagFormatTest, ReportsABadHeaderCrcAndStillExtracts) {
  Bytes image = BuildTag(Pattern(300, 1), Pattern(300, 2), {.signature = "OpenWRT BCM963xx"});
  image[239] ^= 0x01;
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("header_crc"), "mismatch");
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kCorrupt, "header CRC mismatch"));
  EXPECT_EQ(result.chunk->meta.at("image_crc"), "ok");
  EXPECT_EQ(result.entries.size(), 2u);
}

TEST_F(BroadcomTagFormatTest, ReportsDamagedImageData) {
  Bytes image = BuildTag(Pattern(300, 1), Pattern(300, 2));
  image[600] ^= 0x01;
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("header_crc"), "ok");
  EXPECT_EQ(result.chunk->meta.at("image_crc"), "mismatch");
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kCorrupt, "image CRC"));
}

TEST_F(BroadcomTagFormatTest, ClipsATruncatedImage) {
  const Bytes full = BuildTag(Pattern(300, 1), Pattern(300, 2));
  const Bytes cut(full.begin(), full.begin() + 400);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, 400u);
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kTruncated, "only 400 remain"));
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.Find("kernel")->size, 144u);
  EXPECT_EQ(result.gaps.size(), 2u);
}

TEST_F(BroadcomTagFormatTest, RejectsTagsThatDoNotHoldTogether) {
  const Bytes good = BuildTag(Pattern(100, 1), Pattern(100, 2));
  ASSERT_TRUE(format_->Probe(good, 0));
  const auto broken = [&](std::size_t at, std::uint8_t value) {
    Bytes copy = good;
    copy[at] = value;
    return copy;
  };
  EXPECT_FALSE(format_->Probe(broken(0, 'x'), 0));    // tag version not a number
  EXPECT_FALSE(format_->Probe(broken(0, 0), 0));      // no tag version
  EXPECT_FALSE(format_->Probe(broken(44, 0), 0));     // no board id
  EXPECT_FALSE(format_->Probe(broken(45, 0x01), 0));  // binary board id
  EXPECT_FALSE(format_->Probe(broken(60, '2'), 0));   // endianness flag
  EXPECT_FALSE(format_->Probe(broken(63, 'k'), 0));   // total length not decimal
  EXPECT_FALSE(format_->Probe(broken(62, 0), 0));     // no total length
  EXPECT_FALSE(format_->Probe(broken(117, 'z'), 0));  // kernel address not decimal
  EXPECT_FALSE(format_->Probe(Bytes(good.begin(), good.begin() + 255), 0));
}

TEST_F(BroadcomTagFormatTest, FindsNothingInRandomBytes) {
  for (std::uint8_t seed = 0; seed < 40; ++seed) {
    Bytes noise = Pattern(2048, seed);
    PutText(noise, 104, "Broadcom Corporatio");
    EXPECT_FALSE(format_->Probe(noise, 100)) << int{seed};
  }
}

TEST_F(BroadcomTagFormatTest, SurvivesTruncationAndRandomDamage) {
  const Bytes full = BuildTag(Pattern(100, 1), Pattern(200, 2));
  for (std::size_t size = 0; size <= full.size(); size += 9) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
    if (result.chunk) {
      EXPECT_LE(result.chunk->length, size);
      EXPECT_TRUE(result.status) << size;
    }
  }
  std::uint32_t x = 41;
  for (int round = 0; round < 300; ++round) {
    Bytes image = full;
    for (int i = 0; i < 3; ++i) {
      x = x * 1103515245u + 12345u;
      image[(x >> 8) % 256] ^= static_cast<std::uint8_t>(x >> 20);
    }
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, image, 0, scratch);
    if (!result.chunk) continue;
    EXPECT_LE(result.chunk->length, image.size());
    EXPECT_TRUE(result.status) << round;
    EXPECT_LE(result.entries.size(), 3u);
  }
}

}  // namespace
}  // namespace iotmark::unpack
