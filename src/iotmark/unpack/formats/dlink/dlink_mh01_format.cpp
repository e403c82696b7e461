// D-Link "MH01" firmware (DIR-X / M-series): a 16-byte header - magic "MH01", the offset of the
// second file past the header, its length, an endianness marker (2b 1a: little, 1a 2b: big) and
// two unknown bytes - then the first file and the second (a signature). Vendor update files nest
// two of them: the outer one wraps an inner MH01 (whose first file is the AES IV as hex text and
// whose second is an OpenSSL "Salted__" AES-128-CBC ciphertext) and a signature. Once
// decrypted, the payload is again an MH01 holding the firmware and its signature.
// Layout facts from FACT's dlink_mh01 unpacker. An encrypted payload is reported as a gap.
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

constexpr std::string_view kMagic = "MH01";
constexpr std::size_t kHeaderSize = 16;
// The second file is a signature or checksum: small.
constexpr std::uint32_t kMaxSecondFile = 64 * 1024;
constexpr std::uint64_t kMaxFirstFile = std::uint64_t{1} << 30;
constexpr std::string_view kSaltedMagic = "Salted__";
constexpr std::size_t kSaltSize = 8;
constexpr std::size_t kIvHexLength = 32;

struct Mh01 {
  bool little = true;
  std::uint32_t first_length = 0;
  std::uint32_t second_length = 0;
  [[nodiscard]] std::uint64_t Length() const {
    return kHeaderSize + std::uint64_t{first_length} + second_length;
  }
};

std::optional<Mh01> ParseHeader(ByteView bytes) {
  if (bytes.size() < kHeaderSize || AsChars(bytes.first(4)) != kMagic) return std::nullopt;
  Mh01 header;
  if (bytes[12] == 0x2b && bytes[13] == 0x1a) {
    header.little = true;
  } else if (bytes[12] == 0x1a && bytes[13] == 0x2b) {
    header.little = false;
  } else {
    return std::nullopt;
  }
  const auto load = [&](std::size_t at) {
    return header.little ? LoadLe<std::uint32_t>(bytes, at).value_or(0)
                         : LoadBe<std::uint32_t>(bytes, at).value_or(0);
  };
  header.first_length = load(4);
  header.second_length = load(8);
  if (header.first_length == 0 || header.first_length > kMaxFirstFile ||
      header.second_length == 0 || header.second_length > kMaxSecondFile) {
    return std::nullopt;
  }
  return header;
}

// The encrypted layout: what the inner MH01 says about the ciphertext.
struct Encrypted {
  std::string iv;
  std::string salt;
  std::uint64_t ciphertext_offset = 0;  // in the outer chunk, after "Salted__" and the salt
  std::uint64_t ciphertext_length = 0;
};

bool IsHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::optional<Encrypted> FindEncrypted(ByteView chunk, const Mh01& outer) {
  if (chunk.size() < kHeaderSize + outer.first_length) return std::nullopt;
  const ByteView first = chunk.subspan(kHeaderSize, outer.first_length);
  const auto inner = ParseHeader(first);
  if (!inner || inner->Length() != first.size()) return std::nullopt;
  std::string_view iv = AsChars(first.subspan(kHeaderSize, inner->first_length));
  if (!iv.empty() && iv.back() == '\n') iv.remove_suffix(1);
  if (iv.size() != kIvHexLength || !IsHex(iv)) return std::nullopt;
  const ByteView payload = first.subspan(kHeaderSize + inner->first_length);
  if (payload.size() < kSaltedMagic.size() + kSaltSize ||
      AsChars(payload.first(kSaltedMagic.size())) != kSaltedMagic) {
    return std::nullopt;
  }
  Encrypted encrypted;
  encrypted.iv = std::string(iv);
  encrypted.salt = dlink::HexBytes(payload.subspan(kSaltedMagic.size(), kSaltSize));
  encrypted.ciphertext_offset =
      2 * kHeaderSize + inner->first_length + kSaltedMagic.size() + kSaltSize;
  encrypted.ciphertext_length = payload.size() - kSaltedMagic.size() - kSaltSize;
  return encrypted;
}

class DlinkMh01Format final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "dlink_mh01"; }
  [[nodiscard]] std::string_view description() const override {
    return "D-Link MH01 firmware container";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = ParseHeader(rest);
    if (!header) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = header->Length();
    chunk.meta["endianness"] = header->little ? "little" : "big";
    chunk.meta["signature_length"] = std::to_string(header->second_length);
    if (const auto encrypted = FindEncrypted(rest, *header)) {
      chunk.meta["encryption"] = "aes-128-cbc (openssl salted)";
      chunk.meta["iv"] = encrypted->iv;
      chunk.meta["salt"] = encrypted->salt;
      chunk.meta["ciphertext_length"] = std::to_string(encrypted->ciphertext_length);
    } else {
      chunk.meta["encryption"] = "none";
    }
    if (header->Length() > rest.size()) {
      chunk.issues.push_back(
          {GapKind::kTruncated, "MH01 header states " + std::to_string(header->Length()) +
                                    " bytes but only " + std::to_string(rest.size()) + " remain"});
      chunk.length = rest.size();
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto header = ParseHeader(chunk);
    if (!header) return Fail(ErrorCode::kCorruptInput, "MH01 header does not parse");
    if (const auto encrypted = FindEncrypted(chunk, *header)) {
      ctx.AddGap(GapKind::kEncrypted, encrypted->ciphertext_offset,
                 "payload is AES-encrypted (D-Link MH01): " +
                     std::to_string(encrypted->ciphertext_length) +
                     " bytes of OpenSSL-salted AES-128-CBC ciphertext; not extracted");
      return Ok();
    }
    IOTMARK_TRY(dlink::WritePart(ctx, chunk, "firmware", kHeaderSize, header->first_length));
    return dlink::WritePart(ctx, chunk, "signature", kHeaderSize + header->first_length,
                            header->second_length);
  }

 private:
  static constexpr Magic kMagics[] = {{kMagic, 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeDlinkMh01Format() { return std::make_unique<DlinkMh01Format>(); }

}  // namespace iotmark::unpack::formats
