// SEAMA ("SEAttle iMAge", Alpha Networks for D-Link): big-endian headers with magic 0x5EA3A417,
// a reserved half-word, the size of the metadata and of the image. A seal (image size 0) holds
// only metadata and is followed by entities; an entity carries the MD5 of its image after the
// header, then NUL-terminated "key=value" metadata padded to 4 bytes, then the image (a D-Link
// kernel + root filesystem, or a TRX). The layout follows seama.h and OpenWrt's oseama.c.
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/dlink/dlink_support.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;

// The magic and a zero reserved half-word: both tools write it so.
constexpr std::string_view kSeamaMagic("\x5e\xa3\xa4\x17\x00\x00", 6);
constexpr std::size_t kSealHeaderSize = 12;
constexpr std::size_t kEntityHeaderSize = 28;
constexpr std::size_t kMaxEntities = 64;
constexpr std::size_t kMaxMetaEntries = 32;
constexpr std::size_t kMaxMetaValue = 256;

struct Header {
  std::uint16_t meta_size = 0;
  std::uint32_t image_size = 0;
};

std::optional<Header> ParseHeader(ByteView bytes) {
  if (bytes.size() < kSealHeaderSize || AsChars(bytes.first(6)) != kSeamaMagic) return std::nullopt;
  Header header;
  header.meta_size = LoadBe<std::uint16_t>(bytes, 6).value_or(0);
  header.image_size = LoadBe<std::uint32_t>(bytes, 8).value_or(0);
  // Both writers pad the metadata to four bytes.
  if (header.meta_size % 4 != 0) return std::nullopt;
  return header;
}

// The metadata strings, or nullopt when the area holds anything but text and NUL padding.
std::optional<std::vector<std::string>> ParseMeta(ByteView area) {
  std::vector<std::string> entries;
  std::size_t at = 0;
  while (at < area.size()) {
    const std::string_view text = CStringField(area.subspan(at));
    if (!dlink::AllPrintable(text)) return std::nullopt;
    if (!text.empty() && entries.size() < kMaxMetaEntries) entries.emplace_back(text);
    at += text.size() + 1;
  }
  return entries;
}

struct Entity {
  std::uint64_t offset = 0;  // of its header, in the chunk
  std::uint64_t image_offset = 0;
  std::uint32_t image_size = 0;
  std::vector<std::string> meta;
};

struct Container {
  bool sealed = false;
  std::vector<std::string> seal_meta;
  std::vector<Entity> entities;
  std::uint64_t length = 0;  // stated extent, possibly past the end of the bytes
  bool truncated = false;
};

// Reads the entity at `at`; nullopt when no entity header is there. Its image may be cut short.
std::optional<Entity> ParseEntity(ByteView bytes, std::uint64_t at) {
  if (at > bytes.size()) return std::nullopt;
  const auto header = ParseHeader(bytes.subspan(at));
  if (!header || header->image_size == 0) return std::nullopt;
  Entity entity;
  entity.offset = at;
  entity.image_offset = at + kEntityHeaderSize + header->meta_size;
  entity.image_size = header->image_size;
  if (entity.image_offset > bytes.size()) return std::nullopt;
  auto meta = ParseMeta(bytes.subspan(at + kEntityHeaderSize, header->meta_size));
  if (!meta) return std::nullopt;
  entity.meta = std::move(*meta);
  return entity;
}

std::optional<Container> ParseContainer(ByteView bytes) {
  const auto header = ParseHeader(bytes);
  if (!header) return std::nullopt;
  Container container;
  if (header->image_size != 0) {
    auto entity = ParseEntity(bytes, 0);
    if (!entity) return std::nullopt;
    container.length = entity->image_offset + entity->image_size;
    container.entities.push_back(std::move(*entity));
  } else {
    container.sealed = true;
    const std::uint64_t first = kSealHeaderSize + header->meta_size;
    if (first > bytes.size()) return std::nullopt;
    auto meta = ParseMeta(bytes.subspan(kSealHeaderSize, header->meta_size));
    if (!meta) return std::nullopt;
    container.seal_meta = std::move(*meta);
    std::uint64_t at = first;
    while (container.entities.size() < kMaxEntities && at < bytes.size()) {
      auto entity = ParseEntity(bytes, at);
      if (!entity) break;
      at = entity->image_offset + entity->image_size;
      container.entities.push_back(std::move(*entity));
      if (at > bytes.size()) break;
    }
    // A seal announces entities; one without any is not worth believing.
    if (container.entities.empty()) return std::nullopt;
    container.length = at;
  }
  container.truncated = container.length > bytes.size();
  return container;
}

