// The format plug-in interface. A format is a folder under formats/ and one line in
// builtin_formats.cpp; it says which magic bytes announce it, computes a chunk's extent from
// its own structures, and extracts the chunk through an EntrySink that keeps writes safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/model/gap.hpp"

namespace iotmark::unpack {

class ExtractContext;

// `bytes` found `offset` bytes after the start of a chunk announces the format there.
struct Magic {
  std::string_view bytes;
  std::uint64_t offset = 0;
};

// Something odd that a probe noticed about a chunk (it is truncated, a checksum is wrong).
struct ProbeIssue {
  model::GapKind kind = model::GapKind::kCorrupt;
  std::string reason;
};

// A region of a blob that a format recognised.
struct Chunk {
  std::uint64_t offset = 0;  // in the blob
  std::uint64_t length = 0;  // bytes covered, already clipped to the end of the blob
  // For streams whose end is only known by decoding them (gzip, bzip2, xz, lzma): the probe
  // checks that a valid stream starts here and sets `length` to what remains of the blob; the
  // extractor then reports the bytes it really used with ExtractContext::SetConsumed().
  bool length_from_extract = false;
  // An identification only (a kernel banner, a zImage header): reported in the tree, and the
  // carver still looks inside it for further chunks. Transparent chunks are not extracted.
  bool transparent = false;
  std::map<std::string, std::string> meta;  // facts worth reporting: compression, name, version
  std::vector<ProbeIssue> issues;           // become gaps of this chunk
};

class Format {
 public:
  virtual ~Format() = default;

  // Short, stable, lower-case name used in reports and directory names: "squashfs", "uimage".
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual std::string_view description() const = 0;
  // The byte patterns that announce the format. A format without magics is never carved.
  [[nodiscard]] virtual std::span<const Magic> magics() const = 0;

  // Decides whether a chunk of this format starts at `start` in `blob`, and where it ends,
  // from the format's own structures (never "until the next signature"). Called for every
  // magic match, so it must be cheap and must reject false matches firmly. A chunk that runs
  // past the end of the blob is clipped and carries a kTruncated issue. nullopt: not this format.
  [[nodiscard]] virtual std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const = 0;

  // Extracts `chunk` (exactly the bytes the probe covered) into ctx.sink(). Problems with single
  // entries become gaps through ctx and extraction goes on; an Error return means the chunk as a
  // whole could not be read further (what was written so far stays).
  virtual Status Extract(ByteView chunk, const Chunk& info, ExtractContext& ctx) const = 0;
};

using FormatList = std::vector<std::unique_ptr<const Format>>;

// Every format the unpacker knows, in priority order (earlier wins when two claim one offset).
const FormatList& BuiltinFormats();

}  // namespace iotmark::unpack
