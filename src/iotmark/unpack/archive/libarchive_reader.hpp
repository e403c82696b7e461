// Reads one archive chunk from memory with libarchive and writes its entries through the
// ExtractContext's EntrySink: the shared body of the tar, cpio, zip, 7z, ar and ISO 9660 formats.
#pragma once

#include <algorithm>
#include <string_view>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::archive {

// Exactly one libarchive reader is enabled per chunk, and no filter: compression layers are
// chunks of their own, found and decoded by other formats.
enum class ArchiveFormat { kTar, kCpio, kZip, kSevenZip, kAr, kIso9660 };

std::string_view ToString(ArchiveFormat format);

// Extracts every entry of the `format` archive held in `chunk`. Problems with single entries
// (unsafe names, encrypted or damaged data) become gaps and reading goes on; a fatal read error
// after the first entry becomes a gap and ends the chunk with what was written so far. Returns
// an Error when the chunk cannot be opened at all, or when the sink says to stop (a limit, I/O).
// Sets the meta "variant" to libarchive's name for what it read ("GNU tar format", ...).
// `truncated`: the probe found the chunk cut short, so data that ends early is reported as
// truncation rather than damage.
Status ReadArchive(ByteView chunk, ArchiveFormat format, ExtractContext& ctx,
                   bool truncated = false);

// True if the probe found `chunk` cut short by the end of the blob.
inline bool IsTruncated(const Chunk& chunk) {
  return std::any_of(chunk.issues.begin(), chunk.issues.end(), [](const ProbeIssue& issue) {
    return issue.kind == model::GapKind::kTruncated;
  });
}

}  // namespace iotmark::unpack::archive
