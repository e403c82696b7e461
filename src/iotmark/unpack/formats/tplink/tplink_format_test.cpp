#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeTplinkFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using model::GapKind;
using testing::ProbeAndExtract;
using testing::ScratchDir;

constexpr std::array<std::uint8_t, 16> kSaltV1 = {0xdc, 0xd7, 0x3a, 0xa5, 0xc3, 0x95, 0x98, 0xfb,
                                                  0xdd, 0xf9, 0xe7, 0xf4, 0x0e, 0xae, 0x47, 0x38};
constexpr std::array<std::uint8_t, 16> kSaltV2 = {0xdc, 0xd7, 0x3a, 0xa5, 0xc3, 0x95, 0x98, 0xfb,
                                                  0xdc, 0xf9, 0xe7, 0xf4, 0x0e, 0xae, 0x47, 0x37};

void PutBe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

void PutText(Bytes& out, std::size_t at, const std::string& text) {
  std::copy(text.begin(), text.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
}

void Md5Into(Bytes& image, std::size_t field, std::size_t length) {
  std::array<std::uint8_t, 16> digest{};
  unsigned int size = 0;
  EVP_Digest(image.data(), length, digest.data(), &size, EVP_md5(), nullptr);
  std::copy(digest.begin(), digest.end(), image.begin() + static_cast<std::ptrdiff_t>(field));
}

struct Options {
  int layout = 1;               // 1: mktplinkfw, 2: mktplinkfw2
  bool strip = false;           // -s: no padding up to fw_length
  bool with_md5 = true;         // false: a combined image without a digest
  std::uint32_t fw_length = 0;  // 0: computed
};

// A TP-Link image as mktplinkfw / mktplinkfw2 write it (test-only writer): header, kernel at
// 0x200, rootfs at the next 64 KiB boundary, 0xff padding up to fw_length, salted MD5.
Bytes BuildImage(const Bytes& kernel, const Bytes& rootfs, const Options& options = {}) {
  const std::uint32_t rootfs_ofs = (0x200 + kernel.size() + 0xffff) / 0x10000 * 0x10000;
  const std::uint32_t end = rootfs_ofs + static_cast<std::uint32_t>(rootfs.size());
  const std::uint32_t fw_length =
      options.fw_length != 0 ? options.fw_length : (end + 0xffff) / 0x10000 * 0x10000;
  Bytes out(fw_length, 0xff);
  std::fill(out.begin(), out.begin() + 0x200, 0);
  std::size_t words = 0;
  std::size_t md5 = 0;
  if (options.layout == 1) {
    PutBe32(out, 0, 0x01000000);
    PutText(out, 4, "TP-LINK Technologies");
    PutText(out, 0x1c, "ver. 1.0");
    PutBe32(out, 0x40, 0x08410009);
    PutBe32(out, 0x44, 1);
    out[0x99] = 3;
    out[0x9b] = 2;
    out[0x9d] = 1;
    PutText(out, 0x140, "45550000");
    words = 0x74;
    md5 = 0x4c;
  } else {
    std::fill(out.begin(), out.begin() + 0x200, 0xff);
    out[0] = 2;
    out[1] = out[2] = out[3] = 0;
    std::fill(out.begin() + 4, out.begin() + 52, 0);
    PutText(out, 4, "ver. 2.0");
    PutBe32(out, 0x34, 0x08410013);
    PutBe32(out, 0x38, 1);
    PutBe32(out, 0x3c, 0);
    PutBe32(out, 0x50, 0);
    PutBe32(out, 0x64, 0xffffffff);
    out[0x8c] = 0x55;
    out[0x8d] = 0xaa;
    out[0x8e] = 1;
    out[0x8f] = 0;
    out[0x90] = 0xa5;
    out[0x91] = 0;
    out[0x92] = 9;
    out[0x93] = 1;
    words = 0x68;
    md5 = 0x40;
  }
  PutBe32(out, words, 0x80060000);
  PutBe32(out, words + 4, 0x80060000);
  PutBe32(out, words + 8, fw_length);
  PutBe32(out, words + 12, 0x200);
  PutBe32(out, words + 16, static_cast<std::uint32_t>(kernel.size()));
  PutBe32(out, words + 20, rootfs.empty() ? 0 : rootfs_ofs);
  PutBe32(out, words + 24, static_cast<std::uint32_t>(rootfs.size()));
  PutBe32(out, words + 28, 0);
  PutBe32(out, words + 32, 0);
  std::copy(kernel.begin(), kernel.end(), out.begin() + 0x200);
  std::copy(rootfs.begin(), rootfs.end(), out.begin() + rootfs_ofs);
  if (options.strip) out.resize(rootfs.empty() ? 0x200 + kernel.size() : end);
  const auto& salt = options.layout == 1 ? kSaltV1 : kSaltV2;
  if (options.with_md5) {
    std::copy(salt.begin(), salt.end(), out.begin() + static_cast<std::ptrdiff_t>(md5));
    Md5Into(out, md5, out.size());
  } else {
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(md5),
              out.begin() + static_cast<std::ptrdiff_t>(md5) + 16, 0);
  }
  return out;
}

