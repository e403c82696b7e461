#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"
#include "iotmark/unpack/unpacker.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeLinuxKernelFormat();
std::unique_ptr<const Format> MakeUimageFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using testing::ProbeAndExtract;
using testing::ScratchDir;

constexpr std::string_view kDebianBanner =
    "Linux version 5.10.0-8-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) "
    "10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Debian 5.10.46-4 "
    "(2021-08-03)";

Bytes Random(std::size_t size, std::uint32_t seed) {
  Bytes out(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  return out;
}

void Append(Bytes& out, std::string_view text) { out.insert(out.end(), text.begin(), text.end()); }

void PutLe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

class LinuxKernelFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeLinuxKernelFormat();
  ScratchDir scratch_;
};

TEST_F(LinuxKernelFormatTest, FindsTheBannerInRandomBytesAndStopsAtTheLineEnd) {
  Bytes blob = Random(5000, 1);
  const std::size_t at = blob.size();
  Append(blob, kDebianBanner);
  Append(blob, "\n");
  Append(blob, std::string_view("\0\0\0", 3));
  const Bytes tail = Random(100, 2);
  blob.insert(blob.end(), tail.begin(), tail.end());

  const auto result = ProbeAndExtract(*format_, blob, at, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_TRUE(result.chunk->transparent);
  EXPECT_EQ(result.chunk->offset, at);
  EXPECT_EQ(result.chunk->length, kDebianBanner.size());
  EXPECT_EQ(result.chunk->meta.at("kind"), "banner");
  EXPECT_EQ(result.chunk->meta.at("version"), "5.10.0-8-amd64");
  EXPECT_EQ(result.chunk->meta.at("banner"), kDebianBanner);
  EXPECT_TRUE(result.entries.empty());
}

TEST_F(LinuxKernelFormatTest, AcceptsAShortBannerEndedByNul) {
  Bytes blob;
  Append(blob, std::string_view("Linux version 2.6.36\0", 21));
  const auto chunk = format_->Probe(blob, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.at("version"), "2.6.36");
  EXPECT_EQ(chunk->length, 20u);
}

TEST_F(LinuxKernelFormatTest, RejectsLinuxVersionWithoutANumber) {
  for (const std::string_view text :
       {"Linux version %s (%s@%s)", "Linux version unknown", "Linux version 5 (x)",
        "Linux version 5. (x)", "Linux version .4.1", "Linux version 5.4(x)", "Linux version ",
        "Linux version"}) {
    Bytes blob;
    Append(blob, text);
    EXPECT_FALSE(format_->Probe(blob, 0)) << text;
  }
}

TEST_F(LinuxKernelFormatTest, CapsTheBannerAndKeepsOnlyPrintableText) {
  Bytes blob;
  Append(blob, "Linux version 4.14.0 ");
  Append(blob, std::string(1000, 'x'));
  auto chunk = format_->Probe(blob, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->length, 256u);

  Bytes binary;
  Append(binary, "Linux version 4.14.0 (a");
  binary.push_back(0x01);
  Append(binary, "bc");
  chunk = format_->Probe(binary, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.at("banner"), "Linux version 4.14.0 (a");
}

TEST_F(LinuxKernelFormatTest, IdentifiesTheX86BzImageSample) {
  const auto path = testing::SharedSamplePath("linux_kernel/fact_bzImage_xz");
  if (path.empty()) GTEST_SKIP() << "shared sample linux_kernel/fact_bzImage_xz is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto chunk = format_->Probe(image, 0);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(chunk->transparent);
  EXPECT_TRUE(chunk->issues.empty());
  EXPECT_EQ(chunk->length, image.size());
  EXPECT_EQ(chunk->meta.at("kind"), "x86_bzimage");
  EXPECT_EQ(chunk->meta.at("version"), "5.4.72");
  EXPECT_EQ(chunk->meta.at("version_string").rfind("5.4.72 (root@", 0), 0u);
  EXPECT_EQ(chunk->meta.at("boot_protocol"), "2.13");
  EXPECT_EQ(chunk->meta.at("payload_compression"), "xz");
  EXPECT_EQ(chunk->meta.at("setup_size"), "16896");
}

TEST_F(LinuxKernelFormatTest, ClipsATruncatedBzImage) {
  const auto path = testing::SharedSamplePath("linux_kernel/fact_bzImage_xz");
  if (path.empty()) GTEST_SKIP() << "shared sample linux_kernel/fact_bzImage_xz is absent";
  Bytes image = testing::ReadFileBytes(path);
  image.resize(20000);
  const auto chunk = format_->Probe(image, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->length, image.size());
  ASSERT_EQ(chunk->issues.size(), 1u);
  EXPECT_EQ(chunk->issues[0].kind, model::GapKind::kTruncated);
  // Cut inside the setup code, only the magic and the boot flag remain: not enough.
  image.resize(0x204);
  EXPECT_FALSE(format_->Probe(image, 0));
}

TEST_F(LinuxKernelFormatTest, RejectsHdrSWithoutTheBootFlagOrWithAnOddProtocol) {
  const auto path = testing::SharedSamplePath("linux_kernel/fact_bzImage_xz");
  if (path.empty()) GTEST_SKIP() << "shared sample linux_kernel/fact_bzImage_xz is absent";
  const Bytes image = testing::ReadFileBytes(path);
  Bytes no_flag = image;
  no_flag[0x1fe] = 0;
  EXPECT_FALSE(format_->Probe(no_flag, 0));
  Bytes odd_protocol = image;
  odd_protocol[0x207] = 3;
  EXPECT_FALSE(format_->Probe(odd_protocol, 0));
  // A kernel_version pointer out of range is ignored, the header is still identified.
  Bytes wild_pointer = image;
  wild_pointer[0x20e] = 0xff;
  wild_pointer[0x20f] = 0xff;
  const auto chunk = format_->Probe(wild_pointer, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->meta.count("version"), 0u);
}

TEST_F(LinuxKernelFormatTest, IdentifiesTheBigEndianArmZImageSample) {
  const auto path = testing::SharedSamplePath("linux_kernel/fact_zImage_be32");
  if (path.empty()) GTEST_SKIP() << "shared sample linux_kernel/fact_zImage_be32 is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto chunk = format_->Probe(image, 0);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(chunk->transparent);
  EXPECT_EQ(chunk->meta.at("kind"), "arm_zimage");
  EXPECT_EQ(chunk->meta.at("endianness"), "big");
  // The sample is the start of a larger image: its header states 0xb64bbc bytes.
  EXPECT_EQ(chunk->meta.at("image_size"), std::to_string(0xb64bbc));
  EXPECT_EQ(chunk->length, image.size());
  ASSERT_EQ(chunk->issues.size(), 1u);
  EXPECT_EQ(chunk->issues[0].kind, model::GapKind::kTruncated);
}

TEST_F(LinuxKernelFormatTest, MeasuresALittleEndianZImageInsideOtherBytes) {
  Bytes zimage = Random(3000, 3);
  PutLe32(zimage, 0x24, 0x016F2818);
  PutLe32(zimage, 0x28, 0x1000);
  PutLe32(zimage, 0x2c, 0x1000 + 2000);
  Bytes blob = Random(333, 4);
  blob.insert(blob.end(), zimage.begin(), zimage.end());
  const auto chunk = format_->Probe(blob, 333);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->offset, 333u);
  EXPECT_EQ(chunk->length, 2000u);
  EXPECT_EQ(chunk->meta.at("endianness"), "little");
  EXPECT_TRUE(chunk->issues.empty());

  Bytes backwards = zimage;
  PutLe32(backwards, 0x2c, 0x800);
  EXPECT_FALSE(format_->Probe(backwards, 0));
  Bytes huge = zimage;
  PutLe32(huge, 0x2c, 0xf0000000);
  EXPECT_FALSE(format_->Probe(huge, 0));
  const Bytes header_only(zimage.begin(), zimage.begin() + 0x2e);
  EXPECT_FALSE(format_->Probe(header_only, 0));
}

