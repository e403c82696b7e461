#include "iotmark/base/bytes.hpp"

#include <array>
#include <cmath>
#include <cstring>

namespace iotmark {

std::string HexOffset(std::uint64_t offset) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  bool started = false;
  for (int shift = 60; shift >= 0; shift -= 4) {
    const auto digit = static_cast<unsigned>((offset >> shift) & 0xF);
    if (digit != 0 || started || shift == 0) {
      out.push_back(kDigits[digit]);
      started = true;
    }
  }
  return out;
}

std::string_view CStringField(ByteView field) {
  const auto* begin = reinterpret_cast<const char*>(field.data());
  const void* nul = std::memchr(begin, 0, field.size());
  const std::size_t length = nul != nullptr
                                 ? static_cast<std::size_t>(static_cast<const char*>(nul) - begin)
                                 : field.size();
  return {begin, length};
}

double Entropy(ByteView bytes) {
  if (bytes.empty()) return 0.0;
  std::array<std::uint64_t, 256> counts{};
  for (std::uint8_t b : bytes) ++counts[b];
  double entropy = 0.0;
  const auto total = static_cast<double>(bytes.size());
  for (std::uint64_t count : counts) {
    if (count == 0) continue;
    const double p = static_cast<double>(count) / total;
    entropy -= p * std::log2(p);
  }
  return entropy;
}

bool IsFilledWith(ByteView bytes, std::uint8_t value) {
  if (bytes.empty()) return true;
  if (bytes[0] != value) return false;
  // Compare the view with itself shifted by one: all equal iff every byte equals the first.
  return std::memcmp(bytes.data(), bytes.data() + 1, bytes.size() - 1) == 0;
}

}  // namespace iotmark
