#include <gtest/gtest.h>
#include <openssl/evp.h>

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
std::unique_ptr<const Format> MakeSeamaFormat();
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

// Metadata as oseama writes it: each string NUL-terminated and padded to four bytes.
Bytes Meta(const std::vector<std::string>& entries) {
  Bytes out;
  for (const auto& entry : entries) {
    out.insert(out.end(), entry.begin(), entry.end());
    out.push_back(0);
    while (out.size() % 4 != 0) out.push_back(0);
  }
  return out;
}

Bytes Header(std::size_t meta_size, std::uint32_t image_size) {
  Bytes out = {0x5e, 0xa3, 0xa4, 0x17, 0, 0, 0, 0, 0, 0, 0, 0};
  out[6] = static_cast<std::uint8_t>(meta_size >> 8);
  out[7] = static_cast<std::uint8_t>(meta_size);
  PutBe32(out, 8, image_size);
  return out;
}

// A SEAMA entity (test-only writer): header, MD5 of the image, metadata, image.
Bytes Entity(const std::vector<std::string>& meta_entries, const Bytes& image) {
  const Bytes meta = Meta(meta_entries);
  Bytes out = Header(meta.size(), static_cast<std::uint32_t>(image.size()));
  std::uint8_t digest[16];
  unsigned int size = 0;
  EVP_Digest(image.data(), image.size(), digest, &size, EVP_md5(), nullptr);
  out.insert(out.end(), digest, digest + 16);
  out.insert(out.end(), meta.begin(), meta.end());
  out.insert(out.end(), image.begin(), image.end());
  return out;
}

Bytes Seal(const std::vector<std::string>& meta_entries, const std::vector<Bytes>& entities) {
  const Bytes meta = Meta(meta_entries);
  Bytes out = Header(meta.size(), 0);
  out.insert(out.end(), meta.begin(), meta.end());
  for (const Bytes& entity : entities) out.insert(out.end(), entity.begin(), entity.end());
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

const std::vector<std::string> kDlinkMeta = {"dev=/dev/mtdblock/1", "type=firmware",
                                             "signature=wrgac25_dlink.2013gui_dir880"};

class SeamaFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeSeamaFormat();
  ScratchDir scratch_;
};

TEST_F(SeamaFormatTest, ExtractsEveryEntityOfASealWithItsMetadata) {
  const auto dir = scratch_.path() / "build";
  ASSERT_EQ(
      testing::RunCommand("set -e; mkdir -p '" + dir.string() + "/root/bin'; cd '" + dir.string() +
                          "'; cp /bin/busybox root/bin/; xz --format=lzma -1 -c /bin/busybox "
                          "> kernel.lzma; mksquashfs root rootfs.sqfs -quiet -noappend "
                          ">/dev/null; cat kernel.lzma rootfs.sqfs > firmware.bin"),
      0);
  const Bytes firmware = testing::ReadFileBytes(dir / "firmware.bin");
  ASSERT_FALSE(firmware.empty());
  const Bytes second = Pattern(1000, 3);
  const Bytes seal = Seal({"signature=wrgac25_dlink.2013gui_dir880"},
                          {Entity(kDlinkMeta, firmware), Entity({"type=config"}, second)});
  const Bytes blob = Embed(seal, 512, 64);

  const auto result = ProbeAndExtract(*format_, blob, 512, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 512u);
  EXPECT_EQ(result.chunk->length, seal.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("sealed"), "yes");
  EXPECT_EQ(meta.at("entities"), "2");
  EXPECT_EQ(meta.at("signature"), "wrgac25_dlink.2013gui_dir880");
  EXPECT_EQ(meta.at("seal.signature"), "wrgac25_dlink.2013gui_dir880");
  EXPECT_EQ(meta.at("entity0.dev"), "/dev/mtdblock/1");
  EXPECT_EQ(meta.at("entity0.type"), "firmware");
  EXPECT_EQ(meta.at("entity0.md5"), "ok");
  EXPECT_EQ(meta.at("entity1.type"), "config");
  EXPECT_EQ(meta.at("entity1.md5"), "ok");
  ASSERT_TRUE(result.status) << result.status.error().ToString();
  EXPECT_TRUE(result.gaps.empty());
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("entity0")->sha256, Sha256::Hex(firmware));
  EXPECT_EQ(result.Find("entity1")->sha256, Sha256::Hex(second));
}

