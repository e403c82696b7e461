#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeShrsFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

using Bytes = std::vector<std::uint8_t>;
using model::GapKind;
using testing::ProbeAndExtract;
using testing::ScratchDir;

constexpr std::size_t kHeader = 1756;

void PutBe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
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

Bytes Sha512(const Bytes& data) {
  Bytes out(64);
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha512(), nullptr);
  return out;
}

// An SHRS image as OpenWrt's dlink-sge-image writes it (test-only writer, with a made-up key):
// zero padding to whole AES blocks, AES-128-CBC, digests, zero rsa_pub field, dummy signatures,
// the five-byte footer.
Bytes BuildShrs(const Bytes& plain) {
  const Bytes key = Pattern(16, 1);
  const Bytes iv = Pattern(16, 2);
  const std::size_t pad = 16 - plain.size() % 16;
  Bytes padded = plain;
  padded.resize(plain.size() + pad, 0);
  Bytes cipher(padded.size() + 16);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int out1 = 0;
  int out2 = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), nullptr, key.data(), iv.data());
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  EVP_EncryptUpdate(ctx, cipher.data(), &out1, padded.data(), static_cast<int>(padded.size()));
  EVP_EncryptFinal_ex(ctx, cipher.data() + out1, &out2);
  EVP_CIPHER_CTX_free(ctx);
  cipher.resize(static_cast<std::size_t>(out1 + out2));

  Bytes out(kHeader, 0);
  out[0] = 'S';
  out[1] = 'H';
  out[2] = 'R';
  out[3] = 'S';
  PutBe32(out, 4, static_cast<std::uint32_t>(plain.size()));
  PutBe32(out, 8, static_cast<std::uint32_t>(cipher.size()));
  std::copy(iv.begin(), iv.end(), out.begin() + 12);
  const Bytes vendor = Pattern(64, 3);
  std::copy(vendor.begin(), vendor.end(), out.begin() + 0x1c);
  const Bytes before = Sha512(plain);
  std::copy(before.begin(), before.end(), out.begin() + 0x5c);
  const Bytes post = Sha512(cipher);
  std::copy(post.begin(), post.end(), out.begin() + 0x9c);
  const Bytes signatures = Pattern(1024, 4);
  std::copy(signatures.begin(), signatures.end(), out.begin() + 0x2dc);
  out.insert(out.end(), cipher.begin(), cipher.end());
  const Bytes footer = {0, 0, 0, 0, 0x30};
  out.insert(out.end(), footer.begin(), footer.end());
  return out;
}

bool HasIssue(const Chunk& chunk, GapKind kind, const std::string& text) {
  return std::any_of(chunk.issues.begin(), chunk.issues.end(), [&](const ProbeIssue& issue) {
    return issue.kind == kind && issue.reason.find(text) != std::string::npos;
  });
}

class ShrsFormatTest : public ::testing::Test {
 protected:
  std::unique_ptr<const Format> format_ = formats::MakeShrsFormat();
  ScratchDir scratch_;
};

TEST_F(ShrsFormatTest, ReportsTheCiphertextAsAnEncryptedGapAndWritesNothing) {
  const Bytes image = BuildShrs(testing::ReadFileBytes("/bin/busybox"));
  Bytes blob = Pattern(333, 9);
  blob.insert(blob.end(), image.begin(), image.end());
  blob.resize(blob.size() + 4096, 0xff);

  const auto result = ProbeAndExtract(*format_, blob, 333, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->offset, 333u);
  EXPECT_EQ(result.chunk->length, image.size());
  EXPECT_TRUE(result.chunk->issues.empty());
  EXPECT_EQ(result.chunk->meta.at("sha512"), "ok");
  EXPECT_EQ(result.chunk->meta.at("encryption"), "aes-128-cbc");
  EXPECT_EQ(result.chunk->meta.at("iv").size(), 32u);
  EXPECT_EQ(result.chunk->meta.at("ciphertext_length"), std::to_string(image.size() - kHeader - 5));
  ASSERT_TRUE(result.status);
  EXPECT_TRUE(result.entries.empty());
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, GapKind::kEncrypted);
  EXPECT_EQ(result.gaps[0].reason.rfind("payload is AES-encrypted (SHRS)", 0), 0u);
}

