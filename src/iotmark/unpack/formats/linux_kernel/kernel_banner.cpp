#include "iotmark/unpack/formats/linux_kernel/kernel_banner.hpp"

#include <algorithm>

namespace iotmark::unpack::formats::linux_kernel {

namespace {

// Bytes a banner may span, prefix included: a match needs this much text after its start before
// it can be judged.
constexpr std::size_t kWindow = kMaxBannerLength;

bool IsDigit(std::uint8_t c) { return c >= '0' && c <= '9'; }
bool IsPrintable(std::uint8_t c) { return c >= 0x20 && c <= 0x7e; }
// Characters that may follow the numeric part of a kernel release: "-rc3", "+", "_custom",
// "~bpo11", ".el8".
bool IsReleaseChar(std::uint8_t c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' ||
         c == '_' || c == '+' || c == '~';
}

std::size_t DigitRun(ByteView bytes, std::size_t pos) {
  std::size_t n = 0;
  while (pos + n < bytes.size() && IsDigit(bytes[pos + n])) ++n;
  return n;
}

}  // namespace

std::size_t ReleaseLength(ByteView text) {
  std::size_t pos = DigitRun(text, 0);
  if (pos == 0 || pos >= text.size() || text[pos] != '.') return 0;
  ++pos;
  const std::size_t minor = DigitRun(text, pos);
  if (minor == 0) return 0;
  pos += minor;
  while (pos < text.size() && IsReleaseChar(text[pos])) ++pos;
  if (pos < text.size() && text[pos] != ' ') return 0;
  return pos;
}

std::string_view PrintableRun(ByteView bytes, std::size_t pos, std::size_t max) {
  if (pos >= bytes.size()) return {};
  const ByteView rest = bytes.subspan(pos, std::min(max, bytes.size() - pos));
  std::size_t n = 0;
  while (n < rest.size() && IsPrintable(rest[n])) ++n;
  return AsChars(rest.first(n));
}

std::optional<KernelBanner> ParseBanner(ByteView bytes) {
  if (bytes.size() < kBannerPrefix.size() ||
      AsChars(bytes.first(kBannerPrefix.size())) != kBannerPrefix) {
    return std::nullopt;
  }
  const std::string_view line = PrintableRun(bytes, 0, kMaxBannerLength);
  const ByteView release = AsBytes(line.substr(kBannerPrefix.size()));
  const std::size_t length = ReleaseLength(release);
  if (length == 0) return std::nullopt;
  return KernelBanner{std::string(AsChars(release.first(length))), std::string(line)};
}

void BannerScanner::Search(ByteView window, std::size_t limit) {
  const std::string_view text = AsChars(window);
  for (std::size_t at = text.find(kBannerPrefix); at != std::string_view::npos && at < limit;
       at = text.find(kBannerPrefix, at + 1)) {
    if (auto banner = ParseBanner(window.subspan(at))) {
      banner_ = std::move(banner);
      return;
    }
  }
}

void BannerScanner::Feed(ByteView piece) {
  if (banner_ || piece.empty()) return;
  // A match is judged only once kWindow bytes follow it (or the stream ends), so that a banner
  // cut by a piece boundary is not taken for a short one.
  carry_.insert(carry_.end(), piece.begin(), piece.end());
  if (carry_.size() > kWindow) {
    const std::size_t limit = carry_.size() - kWindow;
    Search(carry_, limit);
    carry_.erase(carry_.begin(), carry_.begin() + static_cast<std::ptrdiff_t>(limit));
  }
}

void BannerScanner::Finish() {
  if (!banner_) Search(carry_, carry_.size());
  carry_.clear();
}

}  // namespace iotmark::unpack::formats::linux_kernel