TEST_F(SeamaFormatTest, ReadsALoneEntity) {
  const Bytes image = Pattern(3000, 5);
  const Bytes entity = Entity(kDlinkMeta, image);
  const auto result = ProbeAndExtract(*format_, Embed(entity, 3, 100), 3, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, entity.size());
  EXPECT_EQ(result.chunk->meta.at("sealed"), "no");
  EXPECT_EQ(result.chunk->meta.at("signature"), "wrgac25_dlink.2013gui_dir880");
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.entries[0].sha256, Sha256::Hex(image));
}

TEST_F(SeamaFormatTest, ReportsAnMd5MismatchAndStillExtracts) {
  Bytes entity = Entity(kDlinkMeta, Pattern(500, 1));
  entity.back() ^= 1;
  const auto result = ProbeAndExtract(*format_, entity, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("entity0.md5"), "mismatch");
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kCorrupt, "MD5 mismatch"));
  EXPECT_EQ(result.entries.size(), 1u);
}

TEST_F(SeamaFormatTest, ClipsATruncatedSeal) {
  const Bytes seal =
      Seal({}, {Entity(kDlinkMeta, Pattern(500, 1)), Entity({"a=b"}, Pattern(9, 2))});
  const Bytes cut(seal.begin(), seal.begin() + 300);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, cut.size());
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kTruncated, "only 300 remain"));
  EXPECT_EQ(result.chunk->meta.at("entity0.md5"), "unchecked");
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.gaps.size(), 1u);
}

TEST_F(SeamaFormatTest, RejectsHeadersThatDoNotHoldTogether) {
  const Bytes good = Entity(kDlinkMeta, Pattern(100, 1));
  ASSERT_TRUE(format_->Probe(good, 0));

  Bytes odd_meta = good;
  odd_meta[7] += 1;
  EXPECT_FALSE(format_->Probe(odd_meta, 0));

  Bytes reserved = good;
  reserved[5] = 1;
  EXPECT_FALSE(format_->Probe(reserved, 0));

  Bytes binary_meta = good;
  binary_meta[28 + 2] = 0x01;
  EXPECT_FALSE(format_->Probe(binary_meta, 0));

  // Without metadata, only a matching digest makes the six magic bytes believable.
  Bytes bare = Entity({}, Pattern(100, 1));
  EXPECT_TRUE(format_->Probe(bare, 0));
  bare[40] ^= 1;
  EXPECT_FALSE(format_->Probe(bare, 0));

  EXPECT_FALSE(format_->Probe(Seal({"a=b"}, {}), 0));
  EXPECT_FALSE(format_->Probe(Bytes(good.begin(), good.begin() + 11), 0));
}

TEST_F(SeamaFormatTest, FindsNothingInRandomBytes) {
  for (std::uint8_t seed = 0; seed < 50; ++seed) {
    Bytes noise = Pattern(2048, seed);
    const Bytes magic = {0x5e, 0xa3, 0xa4, 0x17, 0, 0};
    std::copy(magic.begin(), magic.end(), noise.begin() + 64);
    EXPECT_FALSE(format_->Probe(noise, 64)) << int{seed};
  }
}

TEST_F(SeamaFormatTest, SurvivesTruncationAndRandomDamage) {
  const Bytes full =
      Seal({"x=y"}, {Entity(kDlinkMeta, Pattern(64, 1)), Entity({"type=b"}, Pattern(64, 2))});
  for (std::size_t size = 0; size <= full.size(); size += 7) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
    if (result.chunk) {
      EXPECT_LE(result.chunk->length, size);
      EXPECT_TRUE(result.status) << size;
    }
  }
  std::uint32_t x = 17;
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
