// Android sparse image (libsparse, "simg"): a little-endian file header (block size, total
// blocks, chunk count) and chunks that are raw blocks, a repeated 4-byte fill value, blocks
// left undefined ("don't care", zeros once expanded) or a CRC-32 of everything expanded so far.
// The probe walks the chunk headers, so the extent is exactly the bytes they cover. Extraction
// streams the expanded image into one file, for the recursive unpacker to find the ext4 or
// other filesystem inside. Hand-written: Debian packages libsparse only as the simg2img program.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;

constexpr std::uint32_t kSparseMagic = 0xed26ff3a;
constexpr std::uint16_t kMajorVersion = 1;
constexpr std::uint16_t kFileHeaderSize = 28;
constexpr std::uint16_t kChunkHeaderSize = 12;
// Headers larger than these are allowed (libsparse skips the extra bytes) but not absurdly so.
constexpr std::uint16_t kMaxHeaderSize = 1024;
// Block sizes seen in practice are 4096; anything from 4 bytes to 64 MiB in steps of 4 is
// accepted, as libsparse accepts any multiple of 4.
constexpr std::uint32_t kMaxBlockSize = std::uint32_t{64} << 20;

constexpr std::uint16_t kChunkRaw = 0xcac1;
constexpr std::uint16_t kChunkFill = 0xcac2;
constexpr std::uint16_t kChunkDontCare = 0xcac3;
constexpr std::uint16_t kChunkCrc32 = 0xcac4;

// Fill and don't-care blocks are written from a buffer of this size, over and over.
constexpr std::size_t kPatternBuffer = std::size_t{256} << 10;
// Raw data is handed to the sink in pieces of this size, so limits are checked as it goes.
constexpr std::size_t kRawPiece = std::size_t{4} << 20;

constexpr Magic kMagics[] = {{"\x3a\xff\x26\xed", 0}};

struct FileHeader {
  std::uint16_t minor = 0;
  std::uint16_t header_size = 0;
  std::uint16_t chunk_header_size = 0;
  std::uint32_t block_size = 0;
  std::uint32_t total_blocks = 0;
  std::uint32_t total_chunks = 0;
  std::uint32_t checksum = 0;
};

std::optional<FileHeader> ParseFileHeader(ByteView bytes) {
  ByteReader reader(bytes, ByteReader::Order::kLittle);
  if (reader.Read<std::uint32_t>() != kSparseMagic) return std::nullopt;
  const auto major = reader.Read<std::uint16_t>();
  FileHeader header;
  header.minor = reader.Read<std::uint16_t>();
  header.header_size = reader.Read<std::uint16_t>();
  header.chunk_header_size = reader.Read<std::uint16_t>();
  header.block_size = reader.Read<std::uint32_t>();
  header.total_blocks = reader.Read<std::uint32_t>();
  header.total_chunks = reader.Read<std::uint32_t>();
  header.checksum = reader.Read<std::uint32_t>();
  if (!reader.ok() || major != kMajorVersion) return std::nullopt;
  if (header.header_size < kFileHeaderSize || header.header_size > kMaxHeaderSize) {
    return std::nullopt;
  }
  if (header.chunk_header_size < kChunkHeaderSize || header.chunk_header_size > kMaxHeaderSize) {
    return std::nullopt;
  }
  if (header.block_size == 0 || header.block_size % 4 != 0 || header.block_size > kMaxBlockSize) {
    return std::nullopt;
  }
  return header;
}

struct ChunkHeader {
  std::uint64_t at = 0;  // offset of the chunk header in the image
  std::uint16_t type = 0;
  std::uint32_t blocks = 0;
  std::uint32_t total_size = 0;  // header and data
  std::uint64_t data = 0;        // offset of the chunk's data
};

std::string Hex(std::uint64_t value) { return HexOffset(value); }

