#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeDlinkMh01Format();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using model::GapKind;
using testing::ProbeAndExtract;
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

// An MH01 container (test-only writer): header, first file, second file.
Bytes BuildMh01(const Bytes& first, const Bytes& second, bool little = true) {
  Bytes out = {'M', 'H', '0', '1'};
  const auto put = [&](std::uint32_t value) {
    for (int i = 0; i < 4; ++i) {
      out.push_back(static_cast<std::uint8_t>(little ? value >> (8 * i) : value >> (24 - 8 * i)));
    }
  };
  put(static_cast<std::uint32_t>(first.size()));
  put(static_cast<std::uint32_t>(second.size()));
  out.push_back(little ? 0x2b : 0x1a);
  out.push_back(little ? 0x1a : 0x2b);
  out.push_back(0x12);
  out.push_back(0x34);
  out.insert(out.end(), first.begin(), first.end());
  out.insert(out.end(), second.begin(), second.end());
  return out;
}

Bytes Text(const std::string& text) { return Bytes(text.begin(), text.end()); }

class DlinkMh01FormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeDlinkMh01Format();
  ScratchDir scratch_;
};

TEST_F(DlinkMh01FormatTest, ReportsTheSampleAsEncryptedWithItsIv) {
  const auto path = testing::SharedSamplePath("dlink/fact_dlink_fw_mh01_test.bin");
  if (path.empty()) GTEST_SKIP() << "shared sample dlink/fact_dlink_fw_mh01_test.bin is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  const auto& meta = result.chunk->meta;
  EXPECT_EQ(meta.at("endianness"), "little");
  EXPECT_EQ(meta.at("signature_length"), "256");
  EXPECT_EQ(meta.at("iv"), "451b05742ed6e74e9087590e7bd821a5");
  EXPECT_EQ(meta.at("salt"), "fc42c7dd077b185b");
  EXPECT_EQ(meta.at("ciphertext_length"), "304");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.entries.empty());
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, GapKind::kEncrypted);
  EXPECT_EQ(result.gaps[0].offset, 0x51u);
  EXPECT_EQ(result.gaps[0].reason.rfind("payload is AES-encrypted (D-Link MH01)", 0), 0u);
}

TEST_F(DlinkMh01FormatTest, ReportsACraftedEncryptedImageAtAnOffset) {
  Bytes payload = Text("Salted__");
  const Bytes rest = Pattern(1024, 3);
  payload.insert(payload.end(), rest.begin(), rest.end());
  const Bytes inner = BuildMh01(Text("00112233445566778899aabbccddeeff\n"), payload);
  const Bytes image = BuildMh01(inner, Pattern(512, 4), /*little=*/false);
  Bytes blob = Pattern(77, 1);
  blob.insert(blob.end(), image.begin(), image.end());
  blob.resize(blob.size() + 99, 0);
  const auto result = ProbeAndExtract(*format_, blob, 77, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_EQ(result.chunk->meta.at("endianness"), "big");
  EXPECT_EQ(result.chunk->meta.at("iv"), "00112233445566778899aabbccddeeff");
  EXPECT_TRUE(result.entries.empty());
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, GapKind::kEncrypted);
}

TEST_F(DlinkMh01FormatTest, ExtractsAPlainImageAndItsSignature) {
  const Bytes firmware = testing::ReadFileBytes("/bin/busybox");
  const Bytes signature = Pattern(256, 5);
  const auto result = ProbeAndExtract(*format_, BuildMh01(firmware, signature), 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("encryption"), "none");
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.Find("firmware")->sha256, Sha256::Hex(firmware));
  EXPECT_EQ(result.Find("firmware")->type, "elf");
  EXPECT_EQ(result.Find("signature")->sha256, Sha256::Hex(signature));
}

TEST_F(DlinkMh01FormatTest, ClipsATruncatedImage) {
  const Bytes image = BuildMh01(Pattern(1000, 1), Pattern(256, 2));
  const Bytes cut(image.begin(), image.begin() + 500);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, 500u);
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_TRUE(result.status);
  ASSERT_EQ(result.entries.size(), 1u);
  EXPECT_EQ(result.Find("firmware")->size, 484u);
  EXPECT_EQ(result.gaps.size(), 2u);
}

TEST_F(DlinkMh01FormatTest, RejectsHeadersThatDoNotHoldTogether) {
  const Bytes good = BuildMh01(Pattern(100, 1), Pattern(256, 2));
  ASSERT_TRUE(format_->Probe(good, 0));
  Bytes bad_marker = good;
  bad_marker[12] = 0x2c;
  EXPECT_FALSE(format_->Probe(bad_marker, 0));
  EXPECT_FALSE(format_->Probe(BuildMh01({}, Pattern(256, 2)), 0));
  EXPECT_FALSE(format_->Probe(BuildMh01(Pattern(10, 1), {}), 0));
  EXPECT_FALSE(format_->Probe(BuildMh01(Pattern(10, 1), Pattern(70000, 2)), 0));
  EXPECT_FALSE(format_->Probe(Bytes(good.begin(), good.begin() + 15), 0));
  for (std::uint8_t seed = 0; seed < 30; ++seed) {
    Bytes noise = Pattern(512, seed);
    noise[0] = 'M';
    noise[1] = 'H';
    noise[2] = '0';
    noise[3] = '1';
    EXPECT_FALSE(format_->Probe(noise, 0)) << int{seed};
  }
}

TEST_F(DlinkMh01FormatTest, SurvivesTruncationAndRandomDamage) {
  Bytes payload = Text("Salted__");
  const Bytes rest = Pattern(64, 3);
  payload.insert(payload.end(), rest.begin(), rest.end());
  const Bytes full =
      BuildMh01(BuildMh01(Text("00112233445566778899aabbccddeeff\n"), payload), Pattern(32, 4));
  for (std::size_t size = 0; size <= full.size(); size += 3) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
    if (result.chunk) {
      EXPECT_LE(result.chunk->length, size);
      EXPECT_TRUE(result.status) << size;
    }
  }
  std::uint32_t x = 11;
  for (int round = 0; round < 300; ++round) {
    Bytes image = full;
    for (int i = 0; i < 2; ++i) {
      x = x * 1103515245u + 12345u;
      image[(x >> 8) % 64] ^= static_cast<std::uint8_t>(x >> 20);
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