// A VxWorks-era IMG0 image (test-only writer): length word, MD5, outer IMG0 holding a boot stub
// and an inner IMG0 with three parts.
Bytes BuildImg0(const Bytes& boot, const Bytes& os, const Bytes& fs, const Bytes& extra) {
  const auto header = [](std::uint32_t size, std::uint32_t l1, std::uint32_t o2, std::uint32_t l2,
                         std::uint32_t o3, std::uint32_t l3) {
    Bytes h(0x80, 0);
    PutText(h, 0, "IMG0");
    PutBe32(h, 4, size);
    h[8] = 0x07;
    h[9] = 0x02;
    h[10] = 0x11;
    h[11] = 0x01;
    PutBe32(h, 12, 1);
    PutBe32(h, 0x40, 0x80);
    PutBe32(h, 0x44, l1);
    PutBe32(h, 0x48, o2);
    PutBe32(h, 0x4c, l2);
    PutBe32(h, 0x50, o3);
    PutBe32(h, 0x54, l3);
    return h;
  };
  const auto n = [](const Bytes& b) { return static_cast<std::uint32_t>(b.size()); };
  const std::uint32_t inner_size = 0x80 + n(os) + n(fs) + n(extra);
  Bytes inner = header(inner_size, n(os), 0x80 + n(os), n(fs), 0x80 + n(os) + n(fs), n(extra));
  inner.insert(inner.end(), os.begin(), os.end());
  inner.insert(inner.end(), fs.begin(), fs.end());
  inner.insert(inner.end(), extra.begin(), extra.end());
  const std::uint32_t outer_size = 0x80 + n(boot) + inner_size;
  Bytes out(20, 0);
  PutBe32(out, 0, 0x00123456);
  const Bytes outer = header(outer_size, n(boot) + inner_size, 0, 0, 0, 0);
  out.insert(out.end(), outer.begin(), outer.end());
  out.insert(out.end(), boot.begin(), boot.end());
  out.insert(out.end(), inner.begin(), inner.end());
  Md5Into(out, 4, out.size());
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

class TplinkFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeTplinkFormat();
  ScratchDir scratch_;
};

TEST_F(TplinkFormatTest, ExtractsTheKernelAndRootfsOfAV1ImageBuiltFromRealParts) {
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
  const Bytes image = BuildImage(kernel, rootfs);
  const Bytes blob = Embed(image, 4096, 100);

  const auto result = ProbeAndExtract(*format_, blob, 4096, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 4096u);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("layout"), "v1");
  EXPECT_EQ(meta.at("vendor"), "TP-LINK Technologies");
  EXPECT_EQ(meta.at("image_version"), "ver. 1.0");
  EXPECT_EQ(meta.at("hw_id"), "0x08410009");
  EXPECT_EQ(meta.at("hw_rev"), "0x00000001");
  EXPECT_EQ(meta.at("firmware_version"), "3.2.1");
  EXPECT_EQ(meta.at("region"), "45550000");
  EXPECT_EQ(meta.at("kernel_load_address"), "0x80060000");
  EXPECT_EQ(meta.at("md5"), "ok");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("kernel")->sha256, Sha256::Hex(kernel));
  EXPECT_EQ(result.Find("rootfs")->sha256, Sha256::Hex(rootfs));
}

