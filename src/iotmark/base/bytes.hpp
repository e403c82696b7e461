// Byte views and bounds-checked little/big-endian loads for parsing untrusted formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace iotmark {

using ByteView = std::span<const std::uint8_t>;

inline std::string_view AsChars(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
inline ByteView AsBytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Loads are bounds-checked: they return nullopt instead of reading past the view.
template <typename T>
std::optional<T> LoadLe(ByteView bytes, std::size_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return std::nullopt;
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<T>(bytes[offset + i]) << (8 * i));
  }
  return value;
}

template <typename T>
std::optional<T> LoadBe(ByteView bytes, std::size_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return std::nullopt;
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value = static_cast<T>((value << 8) | bytes[offset + i]);
  }
  return value;
}

// Reads fixed-size header fields in sequence; once a read fails, every later one fails too,
// so a parser can read a whole header and check ok() once.
class ByteReader {
 public:
  enum class Order { kLittle, kBig };
  explicit ByteReader(ByteView bytes, Order order = Order::kLittle)
      : bytes_(bytes), order_(order) {}

  template <typename T>
  T Read() {
    if (!ok_) return 0;
    auto value = order_ == Order::kLittle ? LoadLe<T>(bytes_, pos_) : LoadBe<T>(bytes_, pos_);
    if (!value) {
      ok_ = false;
      return 0;
    }
    pos_ += sizeof(T);
    return *value;
  }
  ByteView ReadBytes(std::size_t n) {
    if (!ok_ || pos_ > bytes_.size() || bytes_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    ByteView out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  void Skip(std::size_t n) { (void)ReadBytes(n); }
  void Seek(std::size_t pos) {
    if (pos > bytes_.size()) ok_ = false;
    pos_ = pos;
  }
  [[nodiscard]] std::size_t pos() const { return pos_; }
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  ByteView bytes_;
  Order order_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// "0x1a2b" — offsets in reports and names.
std::string HexOffset(std::uint64_t offset);

// A fixed-length C string field (NUL-padded) as text, cut at the first NUL.
std::string_view CStringField(ByteView field);

// Shannon entropy in bits per byte (0..8).
double Entropy(ByteView bytes);

// True if every byte equals `value` (flash padding: 0x00 or 0xff).
bool IsFilledWith(ByteView bytes, std::uint8_t value);

}  // namespace iotmark
