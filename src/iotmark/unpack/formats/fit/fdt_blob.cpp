#include "iotmark/unpack/formats/fit/fdt_blob.hpp"

#include <libfdt.h>

#include <algorithm>
#include <cstring>

namespace iotmark::unpack::formats::fit {

namespace {

// Version 16 has no size_dt_struct field, so its header is one word shorter.
constexpr std::size_t kV16HeaderSize = 36;
constexpr std::uint32_t kOldestVersion = 16;
constexpr std::uint32_t kNewestVersion = 17;
// libfdt reads trees whose last_comp_version is at most this.
constexpr std::uint32_t kNewestCompatible = 16;

bool Inside(std::uint64_t offset, std::uint64_t size, std::uint64_t total) {
  return offset <= total && size <= total - offset;
}

}  // namespace

std::optional<FdtHeader> ParseFdtHeader(ByteView bytes) {
  ByteReader reader(bytes, ByteReader::Order::kBig);
  if (reader.Read<std::uint32_t>() != kFdtMagic) return std::nullopt;
  FdtHeader h;
  h.total_size = reader.Read<std::uint32_t>();
  h.off_struct = reader.Read<std::uint32_t>();
  h.off_strings = reader.Read<std::uint32_t>();
  h.off_mem_rsvmap = reader.Read<std::uint32_t>();
  h.version = reader.Read<std::uint32_t>();
  h.last_comp_version = reader.Read<std::uint32_t>();
  reader.Skip(4);  // boot_cpuid_phys
  h.size_strings = reader.Read<std::uint32_t>();
  if (!reader.ok()) return std::nullopt;
  if (h.version < kOldestVersion || h.version > kNewestVersion ||
      h.last_comp_version > kNewestCompatible || h.last_comp_version < 2) {
    return std::nullopt;
  }
  std::size_t header_size = kV16HeaderSize;
  if (h.version >= 17) {
    h.size_struct = reader.Read<std::uint32_t>();
    if (!reader.ok()) return std::nullopt;
    header_size = kFdtHeaderSize;
  }
  if (h.total_size < header_size || h.total_size > kMaxFdtSize) return std::nullopt;
  // The memory reservation map is a list of 8-byte aligned pairs ended by a zero pair.
  if (h.off_mem_rsvmap < header_size || h.off_mem_rsvmap % 8 != 0 ||
      !Inside(h.off_mem_rsvmap, 16, h.total_size)) {
    return std::nullopt;
  }
  if (h.off_struct < header_size || h.off_struct % 4 != 0 ||
      !Inside(h.off_struct, h.size_struct, h.total_size) || h.off_struct >= h.total_size) {
    return std::nullopt;
  }
  if (h.off_strings < header_size || !Inside(h.off_strings, h.size_strings, h.total_size)) {
    return std::nullopt;
  }
  return h;
}

Result<FdtBlob> FdtBlob::Open(ByteView bytes) {
  const auto header = ParseFdtHeader(bytes);
  if (!header) return Fail(ErrorCode::kCorruptInput, "device tree header does not hold together");
  if (header->total_size > bytes.size()) {
    return Fail(ErrorCode::kCorruptInput,
                "device tree states " + std::to_string(header->total_size) + " bytes but only " +
                    std::to_string(bytes.size()) + " are present");
  }
  FdtBlob blob;
  blob.header_ = *header;
  blob.base_ = bytes.data();
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(std::uint64_t) != 0) {
    const std::size_t words = (header->total_size + 7) / 8;
    blob.copy_ = std::make_unique<std::uint64_t[]>(words);
    std::memcpy(blob.copy_.get(), bytes.data(), header->total_size);
    blob.base_ = blob.copy_.get();
  }
  // Every later libfdt call relies on this walk of the whole structure block: tags in order,
  // nodes balanced, property names inside the strings block.
  if (const int err = fdt_check_full(blob.base_, header->total_size); err != 0) {
    return Fail(ErrorCode::kCorruptInput,
                std::string("device tree structure is damaged: ") + fdt_strerror(err));
  }
  return blob;
}

int FdtBlob::PathOffset(const char* path) const { return fdt_path_offset(base_, path); }

std::string_view FdtBlob::NodeName(int node) const {
  int length = 0;
  const char* name = fdt_get_name(base_, node, &length);
  if (name == nullptr || length < 0) return {};
  return {name, static_cast<std::size_t>(length)};
}

std::vector<int> FdtBlob::Subnodes(int node, std::size_t max, bool* more) const {
  std::vector<int> out;
  if (more != nullptr) *more = false;
  // Offsets only grow and stay inside the checked structure block, so the walk ends.
  for (int child = fdt_first_subnode(base_, node); child >= 0;
       child = fdt_next_subnode(base_, child)) {
    if (out.size() == max) {
      if (more != nullptr) *more = true;
      break;
    }
    out.push_back(child);
  }
  return out;
}

std::optional<ByteView> FdtBlob::Property(int node, const char* name) const {
  int length = 0;
  const void* value = fdt_getprop(base_, node, name, &length);
  if (value == nullptr || length < 0) return std::nullopt;
  return ByteView(static_cast<const std::uint8_t*>(value), static_cast<std::size_t>(length));
}

std::uint64_t FdtBlob::OffsetOf(ByteView value) const {
  return static_cast<std::uint64_t>(value.data() - static_cast<const std::uint8_t*>(base_));
}

std::optional<std::string> FdtBlob::Text(int node, const char* name, std::size_t max) const {
  const auto value = Property(node, name);
  if (!value) return std::nullopt;
  std::string_view text = AsChars(*value);
  if (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  std::string joined(text.substr(0, std::min(text.size(), max)));
  std::replace(joined.begin(), joined.end(), '\0', ',');
  return PrintableText(joined, max);
}

std::optional<std::uint64_t> FdtBlob::Number(int node, const char* name) const {
  const auto value = Property(node, name);
  if (!value) return std::nullopt;
  if (value->size() == 4) return LoadBe<std::uint32_t>(*value, 0);
  if (value->size() == 8) return LoadBe<std::uint64_t>(*value, 0);
  return std::nullopt;
}

std::string PrintableText(std::string_view text, std::size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  for (const char c : text.substr(0, std::min(text.size(), max))) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(byte >= 0x20 && byte <= 0x7e ? c : '?');
  }
  return out;
}

}  // namespace iotmark::unpack::formats::fit