// Checks that a chunk's stated size matches what its type carries.
bool SizeMatches(const FileHeader& header, const ChunkHeader& chunk) {
  const std::uint64_t payload = std::uint64_t{chunk.total_size} - header.chunk_header_size;
  switch (chunk.type) {
    case kChunkRaw:
      return payload == std::uint64_t{chunk.blocks} * header.block_size;
    case kChunkFill:
      return payload == 4;
    case kChunkDontCare:
      return payload == 0;
    case kChunkCrc32:
      return payload == 4 && chunk.blocks == 0;
    default:
      return false;
  }
}

// What a walk of the chunk list found. The walk stops at the first chunk header that is missing
// (the image is cut off) or malformed; `end` is then where the good chunks end.
struct ChunkList {
  std::uint64_t end = 0;           // bytes covered by the file header and the chunks
  std::uint64_t count = 0;         // chunks read
  std::uint64_t blocks = 0;        // output blocks the chunks describe
  std::uint64_t expanded = 0;      // output bytes (saturating)
  bool truncated = false;          // a chunk runs past the end of the bytes given
  std::optional<std::string> bad;  // why the walk stopped before total_chunks
  bool has_crc = false;
};

// Walks the chunk list, handing each chunk to `visit` (if given). The chunks are not kept: an
// image can hold one 12-byte chunk for every 12 bytes. Each step advances by at least a chunk
// header, so the walk ends within the image whatever total_chunks says.
Result<ChunkList> WalkChunks(ByteView image, const FileHeader& header,
                             const std::function<Status(const ChunkHeader&)>& visit = {}) {
  ChunkList list;
  std::uint64_t pos = header.header_size;
  list.end = pos;
  for (std::uint32_t i = 0; i < header.total_chunks; ++i) {
    if (image.size() - std::min<std::uint64_t>(pos, image.size()) < header.chunk_header_size) {
      list.truncated = true;
      return list;
    }
    ChunkHeader chunk;
    chunk.at = pos;
    chunk.type = *LoadLe<std::uint16_t>(image, pos);
    chunk.blocks = *LoadLe<std::uint32_t>(image, pos + 4);
    chunk.total_size = *LoadLe<std::uint32_t>(image, pos + 8);
    chunk.data = pos + header.chunk_header_size;
    if (chunk.total_size < header.chunk_header_size || !SizeMatches(header, chunk)) {
      list.bad = "chunk " + std::to_string(i) + " at " + Hex(pos) + " (type " + Hex(chunk.type) +
                 ", " + std::to_string(chunk.total_size) + " bytes) is malformed";
      return list;
    }
    pos += chunk.total_size;
    list.end = pos;
    ++list.count;
    list.blocks += chunk.blocks;
    const std::uint64_t bytes = std::uint64_t{chunk.blocks} * header.block_size;
    list.expanded = bytes > UINT64_MAX - list.expanded ? UINT64_MAX : list.expanded + bytes;
    list.has_crc = list.has_crc || chunk.type == kChunkCrc32;
    if (visit) IOTMARK_TRY(visit(chunk));
    if (pos > image.size()) {
      list.truncated = true;
      return list;
    }
  }
  return list;
}

// Writes the expanded image: raw data from the chunk itself, fill and don't-care blocks from a
// bounded pattern buffer, so that memory stays small whatever the image expands to.
class Expander {
 public:
  Expander(ByteView image, const FileHeader& header, bool crc, FileWriter& writer)
      : image_(image), header_(header), crc_enabled_(crc), writer_(writer) {}

  // Writes one chunk; a problem is returned as a gap reason, an error from the sink as error.
  Result<std::optional<std::string>> Write(const ChunkHeader& chunk);
  [[nodiscard]] std::uint64_t written() const { return written_; }

 private:
  Status Emit(ByteView bytes) {
    if (crc_enabled_) crc_ = crc32_z(crc_, bytes.data(), bytes.size());
    written_ += bytes.size();
    return writer_.Write(bytes);
  }
  Status Repeat(std::uint32_t pattern, std::uint64_t length);