TEST_F(TplinkFormatTest, ReadsAV2ImageWithItsOwnSalt) {
  const Bytes kernel = Pattern(70000, 1);
  const Bytes rootfs = Pattern(30000, 2);
  const Bytes image = BuildImage(kernel, rootfs, {.layout = 2});
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.at("layout"), "v2");
  EXPECT_EQ(result.chunk->meta.at("header_version"), "2");
  EXPECT_EQ(result.chunk->meta.at("image_version"), "ver. 2.0");
  EXPECT_EQ(result.chunk->meta.at("hw_id"), "0x08410013");
  EXPECT_EQ(result.chunk->meta.at("firmware_version"), "0.9.1-1.0");
  EXPECT_EQ(result.chunk->meta.at("md5"), "ok");
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("rootfs")->sha256, Sha256::Hex(rootfs));
}

TEST_F(TplinkFormatTest, EndsAStrippedImageAtItsLastPart) {
  const Bytes image = BuildImage(Pattern(1000, 1), Pattern(2000, 2), {.strip = true});
  const Bytes blob = Embed(image, 0, 5000);
  const auto result = ProbeAndExtract(*format_, blob, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_EQ(result.chunk->meta.at("md5"), "ok");
  EXPECT_TRUE(result.chunk->issues.empty());
}

TEST_F(TplinkFormatTest, AcceptsACombinedImageWithoutDigest) {
  const Bytes image = BuildImage(Pattern(1000, 1), {}, {.strip = true, .with_md5 = false});
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("md5"), "absent");
  EXPECT_TRUE(result.chunk->issues.empty());
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].path, "kernel");
}

TEST_F(TplinkFormatTest, ReportsAnMd5MismatchAndStillExtracts) {
  Bytes image = BuildImage(Pattern(1000, 1), Pattern(2000, 2));
  image[0x200 + 10] ^= 0x20;
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("md5"), "mismatch");
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kCorrupt, "MD5"));
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_EQ(result.entries.size(), 2u);
}

TEST_F(TplinkFormatTest, ClipsATruncatedImage) {
  const Bytes full = BuildImage(Pattern(100000, 1), Pattern(2000, 2));
  const Bytes cut(full.begin(), full.begin() + 50000);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, cut.size());
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kTruncated, "only 50000 remain"));
  EXPECT_EQ(result.chunk->meta.at("md5"), "unchecked");
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.Find("kernel")->size, 50000u - 0x200);
  EXPECT_EQ(result.gaps.size(), 2u);
}

TEST_F(TplinkFormatTest, ReadsTheVxWorksImg0Sample) {
  const auto path = testing::SharedSamplePath("tplink/fact_tplink_wr.fw");
  if (path.empty()) GTEST_SKIP() << "shared sample tplink/fact_tplink_wr.fw is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.at("layout"), "img0");
  EXPECT_EQ(result.chunk->meta.at("product_id"), "0x0702");
  EXPECT_EQ(result.chunk->meta.at("language"), "english");
  EXPECT_EQ(result.chunk->meta.at("md5"), "unverified");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 4u);
  EXPECT_EQ(result.Find("bootloader")->size, 0x40000u);
  EXPECT_EQ(result.Find("kernel")->size, 0xedb55u);
  EXPECT_EQ(result.Find("rootfs")->size, 0x48a00u);
  EXPECT_EQ(result.Find("extra")->size, 0x15c0u);
  const Bytes kernel = result.Read("kernel");
  ASSERT_GE(kernel.size(), 5u);
  EXPECT_EQ(kernel[0], 0x6e);  // LZMA properties (lc=2 lp=2 pb=2), 8 MiB dictionary
  EXPECT_EQ(kernel[3], 0x80);
  const Bytes rootfs = result.Read("rootfs");
  EXPECT_EQ(std::string(rootfs.begin(), rootfs.begin() + 8), "owowowow");
}