TEST_F(LinuxKernelFormatTest, NeverReadsPastTheEndWhenProbedAtEveryOffset) {
  Bytes blob = Random(4096, 5);
  Append(blob, "Linux version 6.1.0");
  for (std::size_t start = 0; start <= blob.size(); ++start) {
    (void)format_->Probe(blob, start);
  }
  EXPECT_TRUE(format_->Probe(blob, 4096));
}

// Finds the first node of `format` in the tree below `node`, depth first.
const model::ExtractionNode* FindNode(const model::ExtractionNode& node, std::string_view format) {
  if (node.kind == model::ExtractionNode::Kind::kChunk && node.format == format) return &node;
  for (const auto& child : node.children) {
    if (const auto* found = FindNode(child, format)) return found;
  }
  return nullptr;
}

TEST_F(LinuxKernelFormatTest, IsReportedAndTheCarverStillLooksInside) {
  // A zImage whose span holds a uImage, whose payload holds a kernel banner.
  Bytes payload = Random(2000, 6);
  Append(payload, kDebianBanner);
  payload.push_back(0);
  const Bytes more = Random(500, 7);
  payload.insert(payload.end(), more.begin(), more.end());
  Bytes uimage(64, 0);
  const auto put_be32 = [&uimage](std::size_t at, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) uimage[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
  };
  put_be32(0, 0x27051956);
  put_be32(12, static_cast<std::uint32_t>(payload.size()));
  put_be32(24, static_cast<std::uint32_t>(crc32_z(0, payload.data(), payload.size())));
  uimage[28] = 5;
  uimage[29] = 2;
  uimage[30] = 2;
  const std::string name = "kernel";
  std::copy(name.begin(), name.end(), uimage.begin() + 32);
  put_be32(4, static_cast<std::uint32_t>(crc32_z(0, uimage.data(), 64)));
  uimage.insert(uimage.end(), payload.begin(), payload.end());

  Bytes zimage = Random(0x100, 8);
  zimage.insert(zimage.end(), uimage.begin(), uimage.end());
  PutLe32(zimage, 0x24, 0x016F2818);
  PutLe32(zimage, 0x28, 0);
  PutLe32(zimage, 0x2c, static_cast<std::uint32_t>(zimage.size()));
  Bytes image = Random(4096, 9);
  image.insert(image.end(), zimage.begin(), zimage.end());
  const Bytes tail = Random(1000, 10);
  image.insert(image.end(), tail.begin(), tail.end());
  testing::WriteFileBytes(scratch_.path() / "image.bin", image);

  FormatList formats;
  formats.push_back(formats::MakeUimageFormat());
  formats.push_back(formats::MakeLinuxKernelFormat());
  auto unpacker = Unpacker::Create(UnpackOptions{}, &formats);
  ASSERT_TRUE(unpacker);
  auto report = unpacker->Run(scratch_.path() / "image.bin", scratch_.path() / "out");
  ASSERT_TRUE(report) << report.error().ToString();

  const auto* zimage_node = FindNode(report->tree, "linux_kernel");
  ASSERT_NE(zimage_node, nullptr);
  EXPECT_EQ(zimage_node->status, model::ChunkStatus::kIdentified);
  EXPECT_EQ(zimage_node->offset, 4096u);
  EXPECT_EQ(zimage_node->length, zimage.size());
  EXPECT_EQ(zimage_node->meta.at("kind"), "arm_zimage");

  const auto* uimage_node = FindNode(report->tree, "uimage");
  ASSERT_NE(uimage_node, nullptr);
  EXPECT_EQ(uimage_node->status, model::ChunkStatus::kExtracted);
  EXPECT_EQ(uimage_node->offset, 4096u + 0x100);
  EXPECT_EQ(uimage_node->length, uimage.size());
  const auto* banner_node = FindNode(*uimage_node, "linux_kernel");
  ASSERT_NE(banner_node, nullptr);
  EXPECT_EQ(banner_node->offset, 2000u);
  EXPECT_EQ(banner_node->meta.at("version"), "5.10.0-8-amd64");
  EXPECT_TRUE(report->gaps.empty());
}

}  // namespace
}  // namespace iotmark::unpack
