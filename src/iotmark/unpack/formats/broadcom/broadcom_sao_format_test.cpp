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
std::unique_ptr<const Format> MakeBroadcomSaoFormat();
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

std::uint32_t Crc(const std::uint8_t* data, std::size_t size) {
  return static_cast<std::uint32_t>(crc32_z(0, data, size));
}

// One SAO object (test-only writer, fields as in FACT's sample).
Bytes Object(const std::string& name, const Bytes& data, std::uint32_t load_address) {
  Bytes out(64, 0);
  std::copy(name.begin(), name.end(), out.begin() + 8);
  std::copy_n("SOBJ", 4, out.begin());
  out[12] = 1;
  PutBe32(out, 0x10, static_cast<std::uint32_t>(data.size()));
  PutBe32(out, 0x14, static_cast<std::uint32_t>(data.size()));
  PutBe32(out, 0x18, 0x002a0001);
  PutBe32(out, 0x1c, 0xdfff0005);
  PutBe32(out, 0x20, 0xffffffff);
  PutBe32(out, 0x24, load_address);
  PutBe32(out, 0x34, Crc(data.data(), data.size()));
  PutBe32(out, 0x38, 0x00000200);
  PutBe32(out, 0x3c, 0x03000000);
  PutBe32(out, 4, Crc(out.data() + 8, 56));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes Concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
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

class BroadcomSaoFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeBroadcomSaoFormat();
  ScratchDir scratch_;
};

TEST_F(BroadcomSaoFormatTest, ReadsFactsSampleObjectByObject) {
  const auto path = testing::SharedSamplePath("broadcom/fact_broadcom-sao.bin");
  if (path.empty()) GTEST_SKIP() << "shared sample broadcom/fact_broadcom-sao.bin is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("objects"), "4");
  EXPECT_EQ(meta.at("DTBB.load_address"), "0x15d00000");
  EXPECT_EQ(meta.at("KRNL.load_address"), "0x00008000");
  EXPECT_EQ(meta.at("RTFS.load_address"), "0x15e00000");
  EXPECT_EQ(meta.at("RTFS.data_crc"), "ok");
  EXPECT_EQ(meta.at("KRNL.header_crc"), "ok");
  // FACT's sample carries one header whose CRC does not match; that is reported, not hidden.
  EXPECT_EQ(meta.at("META.header_crc"), "mismatch");
  EXPECT_EQ(meta.at("META.data_crc"), "ok");
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kCorrupt, "META"));
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 4u);
  const Bytes meta_file = result.Read("META");
  EXPECT_EQ(std::string(meta_file.begin(), meta_file.end()), "{\"extractor\":\"broadcom-sao\"}\n");
  EXPECT_EQ(result.Find("DTBB")->size, 0x77u);
  EXPECT_EQ(result.Read("DTBB")[0], 0xd0);  // flattened device tree magic d00dfeed
  EXPECT_EQ(result.Find("KRNL")->size, 0x28u);
  const Bytes rootfs = result.Read("RTFS");
  ASSERT_EQ(rootfs.size(), 4096u);
  EXPECT_EQ(std::string(rootfs.begin(), rootfs.begin() + 4), "hsqs");
}

TEST_F(BroadcomSaoFormatTest, ExtractsACraftedImageWithARealRootfsAtAnOffset) {
  const auto dir = scratch_.path() / "build";
  ASSERT_EQ(
      testing::RunCommand("set -e; mkdir -p '" + dir.string() + "/root/bin'; cp /bin/busybox '" +
                          dir.string() + "/root/bin/'; mksquashfs '" + dir.string() + "/root' '" +
                          dir.string() + "/rootfs.sqfs' -quiet -noappend >/dev/null"),
      0);
  const Bytes rootfs = testing::ReadFileBytes(dir / "rootfs.sqfs");
  const Bytes kernel = Pattern(5000, 2);
  const Bytes image = Concat({Object("KRNL", kernel, 0x8000), Object("RTFS", rootfs, 0x15e00000),
                              Object("RTFS", Pattern(10, 3), 0)});
  Bytes blob = Pattern(1000, 4);
  blob.insert(blob.end(), image.begin(), image.end());
  blob.resize(blob.size() + 100, 0);
  const auto result = ProbeAndExtract(*format_, blob, 1000, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 1000u);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  ASSERT_EQ(result.entries.size(), 3u);
  EXPECT_EQ(result.Find("KRNL")->sha256, Sha256::Hex(kernel));
  EXPECT_EQ(result.Find("RTFS")->sha256, Sha256::Hex(rootfs));
  EXPECT_EQ(result.Find("RTFS.2")->size, 10u);
}

TEST_F(BroadcomSaoFormatTest, ReportsDamagedObjectData) {
  Bytes image = Concat({Object("KRNL", Pattern(100, 1), 0), Object("RTFS", Pattern(100, 2), 0)});
  image[64 + 10] ^= 1;
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_EQ(result.chunk->meta.at("KRNL.data_crc"), "mismatch");
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kCorrupt, "data CRC-32 mismatch"));
  EXPECT_EQ(result.entries.size(), 2u);
}

TEST_F(BroadcomSaoFormatTest, ClipsATruncatedImage) {
  const Bytes full =
      Concat({Object("KRNL", Pattern(100, 1), 0), Object("RTFS", Pattern(1000, 2), 0)});
  const Bytes cut(full.begin(), full.begin() + 400);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, 400u);
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kTruncated, "RTFS"));
  EXPECT_EQ(result.chunk->meta.at("RTFS.data_crc"), "unchecked");
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("RTFS")->size, 400u - 228u);
  EXPECT_EQ(result.gaps.size(), 1u);
}

TEST_F(BroadcomSaoFormatTest, RejectsObjectsThatDoNotHoldTogether) {
  const Bytes good = Object("KRNL", Pattern(100, 1), 0);
  ASSERT_TRUE(format_->Probe(good, 0));
  Bytes bad_name = good;
  bad_name[9] = '/';
  EXPECT_FALSE(format_->Probe(bad_name, 0));
  Bytes both_crcs_wrong = good;
  both_crcs_wrong[5] ^= 1;
  both_crcs_wrong[70] ^= 1;
  EXPECT_FALSE(format_->Probe(both_crcs_wrong, 0));
  EXPECT_FALSE(format_->Probe(Bytes(good.begin(), good.begin() + 63), 0));
  for (std::uint8_t seed = 0; seed < 40; ++seed) {
    Bytes noise = Pattern(1024, seed);
    std::copy_n("SOBJKRNL", 8, noise.begin() + 16);
    EXPECT_FALSE(format_->Probe(noise, 16)) << int{seed};
  }
}

TEST_F(BroadcomSaoFormatTest, SurvivesTruncationAndRandomDamage) {
  const Bytes full = Concat({Object("META", Pattern(30, 1), 0), Object("KRNL", Pattern(50, 2), 0),
                             Object("RTFS", Pattern(90, 3), 0)});
  for (std::size_t size = 0; size <= full.size(); size += 5) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
    if (result.chunk) {
      EXPECT_LE(result.chunk->length, size);
      EXPECT_TRUE(result.status) << size;
    }
  }
  std::uint32_t x = 71;
  for (int round = 0; round < 300; ++round) {
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
