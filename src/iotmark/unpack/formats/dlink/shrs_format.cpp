// SHRS: D-Link's encrypted firmware container (SGE / T&W devices: COVR, DIR-8xx, ...). A
// 1756-byte big-endian header - magic "SHRS", the plaintext length, the padded (encrypted)
// length, the AES-128-CBC IV, three SHA-512 digests (plaintext + vendor key, plaintext,
// ciphertext), an unused 512-byte field and two RSA signatures - then the ciphertext and, from
// OpenWrt's writer, a five-byte footer. The layout follows OpenWrt's dlink-sge-image.c. The payload
// is reported as an encrypted gap; nothing is decrypted or written.
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/dlink/dlink_support.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;

constexpr std::string_view kShrsMagic = "SHRS";
constexpr std::size_t kHeaderSize = 1756;
constexpr std::size_t kIvOffset = 0x0c;
constexpr std::size_t kAesBlock = 16;
constexpr std::size_t kSha512Size = 64;
constexpr std::size_t kCiphertextDigestOffset = 0x9c;
constexpr std::size_t kUnusedOffset = 0xdc;
constexpr std::size_t kUnusedSize = 512;
constexpr std::string_view kFooter("\x00\x00\x00\x00\x30", 5);

struct Header {
  std::uint32_t plain_length = 0;
  std::uint32_t cipher_length = 0;
};

// The two length words are named differently by different tools; whichever order, the larger is
// the ciphertext (whole AES blocks) and the smaller the plaintext it pads.
std::optional<Header> ParseHeader(ByteView bytes) {
  if (bytes.size() < kHeaderSize || AsChars(bytes.first(4)) != kShrsMagic) return std::nullopt;
  const std::uint32_t a = LoadBe<std::uint32_t>(bytes, 4).value_or(0);
  const std::uint32_t b = LoadBe<std::uint32_t>(bytes, 8).value_or(0);
  Header header{std::min(a, b), std::max(a, b)};
  if (header.cipher_length == 0 || header.cipher_length % kAesBlock != 0 ||
      header.cipher_length - header.plain_length > kAesBlock) {
    return std::nullopt;
  }
  return header;
}

class ShrsFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "shrs"; }
  [[nodiscard]] std::string_view description() const override {
    return "D-Link SHRS encrypted firmware (AES-128-CBC)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = ParseHeader(rest);
    if (!header) return std::nullopt;
    const bool unused_clear = IsFilledWith(rest.subspan(kUnusedOffset, kUnusedSize), 0);

    Chunk chunk;
    chunk.offset = start;
    std::uint64_t length = kHeaderSize + std::uint64_t{header->cipher_length};
    chunk.meta["encryption"] = "aes-128-cbc";
    chunk.meta["iv"] = dlink::HexBytes(rest.subspan(kIvOffset, kAesBlock));
    chunk.meta["plaintext_length"] = std::to_string(header->plain_length);
    chunk.meta["ciphertext_length"] = std::to_string(header->cipher_length);
    if (length > rest.size()) {
      // Without the digest, only the unused field's zeros vouch for the header.
      if (!unused_clear) return std::nullopt;
      chunk.meta["sha512"] = "unchecked";
      chunk.issues.push_back({GapKind::kTruncated, "SHRS header states " + std::to_string(length) +
                                                       " bytes but only " +
                                                       std::to_string(rest.size()) + " remain"});
      chunk.length = rest.size();
      return chunk;
    }
    const bool digest_ok =
        dlink::DigestEquals(EVP_sha512(), rest.subspan(kHeaderSize, header->cipher_length),
                            rest.subspan(kCiphertextDigestOffset, kSha512Size));
    if (!digest_ok && !unused_clear) return std::nullopt;
    chunk.meta["sha512"] = digest_ok ? "ok" : "mismatch";
    if (!digest_ok) {
      chunk.issues.push_back(
          {GapKind::kCorrupt, "SHRS ciphertext SHA-512 does not match the header's digest"});
    }
    if (length + kFooter.size() <= rest.size() &&
        AsChars(rest.subspan(length, kFooter.size())) == kFooter) {
      length += kFooter.size();
    }
    chunk.length = length;
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto header = ParseHeader(chunk);
    if (!header) return Fail(ErrorCode::kCorruptInput, "SHRS header does not parse");
    const std::uint64_t present =
        std::min<std::uint64_t>(header->cipher_length, chunk.size() - kHeaderSize);
    ctx.AddGap(GapKind::kEncrypted, kHeaderSize,
               "payload is AES-encrypted (SHRS): " + std::to_string(present) +
                   " bytes of AES-128-CBC ciphertext, " + std::to_string(header->plain_length) +
                   " bytes once decrypted; not extracted");
    return Ok();
  }

 private:
  static constexpr Magic kMagics[] = {{kShrsMagic, 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeShrsFormat() { return std::make_unique<ShrsFormat>(); }

}  // namespace iotmark::unpack::formats
