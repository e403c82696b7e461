// U-Boot FIT images and plain flattened device trees (magic 0xd00dfeed, big-endian header whose
// totalsize gives the tree's extent). A FIT lists its payloads under /images: each is written as a
// file named after its node, checked against its hash nodes, and described with its
// configurations and signature nodes, so that a later analyzer can tell whether the update path
// is signed. Data may be embedded in the tree or stored after it (mkimage -E: data-offset from the
// 4-aligned end of the tree, or data-position from its start); the chunk then runs to the end of
// the last such payload.
//
// A plain device tree (no /images: a board's DTB appended to a kernel, U-Boot's control tree) is
// reported with its model, compatible and verification keys and written out as it is, so that it
// becomes a file the inventory hashes and analyzers can read. A tree that already is the whole
// blob is only identified (transparent): writing it again would nest the same file forever. A
// tree libfdt refuses, or one cut short, is also written as it is, so the carver still looks for
// the kernel and filesystem inside it.
//
// The tree is parsed by libfdt (fdt_blob.cpp guards it); only the FIT conventions on top of it
// are ours.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/fit/fdt_blob.hpp"
#include "iotmark/unpack/formats/fit/fit_hash.hpp"
#include "iotmark/unpack/formats/fit/fit_tree.hpp"

namespace iotmark::unpack::formats {

namespace {

using fit::FdtBlob;
using fit::FitImage;
using fit::FitTree;
using model::GapKind;

constexpr std::uint32_t kFileMode = 0644;
constexpr std::string_view kTreeFileName = "device_tree.dtb";
constexpr std::size_t kMaxNameLength = 100;

// A chunk that is the whole blob and would only be written out again unchanged.
bool IsWholeBlob(ByteView blob, std::uint64_t start, std::uint64_t length) {
  return start == 0 && length >= blob.size();
}

void Clip(Chunk& chunk, std::uint64_t available, std::string_view what) {
  if (chunk.length <= available) return;
  chunk.issues.push_back(
      {GapKind::kTruncated, std::string(what) + " ends " + std::to_string(chunk.length) +
                                " bytes in but only " + std::to_string(available) + " remain"});
  chunk.length = available;
}

// Node names become file names: anything but a plain name character is replaced, and names that
// are empty, dot-only or already used get a distinct one.
class FileNames {
 public:
  std::string For(std::string_view node, std::size_t index) {
    std::string name;
    for (const char c : node.substr(0, std::min(node.size(), kMaxNameLength))) {
      const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' || c == '+' ||
                         c == '@' || c == ',';
      name.push_back(plain ? c : '_');
    }
    if (name.find_first_not_of('.') == std::string::npos) name = "image-" + std::to_string(index);
    std::string unique = name;
    for (int n = 2; used_.count(unique) != 0; ++n) unique = name + "_" + std::to_string(n);
    used_.insert(unique);
    return unique;
  }

