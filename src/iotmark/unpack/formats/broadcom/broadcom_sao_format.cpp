// Broadcom "SAO" object images (set-top box flash images): a run of objects, each a 64-byte
// header - magic "SOBJ", a big-endian CRC-32 of the rest of the header, a four-letter name
// (META, DTBB, KRNL, RTFS ...), the data size (twice), a load address at 0x24 and a CRC-32 of
// the data at 0x34 - followed by the data. The name and size positions come from FACT's
// broadcom_sao unpacker; the CRC and load address fields were read off its sample (FACT's
// sample has one object whose header CRC does not match, which we report).
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;

constexpr std::string_view kMagic = "SOBJ";
constexpr std::size_t kHeaderSize = 64;
constexpr std::size_t kHeaderCrcOffset = 4;
constexpr std::size_t kNameOffset = 8;
constexpr std::size_t kSizeOffset = 0x10;
constexpr std::size_t kSize2Offset = 0x14;
constexpr std::size_t kLoadAddressOffset = 0x24;
constexpr std::size_t kDataCrcOffset = 0x34;
constexpr std::uint64_t kMaxObjectSize = std::uint64_t{512} << 20;
constexpr std::size_t kMaxObjects = 256;
constexpr std::uint32_t kFileMode = 0644;

struct Object {
  std::uint64_t offset = 0;  // of the header, in the chunk
  std::string name;
  std::uint32_t size = 0;
  std::uint32_t load_address = 0;
  bool header_crc_ok = false;
  std::optional<bool> data_crc_ok;  // unset when the data is cut short
};

std::uint32_t Crc(ByteView bytes) {
  return static_cast<std::uint32_t>(crc32_z(0, bytes.data(), bytes.size()));
}

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// The object at `at`; nullopt when there is none, or its header holds neither a matching CRC nor
// a consistent size and data CRC.
std::optional<Object> ParseObject(ByteView bytes, std::uint64_t at) {
  if (at > bytes.size() || bytes.size() - at < kHeaderSize) return std::nullopt;
  const ByteView header = bytes.subspan(at, kHeaderSize);
  if (AsChars(header.first(4)) != kMagic) return std::nullopt;
  Object object;
  object.offset = at;
  object.name = std::string(AsChars(header.subspan(kNameOffset, 4)));
  if (!std::all_of(object.name.begin(), object.name.end(), IsNameChar)) return std::nullopt;
  object.size = LoadBe<std::uint32_t>(header, kSizeOffset).value_or(0);
  if (object.size > kMaxObjectSize) return std::nullopt;
  object.load_address = LoadBe<std::uint32_t>(header, kLoadAddressOffset).value_or(0);
  object.header_crc_ok = LoadBe<std::uint32_t>(header, kHeaderCrcOffset).value_or(0) ==
                         Crc(header.subspan(kHeaderCrcOffset + 4));
  const std::uint64_t data = at + kHeaderSize;
  if (bytes.size() - data >= object.size) {
    object.data_crc_ok = LoadBe<std::uint32_t>(header, kDataCrcOffset).value_or(0) ==
                         Crc(bytes.subspan(data, object.size));
  }
  const bool sizes_agree = LoadBe<std::uint32_t>(header, kSize2Offset).value_or(0) == object.size;
  if (!object.header_crc_ok && !(sizes_agree && object.data_crc_ok.value_or(false))) {
    return std::nullopt;
  }
  return object;
}

std::vector<Object> ParseObjects(ByteView bytes) {
  std::vector<Object> objects;
  std::uint64_t at = 0;
  while (objects.size() < kMaxObjects) {
    auto object = ParseObject(bytes, at);
    if (!object) break;
    at += kHeaderSize + std::uint64_t{object->size};
    objects.push_back(std::move(*object));
  }
  return objects;
}

std::string Hex32(std::uint32_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kDigits[(value >> shift) & 0xf]);
  return out;
}

// File names: the object's name, made unique when an image repeats one.
std::vector<std::string> FileNames(const std::vector<Object>& objects) {
  std::vector<std::string> names;
  std::set<std::string> used;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    std::string name = objects[i].name;
    if (!used.insert(name).second) {
      name += "." + std::to_string(i);
      used.insert(name);
    }
    names.push_back(std::move(name));
  }
  return names;
}

class BroadcomSaoFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "broadcom_sao"; }
  [[nodiscard]] std::string_view description() const override {
    return "Broadcom SAO object image";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const std::vector<Object> objects = ParseObjects(rest);
    if (objects.empty()) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    const Object& last = objects.back();
    chunk.length = last.offset + kHeaderSize + last.size;
    chunk.meta["objects"] = std::to_string(objects.size());
    const auto names = FileNames(objects);
    for (std::size_t i = 0; i < objects.size(); ++i) {
      const Object& object = objects[i];
      const std::string prefix = names[i] + ".";
      chunk.meta[prefix + "size"] = std::to_string(object.size);
      chunk.meta[prefix + "load_address"] = Hex32(object.load_address);
      chunk.meta[prefix + "header_crc"] = object.header_crc_ok ? "ok" : "mismatch";
      if (!object.header_crc_ok) {
        chunk.issues.push_back({GapKind::kCorrupt, "SAO object " + object.name + " at " +
                                                       HexOffset(object.offset) +
                                                       ": header CRC-32 mismatch"});
      }
      if (!object.data_crc_ok.has_value()) {
        chunk.meta[prefix + "data_crc"] = "unchecked";
      } else {
        chunk.meta[prefix + "data_crc"] = *object.data_crc_ok ? "ok" : "mismatch";
        if (!*object.data_crc_ok) {
          chunk.issues.push_back({GapKind::kCorrupt, "SAO object " + object.name + " at " +
                                                         HexOffset(object.offset) +
                                                         ": data CRC-32 mismatch"});
        }
      }
    }
    if (chunk.length > rest.size()) {
      chunk.issues.push_back({GapKind::kTruncated, "SAO object " + last.name + " states " +
                                                       std::to_string(last.size) +
                                                       " bytes of data but the image ends first"});
      chunk.length = rest.size();
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const std::vector<Object> objects = ParseObjects(chunk);
    if (objects.empty()) return Fail(ErrorCode::kCorruptInput, "SAO object header does not parse");
    const auto names = FileNames(objects);
    for (std::size_t i = 0; i < objects.size(); ++i) {
      const Object& object = objects[i];
      const std::uint64_t data = object.offset + kHeaderSize;
      const std::uint64_t present = std::min<std::uint64_t>(object.size, chunk.size() - data);
      if (present < object.size) {
        ctx.AddGap(GapKind::kTruncated, chunk.size(),
                   names[i] + " is cut short: " + std::to_string(object.size - present) +
                       " bytes missing");
      }
      auto added = ctx.sink().AddFile(names[i], kFileMode, chunk.subspan(data, present));
      if (!added && ShouldStop(added.error())) return added;
    }
    return Ok();
  }

 private:
  static constexpr Magic kMagics[] = {{kMagic, 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeBroadcomSaoFormat() {
  return std::make_unique<BroadcomSaoFormat>();
}

}  // namespace iotmark::unpack::formats
