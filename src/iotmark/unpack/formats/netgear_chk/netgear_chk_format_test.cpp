#include <gtest/gtest.h>

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
std::unique_ptr<const Format> MakeNetgearChkFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using model::GapKind;
using testing::ProbeAndExtract;
using testing::ScratchDir;

void PutBe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

// Netgear's checksum as mkchkimg computes it (test-only copy, written from its description).
std::uint32_t Checksum(const std::vector<const Bytes*>& parts, std::size_t skip_from = SIZE_MAX,
                       std::size_t skip_to = 0) {
  std::uint32_t c0 = 0;
  std::uint32_t c1 = 0;
  for (const Bytes* part : parts) {
    for (std::size_t i = 0; i < part->size(); ++i) {
      const std::uint8_t b = (i >= skip_from && i < skip_to) ? 0 : (*part)[i];
      c0 += b;
      c1 += c0;
    }
  }
  const auto fold = [](std::uint32_t v) {
    const std::uint32_t b = (v & 0xffff) + (v >> 16);
    return ((b >> 16) + b) & 0xffff;
  };
  return (fold(c1) << 16) | fold(c0);
}

// A CHK image laid out as mkchkimg writes it.
Bytes BuildChk(const Bytes& kernel, const Bytes& rootfs,
               const std::string& board_id = "U12H270T00_NETGEAR", std::uint8_t region = 1) {
  Bytes out(40 + board_id.size(), 0);
  PutBe32(out, 0, 0x2a23245e);
  PutBe32(out, 4, static_cast<std::uint32_t>(out.size()));
  out[8] = region;
  for (int i = 1; i < 8; ++i) out[8 + i] = static_cast<std::uint8_t>(i);
  PutBe32(out, 16, Checksum({&kernel}));
  PutBe32(out, 20, rootfs.empty() ? 0 : Checksum({&rootfs}));
  PutBe32(out, 24, static_cast<std::uint32_t>(kernel.size()));
  PutBe32(out, 28, static_cast<std::uint32_t>(rootfs.size()));
  PutBe32(out, 32, Checksum({&kernel, &rootfs}));
  std::copy(board_id.begin(), board_id.end(), out.begin() + 40);
  PutBe32(out, 36, Checksum({&out}, 36, 40));
  out.insert(out.end(), kernel.begin(), kernel.end());
  out.insert(out.end(), rootfs.begin(), rootfs.end());
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

Bytes Embed(const Bytes& inner, std::size_t before, std::size_t after) {
  Bytes out = Pattern(before, 7);
  out.insert(out.end(), inner.begin(), inner.end());
  const Bytes tail = Pattern(after, 9);
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

bool HasIssue(const Chunk& chunk, GapKind kind, const std::string& text) {
  return std::any_of(chunk.issues.begin(), chunk.issues.end(), [&](const ProbeIssue& issue) {
    return issue.kind == kind && issue.reason.find(text) != std::string::npos;
  });
}

class NetgearChkFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeNetgearChkFormat();
  ScratchDir scratch_;
};

TEST_F(NetgearChkFormatTest, ExtractsAnLzmaKernelAndASquashfsRootfsFromInsideOtherBytes) {
  const auto dir = scratch_.path() / "build";
  ASSERT_EQ(
      testing::RunCommand("set -e; mkdir -p '" + dir.string() + "/root/bin'; cd '" + dir.string() +
                          "'; cp /bin/busybox root/bin/; xz --format=lzma -1 -c /bin/busybox "
                          "> kernel.lzma; mksquashfs root rootfs.sqfs -quiet -noappend "
                          ">/dev/null"),
      0);
  const Bytes kernel = testing::ReadFileBytes(dir / "kernel.lzma");
  const Bytes rootfs = testing::ReadFileBytes(dir / "rootfs.sqfs");
  ASSERT_FALSE(kernel.empty());
  ASSERT_FALSE(rootfs.empty());
  const Bytes chk = BuildChk(kernel, rootfs, "U12H270T00_NETGEAR", 2);
  const Bytes blob = Embed(chk, 1000, 333);

  const auto result = ProbeAndExtract(*format_, blob, 1000, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 1000u);
  EXPECT_EQ(result.chunk->length, chk.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.at("board_id"), "U12H270T00_NETGEAR");
  EXPECT_EQ(result.chunk->meta.at("region"), "NA");
  EXPECT_EQ(result.chunk->meta.at("version"), "1.2.3.4_5.6.7");
  EXPECT_EQ(result.chunk->meta.at("header_checksum"), "ok");
  EXPECT_EQ(result.chunk->meta.at("kernel_checksum"), "ok");
  EXPECT_EQ(result.chunk->meta.at("rootfs_checksum"), "ok");
  EXPECT_EQ(result.chunk->meta.at("image_checksum"), "ok");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("kernel")->sha256, Sha256::Hex(kernel));
  EXPECT_EQ(result.Find("rootfs")->sha256, Sha256::Hex(rootfs));
  EXPECT_EQ(result.Find("kernel")->size, kernel.size());
}