TEST_F(TplinkFormatTest, ReadsACraftedImg0ImageAtAnOffset) {
  const Bytes boot = Pattern(4096, 1);
  const Bytes os = Pattern(3000, 2);
  const Bytes fs = Pattern(2000, 3);
  const Bytes extra = Pattern(100, 4);
  const Bytes image = BuildImg0(boot, os, fs, extra);
  const Bytes blob = Embed(image, 777, 1234);
  const auto result = ProbeAndExtract(*format_, blob, 777, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  ASSERT_EQ(result.entries.size(), 4u);
  EXPECT_EQ(result.Find("bootloader")->sha256, Sha256::Hex(boot));
  EXPECT_EQ(result.Find("kernel")->sha256, Sha256::Hex(os));
  EXPECT_EQ(result.Find("rootfs")->sha256, Sha256::Hex(fs));
  EXPECT_EQ(result.Find("extra")->sha256, Sha256::Hex(extra));
}

TEST_F(TplinkFormatTest, RejectsHeadersThatDoNotHoldTogether) {
  const Bytes good = BuildImage(Pattern(1000, 1), Pattern(1000, 2));
  ASSERT_TRUE(format_->Probe(good, 0));

  Bytes bad_version = good;
  bad_version[0] = 4;
  EXPECT_FALSE(format_->Probe(bad_version, 0));

  Bytes binary_vendor = good;
  binary_vendor[6] = 0x07;
  EXPECT_FALSE(format_->Probe(binary_vendor, 0));

  Bytes no_hw_id = good;
  PutBe32(no_hw_id, 0x40, 0);
  EXPECT_FALSE(format_->Probe(no_hw_id, 0));

  Bytes kernel_in_header = good;
  PutBe32(kernel_in_header, 0x80, 0x100);
  EXPECT_FALSE(format_->Probe(kernel_in_header, 0));

  Bytes kernel_past_end = good;
  PutBe32(kernel_past_end, 0x84, 0x7fffffff);
  EXPECT_FALSE(format_->Probe(kernel_past_end, 0));

  Bytes rootfs_past_end = good;
  PutBe32(rootfs_past_end, 0x8c, static_cast<std::uint32_t>(good.size()));
  EXPECT_FALSE(format_->Probe(rootfs_past_end, 0));

  const Bytes img0 = BuildImg0(Pattern(64, 1), Pattern(64, 2), Pattern(64, 3), {});
  ASSERT_TRUE(format_->Probe(img0, 0));
  Bytes img0_dirty_header = img0;
  img0_dirty_header[20 + 0x70] = 1;
  EXPECT_FALSE(format_->Probe(img0_dirty_header, 0));
  Bytes img0_part_outside = img0;
  PutBe32(img0_part_outside, 20 + 0x44, 0x10000);
  EXPECT_FALSE(format_->Probe(img0_part_outside, 0));

  EXPECT_FALSE(format_->Probe(Bytes(good.begin(), good.begin() + 0x1ff), 0));
}

TEST_F(TplinkFormatTest, FindsNothingInRandomBytes) {
  for (std::uint8_t seed = 0; seed < 40; ++seed) {
    Bytes noise = Pattern(8192, seed);
    PutText(noise, 0, std::string("\x01\x00\x00\x00TP-LINK", 11));
    PutText(noise, 0x1000 + 0x14, "IMG0");
    EXPECT_FALSE(format_->Probe(noise, 0)) << int{seed};
    EXPECT_FALSE(format_->Probe(noise, 0x1000)) << int{seed};
  }
}

TEST_F(TplinkFormatTest, SurvivesTruncationAndRandomDamage) {
  const Bytes v1 = BuildImage(Pattern(300, 1), Pattern(300, 2), {.strip = true});
  const Bytes img0 = BuildImg0(Pattern(64, 1), Pattern(64, 2), Pattern(64, 3), Pattern(8, 4));
  for (const Bytes* full : {&v1, &img0}) {
    for (std::size_t size = 0; size <= full->size(); size += 37) {
      const Bytes cut(full->begin(), full->begin() + static_cast<std::ptrdiff_t>(size));
      ScratchDir scratch;
      const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
      if (result.chunk) {
        EXPECT_LE(result.chunk->length, size);
        EXPECT_TRUE(result.status) << size;
      }
    }
    std::uint32_t x = 5;
    for (int round = 0; round < 120; ++round) {
      Bytes image = *full;
      for (int i = 0; i < 3; ++i) {
        x = x * 1103515245u + 12345u;
        image[(x >> 8) % std::min<std::size_t>(0x200, image.size())] ^=
            static_cast<std::uint8_t>(x >> 20);
      }
      ScratchDir scratch;
      const auto result = ProbeAndExtract(*format_, image, 0, scratch);
      if (!result.chunk) continue;
      EXPECT_LE(result.chunk->length, image.size());
      EXPECT_TRUE(result.status) << round;
      EXPECT_LE(result.entries.size(), 4u);
    }
  }
}

}  // namespace
}  // namespace iotmark::unpack