void AddMeta(std::map<std::string, std::string>& meta, const std::string& prefix,
             const std::vector<std::string>& entries) {
  for (const std::string& entry : entries) {
    const std::size_t eq = entry.find('=');
    const std::string key = prefix + entry.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : entry.substr(eq + 1, kMaxMetaValue);
    meta.emplace(key, value);
    // D-Link's model signature is what later analysis wants first.
    if (entry.substr(0, eq) == "signature") meta.emplace("signature", value);
  }
}

// Records an entity's size and digest verdict; true when its MD5 matches.
bool CheckEntity(ByteView rest, const Entity& entity, const std::string& prefix, Chunk& chunk) {
  chunk.meta[prefix + "size"] = std::to_string(entity.image_size);
  if (entity.image_offset + entity.image_size > rest.size()) {
    chunk.meta[prefix + "md5"] = "unchecked";
    return false;
  }
  const ByteView stated = rest.subspan(entity.offset + kSealHeaderSize, 16);
  if (dlink::DigestEquals(EVP_md5(), rest.subspan(entity.image_offset, entity.image_size),
                          stated)) {
    chunk.meta[prefix + "md5"] = "ok";
    return true;
  }
  chunk.meta[prefix + "md5"] = "mismatch";
  chunk.issues.push_back({GapKind::kCorrupt, "SEAMA entity at " + HexOffset(entity.offset) +
                                                 " MD5 mismatch: header says " +
                                                 dlink::HexBytes(stated)});
  return false;
}

class SeamaFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "seama"; }
  [[nodiscard]] std::string_view description() const override {
    return "SEAMA firmware container (D-Link / Alpha Networks)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto container = ParseContainer(rest);
    if (!container) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = std::min<std::uint64_t>(container->length, rest.size());
    chunk.meta["sealed"] = container->sealed ? "yes" : "no";
    chunk.meta["entities"] = std::to_string(container->entities.size());
    AddMeta(chunk.meta, "seal.", container->seal_meta);
    std::size_t verified = 0;
    for (std::size_t i = 0; i < container->entities.size(); ++i) {
      const std::string prefix = "entity" + std::to_string(i) + ".";
      AddMeta(chunk.meta, prefix, container->entities[i].meta);
      if (CheckEntity(rest, container->entities[i], prefix, chunk)) ++verified;
    }
    // Six bytes of magic are little; real images always carry metadata or a matching digest.
    const bool has_meta = !container->seal_meta.empty() ||
                          std::any_of(container->entities.begin(), container->entities.end(),
                                      [](const Entity& entity) { return !entity.meta.empty(); });
    if (!has_meta && verified == 0) return std::nullopt;
    if (container->truncated) {
      chunk.issues.push_back(
          {GapKind::kTruncated, "SEAMA container states " + std::to_string(container->length) +
                                    " bytes but only " + std::to_string(rest.size()) + " remain"});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto container = ParseContainer(chunk);
    if (!container) return Fail(ErrorCode::kCorruptInput, "SEAMA header does not parse");
    for (std::size_t i = 0; i < container->entities.size(); ++i) {
      const Entity& entity = container->entities[i];
      IOTMARK_TRY(dlink::WritePart(ctx, chunk, "entity" + std::to_string(i), entity.image_offset,
                                   entity.image_size));
    }
    return Ok();
  }

 private:
  static constexpr Magic kMagics[] = {{kSeamaMagic, 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeSeamaFormat() { return std::make_unique<SeamaFormat>(); }

}  // namespace iotmark::unpack::formats
