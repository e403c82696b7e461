// What the hex text formats (Intel HEX, Motorola S-record) share: splitting text into record
// lines, hex digits, and the memory image their data records describe, written out as binary: one
// file from the lowest to the highest address with the holes filled with 0xff, or one file per
// region when that span would be absurd for the data it holds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"

namespace iotmark::unpack {

class ExtractContext;

namespace formats::hex_text {

class MemoryImage {
 public:
  // Records `bytes` at `address`; `where` is the chunk offset of the record, for gaps.
  void Add(std::uint64_t address, ByteView bytes, std::uint64_t where);

  [[nodiscard]] bool empty() const { return pieces_.empty(); }
  [[nodiscard]] std::uint64_t data_bytes() const { return pool_.size(); }
  [[nodiscard]] std::uint64_t lowest() const { return lowest_; }
  [[nodiscard]] std::uint64_t highest() const { return highest_; }  // last address holding data

  // Writes `stem`.bin (or `stem`@0xADDRESS.bin per region) into the context's sink. Overlapping
  // records and refused regions become gaps; only limit and I/O errors are returned.
  Status Write(ExtractContext& ctx, const std::string& stem) const;

 private:
  struct Piece {
    std::uint64_t address = 0;
    std::uint64_t offset = 0;  // in pool_
    std::uint64_t length = 0;
    std::uint64_t where = 0;
    std::uint64_t order = 0;  // records at one address keep the order they came in
  };
  using Pieces = std::vector<Piece>;

  Status WriteRegion(ExtractContext& ctx, const Pieces& pieces, std::size_t begin, std::size_t end,
                     const std::string& name) const;

  Pieces pieces_;
  std::vector<std::uint8_t> pool_;
  std::uint64_t lowest_ = ~std::uint64_t{0};
  std::uint64_t highest_ = 0;
};

// "0x0800abcd": addresses in names and reasons, eight digits at least.
std::string HexAddress(std::uint64_t address);

// Parses two hex digits; -1 if either is not a hex digit.
int HexByte(char high, char low);
bool IsHexDigit(char c);

// One line of text: its content without the line break or trailing blanks, and where the next
// line starts.
struct Line {
  std::string_view content;
  std::size_t next = 0;
  bool terminated = false;  // ended by a line break
  bool at_end = false;      // ran to the end of the text without a line break
};

// The line starting at `pos` (< text.size()). Lines longer than `max_chars` are cut there (they
// are not records whatever follows), so reading one costs at most that much.
Line NextLine(std::string_view text, std::size_t pos, std::size_t max_chars);

// A record line the end of the text cut short: `lead` and then only hex digits.
bool IsCutRecord(const Line& line, char lead, std::size_t max_chars);

}  // namespace formats::hex_text
}  // namespace iotmark::unpack