TEST_F(NetgearChkFormatTest, ExtractsAKernelOnlyImage) {
  const Bytes kernel = Pattern(5000, 3);
  const auto result = ProbeAndExtract(*format_, BuildChk(kernel, {}), 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.count("rootfs_checksum"), 0u);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].path, "kernel");
}

TEST_F(NetgearChkFormatTest, ReportsABadHeaderChecksumAndStillExtracts) {
  Bytes chk = BuildChk(Pattern(300, 1), Pattern(200, 2));
  chk[37] ^= 0x40;
  const auto result = ProbeAndExtract(*format_, chk, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("header_checksum"), "mismatch");
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kCorrupt, "header_checksum mismatch"));
  EXPECT_EQ(result.chunk->meta.at("kernel_checksum"), "ok");
  EXPECT_EQ(result.entries.size(), 2u);
}

TEST_F(NetgearChkFormatTest, ReportsDamagedRootfsData) {
  Bytes chk = BuildChk(Pattern(300, 1), Pattern(200, 2));
  chk[chk.size() - 10] ^= 0x01;
  const auto result = ProbeAndExtract(*format_, chk, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("header_checksum"), "ok");
  EXPECT_EQ(result.chunk->meta.at("kernel_checksum"), "ok");
  EXPECT_EQ(result.chunk->meta.at("rootfs_checksum"), "mismatch");
  EXPECT_EQ(result.chunk->meta.at("image_checksum"), "mismatch");
  EXPECT_EQ(result.chunk->issues.size(), 2u);
}

TEST_F(NetgearChkFormatTest, ClipsATruncatedImageAndSaysWhatIsMissing) {
  const Bytes full = BuildChk(Pattern(300, 1), Pattern(200, 2), "R7000");
  const Bytes cut(full.begin(), full.begin() + 45 + 100);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, cut.size());
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kTruncated, "only 145 remain"));
  EXPECT_EQ(result.chunk->meta.at("image_checksum"), "unchecked");
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.Find("kernel")->size, 100u);
  EXPECT_EQ(result.gaps.size(), 2u);  // kernel cut short, rootfs absent
}

TEST_F(NetgearChkFormatTest, RejectsHeadersThatDoNotHoldTogether) {
  const Bytes good = BuildChk(Pattern(100, 1), Pattern(100, 2));
  ASSERT_TRUE(format_->Probe(good, 0));

  Bytes short_header = good;
  PutBe32(short_header, 4, 40);
  EXPECT_FALSE(format_->Probe(short_header, 0));

  Bytes long_header = good;
  PutBe32(long_header, 4, 40 + 4000);
  EXPECT_FALSE(format_->Probe(long_header, 0));

  Bytes binary_board = good;
  binary_board[41] = 0x01;
  EXPECT_FALSE(format_->Probe(binary_board, 0));

  Bytes empty_board = good;
  empty_board[40] = 0;
  EXPECT_FALSE(format_->Probe(empty_board, 0));

  Bytes no_kernel = good;
  PutBe32(no_kernel, 24, 0);
  EXPECT_FALSE(format_->Probe(no_kernel, 0));

  const Bytes magic_only = {0x2a, 0x23, 0x24, 0x5e, 0, 0, 0, 60};
  EXPECT_FALSE(format_->Probe(magic_only, 0));
  EXPECT_FALSE(format_->Probe(good, good.size()));
}

TEST_F(NetgearChkFormatTest, FindsNothingInRandomBytes) {
  for (std::uint8_t seed = 0; seed < 50; ++seed) {
    Bytes noise = Pattern(4096, seed);
    noise[100] = 0x2a;
    noise[101] = 0x23;
    noise[102] = 0x24;
    noise[103] = 0x5e;
    EXPECT_FALSE(format_->Probe(noise, 100)) << int{seed};
    EXPECT_FALSE(format_->Probe(noise, 0)) << int{seed};
  }
}

TEST_F(NetgearChkFormatTest, SurvivesEveryTruncationAndRandomDamage) {
  const Bytes full = BuildChk(Pattern(64, 1), Pattern(64, 2), "EX3700");
  for (std::size_t size = 0; size <= full.size(); size += 5) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
    if (result.chunk) {
      EXPECT_LE(result.chunk->length, size);
      EXPECT_TRUE(result.status) << size;
    }
  }
  std::uint32_t x = 99;
  for (int round = 0; round < 300; ++round) {
    Bytes image = full;
    for (int i = 0; i < 3; ++i) {
      x = x * 1103515245u + 12345u;
      image[4 + (x >> 8) % 44] ^= static_cast<std::uint8_t>(x >> 20);
    }
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, image, 0, scratch);
    if (!result.chunk) continue;
    EXPECT_LE(result.chunk->length, image.size());
    EXPECT_TRUE(result.status) << round;
    EXPECT_LE(result.entries.size(), 2u);
  }
}

}  // namespace
}  // namespace iotmark::unpack
