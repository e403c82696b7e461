// D-Link "encrpted_img" firmware (DIR-X1560, DIR-X5460 and kin): the 12-byte magic
// "encrpted_img" (sic), a big-endian payload length, then that many bytes of AES-CBC ciphertext
// (a UBI image once decrypted). The payload is reported as an encrypted gap; nothing is written.
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

constexpr std::string_view kMagic = "encrpted_img";
constexpr std::size_t kHeaderSize = 16;
constexpr std::uint32_t kAesBlock = 16;

std::optional<std::uint32_t> PayloadLength(ByteView bytes) {
  if (bytes.size() < kHeaderSize || AsChars(bytes.first(kMagic.size())) != kMagic) {
    return std::nullopt;
  }
  const std::uint32_t length = LoadBe<std::uint32_t>(bytes, kMagic.size()).value_or(0);
  // CBC ciphertext comes in whole blocks.
  if (length == 0 || length % kAesBlock != 0) return std::nullopt;
  return length;
}

class DlinkEncryptedFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "dlink_encrypted"; }
  [[nodiscard]] std::string_view description() const override {
    return "D-Link encrpted_img encrypted firmware";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto length = PayloadLength(rest);
    if (!length) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = kHeaderSize + std::uint64_t{*length};
    chunk.meta["encryption"] = "aes-cbc";
    chunk.meta["ciphertext_length"] = std::to_string(*length);
    if (chunk.length > rest.size()) {
      chunk.issues.push_back(
          {GapKind::kTruncated, "encrpted_img header states " + std::to_string(chunk.length) +
                                    " bytes but only " + std::to_string(rest.size()) + " remain"});
      chunk.length = rest.size();
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto length = PayloadLength(chunk);
    if (!length) return Fail(ErrorCode::kCorruptInput, "encrpted_img header does not parse");
    ctx.AddGap(GapKind::kEncrypted, kHeaderSize,
               "payload is AES-encrypted (D-Link encrpted_img): " +
                   std::to_string(chunk.size() - kHeaderSize) +
                   " bytes of AES-CBC ciphertext; not extracted");
    return Ok();
  }

 private:
  static constexpr Magic kMagics[] = {{kMagic, 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeDlinkEncryptedFormat() {
  return std::make_unique<DlinkEncryptedFormat>();
}

}  // namespace iotmark::unpack::formats
