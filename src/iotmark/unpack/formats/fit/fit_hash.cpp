#include "iotmark/unpack/formats/fit/fit_hash.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

namespace iotmark::unpack::formats::fit {

namespace {

const EVP_MD* Digest(std::string_view algo) {
  if (algo == "md5") return EVP_md5();
  if (algo == "sha1") return EVP_sha1();
  if (algo == "sha256") return EVP_sha256();
  if (algo == "sha384") return EVP_sha384();
  if (algo == "sha512") return EVP_sha512();
  return nullptr;
}

// zlib's crc32_z takes size_t but its running value is 32 bits; U-Boot stores it big-endian.
std::vector<std::uint8_t> Crc32(ByteView data) {
  const auto crc = static_cast<std::uint32_t>(crc32_z(0, data.data(), data.size()));
  return {static_cast<std::uint8_t>(crc >> 24), static_cast<std::uint8_t>(crc >> 16),
          static_cast<std::uint8_t>(crc >> 8), static_cast<std::uint8_t>(crc)};
}

std::optional<std::vector<std::uint8_t>> Compute(std::string_view algo, ByteView data) {
  if (algo == "crc32") return Crc32(data);
  const EVP_MD* md = Digest(algo);
  if (md == nullptr) return std::nullopt;
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &length, md, nullptr) != 1) {
    return std::nullopt;
  }
  return std::vector<std::uint8_t>(out.begin(), out.begin() + length);
}

}  // namespace

HashCheck CheckHash(const FitHash& hash, ByteView data, std::string* computed) {
  if (hash.value.empty()) return HashCheck::kNoValue;
  const auto digest = Compute(hash.algo, data);
  if (!digest) return HashCheck::kUnsupported;
  if (computed != nullptr) *computed = HexBytes(*digest);
  return *digest == hash.value ? HashCheck::kOk : HashCheck::kMismatch;
}

std::string HexBytes(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

}  // namespace iotmark::unpack::formats::fit