 private:
  std::set<std::string> used_;
};

// Verifies every hash node of `image` over `data`; returns the image's hash verdict.
std::string VerifyHashes(const FitImage& image, ByteView data, std::uint64_t data_offset,
                         ExtractContext& ctx) {
  bool all_ok = true;
  bool mismatch = false;
  for (const fit::FitHash& hash : image.hashes) {
    std::string computed;
    switch (fit::CheckHash(hash, data, &computed)) {
      case fit::HashCheck::kOk:
        break;
      case fit::HashCheck::kMismatch:
        mismatch = true;
        ctx.AddGap(GapKind::kCorrupt, data_offset,
                   "FIT image '" + image.node + "': " + hash.algo + " mismatch: stored " +
                       fit::HexBytes(hash.value) + ", data gives " + computed);
        break;
      case fit::HashCheck::kNoValue:
      case fit::HashCheck::kUnsupported:
        all_ok = false;
        break;
    }
  }
  if (mismatch) return "mismatch";
  return all_ok ? "ok" : "unchecked";
}

// Writes one image's data and checks it; returns the hash verdict for the summary.
Result<std::string> ExtractImage(const FitImage& image, const std::string& name, ByteView chunk,
                                 ExtractContext& ctx) {
  const std::string prefix = "image." + image.node + ".";
  if (!image.has_data) {
    ctx.AddGap(GapKind::kCorrupt, 0,
               "FIT image '" + image.node + "' has no data, data-offset or data-position");
    return std::string("unchecked");
  }
  if (image.data_offset >= chunk.size() && image.data_size > 0) {
    ctx.AddGap(GapKind::kTruncated, chunk.size(),
               "data of FIT image '" + image.node + "' (" + std::to_string(image.data_size) +
                   " bytes at " + std::to_string(image.data_offset) + ") lies past the end");
    return std::string("unchecked");
  }
  const std::uint64_t begin = std::min<std::uint64_t>(image.data_offset, chunk.size());
  const std::uint64_t available = std::min<std::uint64_t>(image.data_size, chunk.size() - begin);
  const ByteView data = chunk.subspan(begin, available);
  if (auto added = ctx.sink().AddFile(name, kFileMode, data); !added && ShouldStop(added.error())) {
    return tl::unexpected(added.error());
  }
  ctx.SetMeta(prefix + "file", name);
  if (!image.cipher.empty()) {
    ctx.AddGap(
        GapKind::kEncrypted, begin,
        "FIT image '" + image.node + "' is encrypted (" + image.cipher + "); written as stored");
  }
  if (available < image.data_size) {
    ctx.AddGap(GapKind::kTruncated, chunk.size(),
               "FIT image '" + image.node + "' is cut short: " +
                   std::to_string(image.data_size - available) + " bytes missing");
    return std::string("unchecked");
  }
  if (image.hashes.empty()) return std::string("none");
  return VerifyHashes(image, data, begin, ctx);
}

Status ExtractFit(const FitTree& tree, ByteView chunk, ExtractContext& ctx) {
  FileNames names;
  std::map<std::string, int> verdicts;
  for (std::size_t i = 0; i < tree.images.size(); ++i) {
    const FitImage& image = tree.images[i];
    auto verdict = ExtractImage(image, names.For(image.node, i), chunk, ctx);
    if (!verdict) return tl::unexpected(verdict.error());
    ctx.SetMeta("image." + image.node + ".hash", *verdict);
    ++verdicts[*verdict];
  }
  if (tree.more_images) {
    ctx.AddGap(GapKind::kLimit, 0,
               "FIT lists more than " + std::to_string(fit::kMaxImages) +
                   " images; the rest were not extracted");
  }
  // One word for the whole image: every hash checked and right, some wrong, or not all checked.
  std::string hashes = "none";
  if (verdicts["mismatch"] > 0) {
    hashes = "mismatch";
  } else if (verdicts["unchecked"] > 0) {
    hashes = "unchecked";
  } else if (verdicts["ok"] > 0) {
    hashes = verdicts["none"] > 0 ? "partial" : "ok";
  }
  ctx.SetMeta("hashes", hashes);
  return Ok();
}

class FitFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "fit"; }
  [[nodiscard]] std::string_view description() const override {
    return "U-Boot FIT image / flattened device tree";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = fit::ParseFdtHeader(rest);
    if (!header) return std::nullopt;
    Chunk chunk;
    chunk.offset = start;
    chunk.length = header->total_size;
    chunk.meta["fdt_version"] = std::to_string(header->version);
    if (header->total_size > rest.size()) {
      chunk.meta["kind"] = "fdt";
      chunk.meta["state"] = "truncated";
      Clip(chunk, rest.size(), "device tree");
      chunk.transparent = IsWholeBlob(blob, start, chunk.length);
      return chunk;
    }
    const auto fdt = FdtBlob::Open(rest.first(header->total_size));
    if (!fdt) {
      chunk.meta["kind"] = "fdt";
      chunk.meta["state"] = "damaged";
      chunk.issues.push_back({GapKind::kCorrupt, fdt.error().message});
      chunk.transparent = IsWholeBlob(blob, start, chunk.length);
      return chunk;
    }
    const FitTree tree = fit::ReadFitTree(*fdt);
    for (auto& [key, value] : fit::DescribeFitTree(tree)) chunk.meta[key] = value;
    chunk.length = tree.extent;
    Clip(chunk, rest.size(), "FIT external data");
    // mkimage pads every external payload to 4 bytes; the padding after the last one is the
    // FIT's too, when it is there.
    if (chunk.length == tree.extent && tree.extent > header->total_size) {
      chunk.length = std::min<std::uint64_t>((tree.extent + 3) & ~std::uint64_t{3}, rest.size());
    }
    chunk.transparent = !tree.is_fit && IsWholeBlob(blob, start, chunk.length);
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto header = fit::ParseFdtHeader(chunk);
    if (!header) return Fail(ErrorCode::kCorruptInput, "device tree header does not parse");
    if (header->total_size > chunk.size()) return WriteTree(chunk, ctx);
    const ByteView tree_bytes = chunk.first(header->total_size);
    const auto fdt = FdtBlob::Open(tree_bytes);
    if (!fdt) return WriteTree(tree_bytes, ctx);
    const FitTree tree = fit::ReadFitTree(*fdt);
    if (!tree.is_fit) return WriteTree(tree_bytes, ctx);
    return ExtractFit(tree, chunk, ctx);
  }

 private:
  // Plain, damaged or truncated trees: the bytes as they are, for the inventory and the carver.
  static Status WriteTree(ByteView bytes, ExtractContext& ctx) {
    auto added = ctx.sink().AddFile(kTreeFileName, kFileMode, bytes);
    if (!added && ShouldStop(added.error())) return added;
    return Ok();
  }

  static constexpr Magic kMagics[] = {{std::string_view("\xd0\x0d\xfe\xed", 4), 0}};
};

}  // namespace

std::unique_ptr<const Format> MakeFitFormat() { return std::make_unique<FitFormat>(); }

}  // namespace iotmark::unpack::formats