  ByteView image_;
  const FileHeader& header_;
  bool crc_enabled_;
  FileWriter& writer_;
  uLong crc_ = 0;
  std::uint64_t written_ = 0;
  std::vector<std::uint8_t> buffer_;
  std::optional<std::uint32_t> buffer_pattern_;
};

Status Expander::Repeat(std::uint32_t pattern, std::uint64_t length) {
  if (buffer_pattern_ != pattern) {
    buffer_.resize(kPatternBuffer);
    for (std::size_t i = 0; i < buffer_.size(); i += 4) {
      for (std::size_t b = 0; b < 4; ++b)
        buffer_[i + b] = static_cast<std::uint8_t>(pattern >> (8 * b));
    }
    buffer_pattern_ = pattern;
  }
  while (length > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer_.size()));
    IOTMARK_TRY(Emit(ByteView(buffer_).first(n)));
    length -= n;
  }
  return Ok();
}

Result<std::optional<std::string>> Expander::Write(const ChunkHeader& chunk) {
  const std::uint64_t length = std::uint64_t{chunk.blocks} * header_.block_size;
  switch (chunk.type) {
    case kChunkRaw: {
      ByteView data = image_.subspan(chunk.data, length);
      while (!data.empty()) {
        const std::size_t n = std::min(data.size(), kRawPiece);
        IOTMARK_TRY(Emit(data.first(n)));
        data = data.subspan(n);
      }
      return std::nullopt;
    }
    case kChunkFill:
      IOTMARK_TRY(Repeat(*LoadLe<std::uint32_t>(image_, chunk.data), length));
      return std::nullopt;
    case kChunkDontCare:
      IOTMARK_TRY(Repeat(0, length));
      return std::nullopt;
    default: {  // kChunkCrc32
      const std::uint32_t stored = *LoadLe<std::uint32_t>(image_, chunk.data);
      if (stored == static_cast<std::uint32_t>(crc_)) return std::nullopt;
      return "CRC-32 chunk at " + Hex(chunk.at) + " says " + Hex(stored) + ", the " +
             std::to_string(written_) + " bytes expanded so far give " +
             Hex(static_cast<std::uint32_t>(crc_));
    }
  }
}

class AndroidSparseFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "android_sparse"; }
  [[nodiscard]] std::string_view description() const override {
    return "Android sparse image (simg)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = ParseFileHeader(rest);
    if (!header) return std::nullopt;
    const ChunkList list = *WalkChunks(rest, *header);
    // The first chunk must be sound (or cut off by the end of the blob): a header alone, followed
    // by bytes that are no chunk, is a chance match.
    if (list.bad && list.end == header->header_size) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = std::min<std::uint64_t>(list.end, rest.size());
    chunk.meta["block_size"] = std::to_string(header->block_size);
    chunk.meta["total_blocks"] = std::to_string(header->total_blocks);
    chunk.meta["chunks"] = std::to_string(header->total_chunks);
    chunk.meta["expanded_size"] =
        std::to_string(std::uint64_t{header->total_blocks} * header->block_size);
    if (header->checksum != 0) chunk.meta["image_checksum"] = Hex(header->checksum);
    if (list.truncated) {
      chunk.issues.push_back(
          {GapKind::kTruncated, "sparse image chunks run past the end of the blob after " +
                                    std::to_string(rest.size()) + " bytes"});
    } else if (list.bad) {
      chunk.issues.push_back({GapKind::kCorrupt, *list.bad + "; the image ends before it"});
    } else if (list.blocks != header->total_blocks) {
      chunk.issues.push_back({GapKind::kCorrupt, BlockMismatch(list, *header)});
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const override {
    const auto header = ParseFileHeader(chunk);
    if (!header) return Fail(ErrorCode::kCorruptInput, "sparse image header does not parse");
    const ChunkList summary = *WalkChunks(chunk, *header);
    if (!Affordable(summary.expanded, chunk.size(), ctx)) return Ok();

    const std::string name = ctx.DecompressedName({".simg", ".img", ".bin", ".sparse"}) + ".raw";
    auto writer = ctx.sink().CreateFile(name, 0644);
    if (!writer) {
      if (ShouldStop(writer.error())) return tl::unexpected(writer.error());
      return Ok();  // the sink recorded why it refused the name
    }
    Expander expander(chunk, *header, summary.has_crc, *writer);
    const auto expand = [&](const ChunkHeader& c) -> Status {
      IOTMARK_TRY(ctx.budget().CheckTime());
      if (c.data + (std::uint64_t{c.total_size} - header->chunk_header_size) <= chunk.size()) {
        auto written = expander.Write(c);
        if (!written) return tl::unexpected(written.error());
        if (*written) ctx.AddGap(GapKind::kCorrupt, c.at, **written);
        return Ok();
      }
      // Cut off by the end of the image: the whole blocks of a raw chunk that are there.
      if (c.type == kChunkRaw) {
        ChunkHeader part = c;
        part.blocks = static_cast<std::uint32_t>((chunk.size() - c.data) / header->block_size);
        IOTMARK_TRY(expander.Write(part));
      }
      ctx.AddGap(GapKind::kTruncated, c.at,
                 "the chunk at " + Hex(c.at) +
                     " is cut off by the end of the image; the expanded image stops after " +
                     std::to_string(expander.written()) + " bytes");
      return Ok();
    };
    const auto walked = WalkChunks(chunk, *header, expand);
    if (!walked) return tl::unexpected(walked.error());
    ctx.SetMeta("expanded_size", std::to_string(expander.written()));
    if (walked->bad) {
      ctx.AddGap(GapKind::kCorrupt, walked->end, *walked->bad + "; the image ends before it");
    } else if (walked->truncated) {
      // A chunk header missing at the very end is what the probe already reported as an issue
      // (the image was cut, or a malformed chunk ended it); only say it if the probe did not.
      if (walked->end <= chunk.size() && info.issues.empty()) {
        ctx.AddGap(GapKind::kTruncated, walked->end,
                   "the image ends after " + std::to_string(walked->count) + " of its " +
                       std::to_string(header->total_chunks) + " chunks");
      }
    } else if (walked->blocks != header->total_blocks) {
      ctx.AddGap(GapKind::kCorrupt, 0, BlockMismatch(*walked, *header));
    }
    return writer->Close();
  }

 private:
  static std::string BlockMismatch(const ChunkList& list, const FileHeader& header) {
    return "the chunks describe " + std::to_string(list.blocks) + " blocks, the header says " +
           std::to_string(header.total_blocks);
  }

  // The expanded size is known before anything is written: refuse up front what a limit would
  // stop half-way.
  static bool Affordable(std::uint64_t expanded, std::uint64_t input, ExtractContext& ctx) {
    const Limits& limits = ctx.budget().limits();
    std::string why;
    if (expanded > limits.max_file_bytes) {
      why = "the file limit of " + std::to_string(limits.max_file_bytes) + " bytes";
    } else if (expanded > limits.max_total_bytes -
                              std::min(limits.max_total_bytes, ctx.budget().bytes_written())) {
      why = "what is left of the output limit of " + std::to_string(limits.max_total_bytes) +
            " bytes";
    } else if (expanded > limits.ratio_floor_bytes &&
               static_cast<double>(expanded) >
                   limits.max_ratio * static_cast<double>(std::max<std::uint64_t>(input, 1))) {
      why = "the expansion limit of " +
            std::to_string(static_cast<std::uint64_t>(limits.max_ratio)) + " times the " +
            std::to_string(input) + " bytes of the sparse image";
    } else {
      return true;
    }
    ctx.AddGap(GapKind::kLimit, 0,
               "the sparse image expands to " + std::to_string(expanded) + " bytes, more than " +
                   why + "; not expanded");
    return false;
  }
};

}  // namespace

std::unique_ptr<const Format> MakeAndroidSparseFormat() {
  return std::make_unique<AndroidSparseFormat>();
}

}  // namespace iotmark::unpack::formats
