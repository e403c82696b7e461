// The "Linux version 5.10.176 (builder@host) (gcc ...) #1 SMP ..." line every kernel carries
// (init/version.c linux_banner): parsing it at a known place, and finding it while a decompressed
// kernel streams past in pieces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/bytes.hpp"

namespace iotmark::unpack::formats::linux_kernel {

inline constexpr std::string_view kBannerPrefix = "Linux version ";
// The banner is one line; a longer run of text is not a kernel banner worth quoting.
inline constexpr std::size_t kMaxBannerLength = 256;

struct KernelBanner {
  std::string version;  // "5.10.176"
  std::string line;     // the whole printable line, at most kMaxBannerLength characters
};

// A kernel release at the start of `text` ("5.10.0-8-amd64", "2.6.36"): digits.digits, then an
// optional third number and suffix, ended by a space or the end of the text. Returns its length,
// or 0 if `text` does not start with one ("%s", "unknown").
std::size_t ReleaseLength(ByteView text);

// Printable text starting at `pos`, ended by a NUL, a line break, any other unprintable byte,
// the end of `bytes` or `max` characters.
std::string_view PrintableRun(ByteView bytes, std::size_t pos, std::size_t max);

// The banner starting exactly at the start of `bytes`, if it is one.
std::optional<KernelBanner> ParseBanner(ByteView bytes);

// Finds the first banner in a stream fed in pieces of any size; a banner split across pieces
// is found too. Keeps at most one banner's worth of bytes between pieces.
class BannerScanner {
 public:
  void Feed(ByteView piece);
  // Looks at what is left at the end of the stream; call once, after the last Feed().
  void Finish();
  [[nodiscard]] const std::optional<KernelBanner>& banner() const { return banner_; }

 private:
  // Searches `window` for banners starting before `limit`.
  void Search(ByteView window, std::size_t limit);

  std::vector<std::uint8_t> carry_;
  std::optional<KernelBanner> banner_;
};

}  // namespace iotmark::unpack::formats::linux_kernel
