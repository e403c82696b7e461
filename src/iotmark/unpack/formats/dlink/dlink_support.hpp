// Small helpers shared by the D-Link container formats (SEAMA, SHRS, encrpted_img, MH01): digests
// through OpenSSL, hex text, printable checks and writing a part clipped to the bytes present.
#pragma once

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/model/gap.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"

namespace iotmark::unpack::formats::dlink {

inline std::vector<std::uint8_t> Digest(const EVP_MD* md, ByteView bytes) {
  std::vector<std::uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &size, md, nullptr) != 1) size = 0;
  out.resize(size);
  return out;
}

inline bool DigestEquals(const EVP_MD* md, ByteView bytes, ByteView stated) {
  const auto actual = Digest(md, bytes);
  return !actual.empty() && actual.size() == stated.size() &&
         std::equal(actual.begin(), actual.end(), stated.begin());
}

inline std::string HexBytes(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

inline bool IsPrintable(char c) { return c >= 0x20 && c < 0x7f; }

inline bool AllPrintable(std::string_view text) {
  return std::all_of(text.begin(), text.end(), IsPrintable);
}

// Writes chunk[begin, begin + length) as `name`, clipped to the bytes present; what is missing
// becomes a truncation gap. Returns an error only when extraction must stop.
inline Status WritePart(ExtractContext& ctx, ByteView chunk, const std::string& name,
                        std::uint64_t begin, std::uint64_t length) {
  if (begin >= chunk.size()) {
    ctx.AddGap(model::GapKind::kTruncated, begin,
               name + " starts past the end of the available data");
    return Ok();
  }
  const std::uint64_t present = std::min<std::uint64_t>(length, chunk.size() - begin);
  if (present < length) {
    ctx.AddGap(model::GapKind::kTruncated, chunk.size(),
               name + " is cut short: " + std::to_string(length - present) + " bytes missing");
  }
  auto added = ctx.sink().AddFile(name, 0644, chunk.subspan(begin, present));
  if (!added && ShouldStop(added.error())) return added;
  return Ok();
}

}  // namespace iotmark::unpack::formats::dlink
