#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeDlinkEncryptedFormat();
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

// An encrpted_img file (test-only writer): magic, big-endian length, ciphertext.
Bytes BuildImage(const Bytes& ciphertext) {
  const std::string magic = "encrpted_img";
  Bytes out(magic.begin(), magic.end());
  const auto size = static_cast<std::uint32_t>(ciphertext.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(size >> (24 - 8 * i)));
  out.insert(out.end(), ciphertext.begin(), ciphertext.end());
  return out;
}

class DlinkEncryptedFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeDlinkEncryptedFormat();
  ScratchDir scratch_;
};

TEST_F(DlinkEncryptedFormatTest, ReportsTheSampleAsEncryptedWithoutWritingIt) {
  const auto path = testing::SharedSamplePath("dlink/fact_dlink_testfile.encrpted_img");
  if (path.empty())
    GTEST_SKIP() << "shared sample dlink/fact_dlink_testfile.encrpted_img is absent";
  const Bytes image = testing::ReadFileBytes(path);
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.at("ciphertext_length"), "32");
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.entries.empty());
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, GapKind::kEncrypted);
  EXPECT_EQ(result.gaps[0].offset, 16u);
  EXPECT_EQ(result.gaps[0].reason.rfind("payload is AES-encrypted (D-Link encrpted_img)", 0), 0u);
}

TEST_F(DlinkEncryptedFormatTest, FindsACraftedImageAtAnOffset) {
  const Bytes image = BuildImage(Pattern(4096, 1));
  Bytes blob = Pattern(100, 2);
  blob.insert(blob.end(), image.begin(), image.end());
  blob.resize(blob.size() + 50, 0);
  const auto result = ProbeAndExtract(*format_, blob, 100, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 100u);
  EXPECT_EQ(result.chunk->length, image.size());
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, GapKind::kEncrypted);
  EXPECT_TRUE(result.entries.empty());
}

TEST_F(DlinkEncryptedFormatTest, ClipsATruncatedImage) {
  const Bytes image = BuildImage(Pattern(4096, 1));
  const Bytes cut(image.begin(), image.begin() + 1000);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, 1000u);
  ASSERT_EQ(result.chunk->issues.size(), 1u);
  EXPECT_EQ(result.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_NE(result.gaps[0].reason.find("984 bytes"), std::string::npos);
}

TEST_F(DlinkEncryptedFormatTest, RejectsLengthsThatAreNotWholeAesBlocks) {
  EXPECT_TRUE(format_->Probe(BuildImage(Pattern(32, 1)), 0));
  EXPECT_FALSE(format_->Probe(BuildImage(Pattern(33, 1)), 0));
  EXPECT_FALSE(format_->Probe(BuildImage({}), 0));
  const Bytes image = BuildImage(Pattern(32, 1));
  EXPECT_FALSE(format_->Probe(Bytes(image.begin(), image.begin() + 15), 0));
  for (std::uint8_t seed = 0; seed < 20; ++seed) {
    EXPECT_FALSE(format_->Probe(Pattern(64, seed), 0));
  }
}

}  // namespace
}  // namespace iotmark::unpack