TEST_F(ShrsFormatTest, ReportsADamagedCiphertextDigest) {
  Bytes image = BuildShrs(Pattern(5000, 1));
  image[kHeader + 100] ^= 0x80;
  const auto result = ProbeAndExtract(*format_, image, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->meta.at("sha512"), "mismatch");
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kCorrupt, "SHA-512"));
  EXPECT_TRUE(result.entries.empty());
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_EQ(result.gaps[0].kind, GapKind::kEncrypted);
}

TEST_F(ShrsFormatTest, ClipsATruncatedImage) {
  const Bytes full = BuildShrs(Pattern(5000, 1));
  const Bytes cut(full.begin(), full.begin() + kHeader + 1000);
  const auto result = ProbeAndExtract(*format_, cut, 0, scratch_);
  ASSERT_TRUE(result.chunk);
  EXPECT_EQ(result.chunk->length, cut.size());
  EXPECT_TRUE(HasIssue(*result.chunk, GapKind::kTruncated, "only 2756 remain"));
  EXPECT_EQ(result.chunk->meta.at("sha512"), "unchecked");
  ASSERT_EQ(result.gaps.size(), 1u);
  EXPECT_NE(result.gaps[0].reason.find("1000 bytes"), std::string::npos);
}

TEST_F(ShrsFormatTest, RejectsHeadersThatDoNotHoldTogether) {
  const Bytes good = BuildShrs(Pattern(100, 1));
  ASSERT_TRUE(format_->Probe(good, 0));

  Bytes unaligned = good;
  PutBe32(unaligned, 8, 113);
  EXPECT_FALSE(format_->Probe(unaligned, 0));

  Bytes too_much_padding = good;
  PutBe32(too_much_padding, 4, 50);
  EXPECT_FALSE(format_->Probe(too_much_padding, 0));

  // A wrong digest is believed only while the unused field is clear.
  Bytes noisy = good;
  noisy[kHeader] ^= 1;
  EXPECT_TRUE(format_->Probe(noisy, 0));
  noisy[0x100] = 1;
  EXPECT_FALSE(format_->Probe(noisy, 0));

  EXPECT_FALSE(format_->Probe(Bytes(good.begin(), good.begin() + kHeader - 1), 0));
}

TEST_F(ShrsFormatTest, FindsNothingInRandomBytes) {
  for (std::uint8_t seed = 0; seed < 30; ++seed) {
    Bytes noise = Pattern(8192, seed);
    noise[10] = 'S';
    noise[11] = 'H';
    noise[12] = 'R';
    noise[13] = 'S';
    EXPECT_FALSE(format_->Probe(noise, 10)) << int{seed};
  }
}

TEST_F(ShrsFormatTest, SurvivesTruncationAndRandomDamage) {
  const Bytes full = BuildShrs(Pattern(200, 1));
  for (std::size_t size = 0; size <= full.size(); size += 31) {
    const Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    ScratchDir scratch;
    const auto result = ProbeAndExtract(*format_, cut, 0, scratch);
    if (result.chunk) {
      EXPECT_LE(result.chunk->length, size);
      EXPECT_TRUE(result.status) << size;
      EXPECT_TRUE(result.entries.empty());
    }
  }
  std::uint32_t x = 3;
  for (int round = 0; round < 200; ++round) {
    Bytes image = full;
    for (int i = 0; i < 3; ++i) {
      x = x * 1103515245u + 12345u;
      image[4 + (x >> 8) % 24] ^= static_cast<std::uint8_t>(x >> 20);
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
