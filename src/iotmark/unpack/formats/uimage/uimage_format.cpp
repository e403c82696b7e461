// Legacy U-Boot images (uImage): a 64-byte big-endian header with its own CRC-32, then the
// payload, compressed as ih_comp says. Multi-file and script images start their payload with a
// zero-terminated table of big-endian sizes, and the images follow, each padded to 4 bytes.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/format.hpp"

namespace iotmark::unpack::formats {

namespace {

using model::GapKind;

constexpr std::size_t kHeaderSize = 64;
constexpr std::uint32_t kUimageMagic = 0x27051956;
// OpenWrt's "OKLI" variant: the same header, renamed so that U-Boot does not boot it directly.
constexpr std::uint32_t kOkliMagic = 0x4f4b4c49;
constexpr std::size_t kHeaderCrcOffset = 4;
constexpr std::size_t kNameOffset = 32;
constexpr std::size_t kNameLength = 32;
constexpr std::uint32_t kFileMode = 0644;

constexpr std::uint8_t kTypeMulti = 4;
// Scripts use the multi-file layout (mkimage writes a one-entry size table for them).
constexpr std::uint8_t kTypeScript = 6;
// Real multi-file images hold a kernel, a ramdisk and perhaps a device tree or two.
constexpr std::size_t kMaxImages = 64;

enum class Compression : std::uint8_t { kNone = 0, kGzip, kBzip2, kLzma, kLzo, kLz4, kZstd };
constexpr std::uint8_t kCompressionCount = 7;

// Names as U-Boot's mkimage spells them (image.c), indexed by the header's code.
// clang-format off
constexpr std::string_view kOsNames[] = {
    "invalid", "openbsd", "netbsd", "freebsd", "4_4bsd", "linux", "svr4", "esix", "solaris",
    "irix", "sco", "dell", "ncr", "lynxos", "vxworks", "psos", "qnx", "u-boot", "rtems", "artos",
    "unity", "integrity", "ose", "plan9", "openrtos", "arm-trusted-firmware", "tee", "opensbi",
    "efi"};
// clang-format on
constexpr std::string_view kArchNames[] = {
    "invalid", "alpha",   "arm",     "x86",  "ia64",  "mips",       "mips64", "powerpc",  "s390",
    "sh",      "sparc",   "sparc64", "m68k", "nios",  "microblaze", "nios2",  "blackfin", "avr32",
    "st200",   "sandbox", "nds32",   "or1k", "arm64", "arc",        "x86_64", "xtensa",   "riscv"};
constexpr std::string_view kTypeNames[] = {
    "invalid",     "standalone",   "kernel",        "ramdisk",      "multi",      "firmware",
    "script",      "filesystem",   "flat_dt",       "kwbimage",     "imximage",   "ublimage",
    "omapimage",   "aisimage",     "kernel_noload", "pblimage",     "mxsimage",   "gpimage",
    "atmelimage",  "socfpgaimage", "x86_setup",     "lpc32xximage", "loadable",   "rkimage",
    "rksd",        "rkspi",        "zynqimage",     "zynqmpimage",  "zynqmpbif",  "fpga",
    "vybridimage", "tee",          "firmware_ivt",  "pmmc",         "stm32image", "socfpgaimage_v1",
    "mtk_image",   "imx8mimage",   "imx8image",     "copro",        "sunxi_egon"};
constexpr std::string_view kCompressionNames[] = {"none", "gzip", "bzip2", "lzma",
                                                  "lzo",  "lz4",  "zstd"};

std::string CodeName(std::span<const std::string_view> names, std::uint8_t code) {
  if (code < names.size()) return std::string(names[code]);
  return "unknown(" + std::to_string(code) + ")";
}

struct UimageHeader {
  std::uint32_t magic = 0;
  std::uint32_t time = 0;
  std::uint32_t size = 0;
  std::uint32_t load = 0;
  std::uint32_t entry = 0;
  std::uint32_t data_crc = 0;
  std::uint8_t os = 0;
  std::uint8_t arch = 0;
  std::uint8_t type = 0;
  std::uint8_t comp = 0;
  std::string_view name;  // up to the first NUL of ih_name

  [[nodiscard]] bool multi() const { return type == kTypeMulti || type == kTypeScript; }
};

// Parses the header at the start of `bytes` and checks its CRC: a header whose CRC does not
// match is not a uImage header, which keeps false matches out entirely.
std::optional<UimageHeader> ParseHeader(ByteView bytes) {
  if (bytes.size() < kHeaderSize) return std::nullopt;
  ByteReader reader(bytes.first(kHeaderSize), ByteReader::Order::kBig);
  UimageHeader header;
  header.magic = reader.Read<std::uint32_t>();
  if (header.magic != kUimageMagic && header.magic != kOkliMagic) return std::nullopt;
  const auto header_crc = reader.Read<std::uint32_t>();
  header.time = reader.Read<std::uint32_t>();
  header.size = reader.Read<std::uint32_t>();
  header.load = reader.Read<std::uint32_t>();
  header.entry = reader.Read<std::uint32_t>();
  header.data_crc = reader.Read<std::uint32_t>();
  header.os = reader.Read<std::uint8_t>();
  header.arch = reader.Read<std::uint8_t>();
  header.type = reader.Read<std::uint8_t>();
  header.comp = reader.Read<std::uint8_t>();
  const ByteView name = reader.ReadBytes(kNameLength);
  if (!reader.ok()) return std::nullopt;
  header.name = CStringField(name);

  std::array<std::uint8_t, kHeaderSize> copy{};
  std::copy_n(bytes.begin(), kHeaderSize, copy.begin());
  std::fill_n(copy.begin() + kHeaderCrcOffset, 4, std::uint8_t{0});
  if (crc32_z(0, copy.data(), copy.size()) != header_crc) return std::nullopt;
  return header;
}

// The image name as a file name: [A-Za-z0-9._-] kept, anything else becomes '_', no leading
// dots (no hidden files, no "..").
std::string FileName(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
    out.push_back(keep ? c : '_');
  }
  const std::size_t begin = out.find_first_not_of("._");
  if (begin == std::string::npos) return "image";
  const std::size_t end = out.find_last_not_of('_');
  return out.substr(begin, end + 1 - begin);
}

// The image name for the report: printable ASCII only.
std::string PrintableName(std::string_view name) {
  std::string out;
  for (const char c : name) out.push_back(c >= 0x20 && c <= 0x7e ? c : '?');
  return out;
}

// One image of a multi-file payload, as a range of the payload.
struct SubImage {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

struct Problem {
  GapKind kind = GapKind::kCorrupt;
  std::uint64_t offset = 0;  // in the payload
  std::string reason;
};

struct MultiTable {
  bool terminated = false;  // a complete size table was found
  std::vector<SubImage> images;
  std::vector<Problem> problems;
};

// Reads the size table of a multi-file payload and places the images. `cut` says the payload is
// shorter than the header states, so running out of bytes is truncation, not corruption.
MultiTable ParseMultiTable(ByteView payload, bool cut) {
  MultiTable table;
  const GapKind short_kind = cut ? GapKind::kTruncated : GapKind::kCorrupt;
  std::vector<std::uint32_t> sizes;
  std::uint64_t pos = 0;
  while (true) {
    const auto size = LoadBe<std::uint32_t>(payload, pos);
    if (!size) {
      table.problems.push_back(
          {short_kind, pos, "multi-file size table runs past the end of the payload"});
      return table;
    }
    pos += 4;
    if (*size == 0) break;
    if (sizes.size() == kMaxImages) {
      table.problems.push_back(
          {GapKind::kCorrupt, pos - 4,
           "multi-file size table lists more than " + std::to_string(kMaxImages) + " images"});
      return table;
    }
    sizes.push_back(*size);
  }
  table.terminated = true;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const std::uint64_t available = pos < payload.size() ? payload.size() - pos : 0;
    if (sizes[i] > available) {
      table.problems.push_back({short_kind, std::min<std::uint64_t>(pos, payload.size()),
                                "image " + std::to_string(i) + " states " +
                                    std::to_string(sizes[i]) + " bytes but only " +
                                    std::to_string(available) + " remain"});
      if (available > 0) table.images.push_back({pos, available});
      break;
    }
    table.images.push_back({pos, sizes[i]});
    pos += (std::uint64_t{sizes[i]} + 3) & ~std::uint64_t{3};
  }
  return table;
}

// Streams one output file, created with its first byte, so a stream that yields nothing leaves
// no empty file behind.
class LazyFile {
 public:
  LazyFile(EntrySink& sink, std::string name) : sink_(sink), name_(std::move(name)) {}

  Status Write(ByteView bytes) {
    if (!writer_) {
      auto created = sink_.CreateFile(name_, kFileMode);
      if (!created) return tl::unexpected(created.error());
      writer_.emplace(std::move(*created));
    }
    return writer_->Write(bytes);
  }
  Status Close() { return writer_ ? writer_->Close() : Ok(); }

 private:
  EntrySink& sink_;
  std::string name_;
  std::optional<FileWriter> writer_;
};

// lzop container (what `lzop` writes and U-Boot's lzop_decompress reads): a header, then blocks
// of raw LZO1X data, each with its sizes and checksums.
constexpr std::array<std::uint8_t, 9> kLzopMagic = {0x89, 'L',  'Z',  'O', 0x00,
                                                    0x0d, 0x0a, 0x1a, 0x0a};
constexpr std::uint32_t kLzopAdler32D = 0x1;
constexpr std::uint32_t kLzopAdler32C = 0x2;
constexpr std::uint32_t kLzopExtraField = 0x40;
constexpr std::uint32_t kLzopCrc32D = 0x100;
constexpr std::uint32_t kLzopCrc32C = 0x200;
constexpr std::uint32_t kLzopMultipart = 0x400;
constexpr std::uint32_t kLzopFilter = 0x800;
constexpr std::uint32_t kLzopHeaderCrc32 = 0x1000;
// Header fields added with lzop 0.94.
constexpr std::uint16_t kLzopVersionWithLevel = 0x0940;

bool StartsWith(ByteView bytes, std::span<const std::uint8_t> prefix) {
  return bytes.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

codec::DecodeResult DecodeLzop(ByteView input, const codec::Output& out, const Budget& budget) {
  codec::DecodeResult result;
  const auto stop = [&result](codec::Stop why, std::uint64_t at, std::string problem) {
    result.stop = why;
    result.consumed = at;
    result.problem = std::move(problem);
    return result;
  };
  if (!StartsWith(input, kLzopMagic)) {
    return stop(codec::Stop::kCorrupt, 0, "no lzop magic");
  }
  ByteReader reader(input, ByteReader::Order::kBig);
  reader.Skip(kLzopMagic.size());
  const std::size_t header_start = reader.pos();
  const auto version = reader.Read<std::uint16_t>();
  reader.Skip(2);                                        // library version
  if (version >= kLzopVersionWithLevel) reader.Skip(2);  // version needed to extract
  const auto method = reader.Read<std::uint8_t>();
  if (version >= kLzopVersionWithLevel) reader.Skip(1);  // level
  const auto flags = reader.Read<std::uint32_t>();
  const std::uint32_t filter = (flags & kLzopFilter) != 0 ? reader.Read<std::uint32_t>() : 0;
  reader.Skip(8);                                        // mode, mtime (low)
  if (version >= kLzopVersionWithLevel) reader.Skip(4);  // mtime (high)
  const auto name_length = reader.Read<std::uint8_t>();
  reader.Skip(name_length);
  const std::size_t header_end = reader.pos();
  const auto header_check = reader.Read<std::uint32_t>();
  if (!reader.ok()) return stop(codec::Stop::kTruncated, input.size(), "lzop header cut short");
  const ByteView header = input.subspan(header_start, header_end - header_start);
  const auto computed = static_cast<std::uint32_t>(
      (flags & kLzopHeaderCrc32) != 0 ? crc32_z(0, header.data(), header.size())
                                      : adler32_z(1, header.data(), header.size()));
  if (computed != header_check) {
    return stop(codec::Stop::kCorrupt, header_start, "lzop header checksum mismatch");
  }
  // Methods 1-3 are LZO1X at different levels; all decode alike.
  if (method < 1 || method > 3) {
    return stop(codec::Stop::kUnsupported, header_start,
                "lzop method " + std::to_string(method) + " is not LZO1X");
  }
  if (filter != 0 || (flags & kLzopMultipart) != 0) {
    return stop(codec::Stop::kUnsupported, header_start, "lzop filters and multipart files");
  }
  if ((flags & kLzopExtraField) != 0) {
    const auto extra_length = reader.Read<std::uint32_t>();
    reader.Skip(extra_length);
    reader.Skip(4);  // its checksum
    if (!reader.ok()) return stop(codec::Stop::kTruncated, input.size(), "lzop header cut short");
  }

  // Every block uses at least 9 input bytes, so the loop ends with the input.
  while (true) {
    if (auto in_time = budget.CheckTime(); !in_time) {
      result.output_error = in_time.error();
      return stop(codec::Stop::kOutputError, reader.pos(), in_time.error().message);
    }
    const std::size_t block_start = reader.pos();
    const auto dst_length = reader.Read<std::uint32_t>();
    if (!reader.ok()) return stop(codec::Stop::kTruncated, block_start, "lzop stream cut short");
    if (dst_length == 0) {
      result.complete = true;
      return stop(codec::Stop::kEnd, reader.pos(), "");
    }
    const auto src_length = reader.Read<std::uint32_t>();
    const std::uint32_t d_adler = (flags & kLzopAdler32D) != 0 ? reader.Read<std::uint32_t>() : 0;
    const std::uint32_t d_crc = (flags & kLzopCrc32D) != 0 ? reader.Read<std::uint32_t>() : 0;
    if (src_length < dst_length) {
      if ((flags & kLzopAdler32C) != 0) reader.Skip(4);
      if ((flags & kLzopCrc32C) != 0) reader.Skip(4);
    }
    if (!reader.ok()) return stop(codec::Stop::kTruncated, block_start, "lzop block cut short");
    if (dst_length > codec::kMaxLzoBlock || src_length == 0 || src_length > dst_length) {
      return stop(codec::Stop::kCorrupt, block_start,
                  "lzop block sizes " + std::to_string(src_length) + " -> " +
                      std::to_string(dst_length) + " are impossible");
    }
    const ByteView data = reader.ReadBytes(src_length);
    if (!reader.ok()) return stop(codec::Stop::kTruncated, block_start, "lzop block cut short");

    std::uint32_t adler = 1;
    std::uint32_t crc = 0;
    std::uint64_t block_produced = 0;
    const codec::Output block_out = [&](ByteView bytes) -> Status {
      adler = static_cast<std::uint32_t>(adler32_z(adler, bytes.data(), bytes.size()));
      crc = static_cast<std::uint32_t>(crc32_z(crc, bytes.data(), bytes.size()));
      block_produced += bytes.size();
      result.produced += bytes.size();
      return out(bytes);
    };
    if (src_length == dst_length) {
      // lzop stores a block that does not compress as it is.
      if (auto written = block_out(data); !written) {
        result.output_error = written.error();
        return stop(codec::Stop::kOutputError, block_start, written.error().message);
      }
    } else {
      codec::DecodeOptions options;
      options.expected_output = dst_length;
      const codec::DecodeResult block =
          codec::DecodeStream(codec::Codec::kLzo1x, data, block_out, options);
      if (block.stop == codec::Stop::kOutputError) {
        result.output_error = block.output_error;
        return stop(codec::Stop::kOutputError, block_start, block.problem);
      }
      if (!block.complete || block_produced != dst_length) {
        return stop(block.complete ? codec::Stop::kCorrupt : block.stop, block_start,
                    "LZO1X block: " + (block.complete ? "short output" : block.problem));
      }
    }
    if (((flags & kLzopAdler32D) != 0 && adler != d_adler) ||
        ((flags & kLzopCrc32D) != 0 && crc != d_crc)) {
      return stop(codec::Stop::kCorrupt, block_start, "lzop block checksum mismatch");
    }
  }
}

std::optional<codec::Codec> CodecOf(Compression compression, ByteView data) {
  switch (compression) {
    case Compression::kGzip:
      return codec::Codec::kGzip;
    case Compression::kBzip2:
      return codec::Codec::kBzip2;
    case Compression::kLzma:
      return codec::Codec::kLzmaAlone;
    case Compression::kLz4: {
      // U-Boot reads LZ4 frames; kernels built with lz4 -l carry the legacy format.
      static constexpr std::array<std::uint8_t, 4> kLegacy = {0x02, 0x21, 0x4c, 0x18};
      return StartsWith(data, kLegacy) ? codec::Codec::kLz4Legacy : codec::Codec::kLz4Frame;
    }
    case Compression::kZstd:
      return codec::Codec::kZstd;
    case Compression::kNone:
    case Compression::kLzo:
      break;
  }
  return std::nullopt;
}

// Whether `data` starts like a stream of `compression`: in a multi-file image only the first
// image (the kernel) is necessarily compressed as the header says; a ramdisk may be stored.
bool LooksCompressed(Compression compression, ByteView data) {
  if (compression == Compression::kLzo) return StartsWith(data, kLzopMagic);
  const auto codec = CodecOf(compression, data);
  return codec && codec::LooksValid(*codec, data, 1024);
}

// Adds a whole file; a refused entry is skipped (the sink recorded why), a limit stops.
Status AddWhole(ExtractContext& ctx, const std::string& name, ByteView bytes) {
  auto added = ctx.sink().AddFile(name, kFileMode, bytes);
  if (!added && ShouldStop(added.error())) return added;
  return Ok();
}

// Decodes one payload (found `offset` bytes into the chunk) into `name`. When decoding stops
// early, what was decoded stays, a gap says where and why, and the payload is also kept as it is
// in "<name>.raw".
Status ExtractPayload(Compression compression, ByteView data, std::uint64_t offset,
                      const std::string& name, ExtractContext& ctx) {
  if (compression == Compression::kNone) return AddWhole(ctx, name, data);

  LazyFile file(ctx.sink(), name);
  const codec::Output out = [&file](ByteView bytes) { return file.Write(bytes); };
  codec::DecodeResult result;
  std::string codec_name = "lzop";
  if (compression == Compression::kLzo) {
    result = DecodeLzop(data, out, ctx.budget());
  } else {
    const codec::Codec codec = *CodecOf(compression, data);
    codec_name = std::string(codec::ToString(codec));
    result = codec::DecodeStream(codec, data, out);
  }
  const Status closed = file.Close();
  if (result.stop == codec::Stop::kOutputError) {
    const Error error = result.output_error.value_or(Error{ErrorCode::kInternal, result.problem});
    if (ShouldStop(error)) return tl::unexpected(error);
  }
  if (!closed && ShouldStop(closed.error())) return closed;
  if (result.complete) return Ok();
  if (result.stop != codec::Stop::kOutputError) {
    ctx.AddGap(codec::GapKindOf(result.stop), offset + result.consumed,
               codec_name + " payload of " + name + " stops after " +
                   std::to_string(result.produced) + " bytes of output: " + result.problem);
  }
  return AddWhole(ctx, name + ".raw", data);
}

class UimageFormat final : public Format {
 public:
  [[nodiscard]] std::string_view name() const override { return "uimage"; }
  [[nodiscard]] std::string_view description() const override {
    return "U-Boot legacy image (uImage)";
  }
  [[nodiscard]] std::span<const Magic> magics() const override { return kMagics; }

  [[nodiscard]] std::optional<Chunk> Probe(ByteView blob, std::uint64_t start) const override {
    if (start >= blob.size()) return std::nullopt;
    const ByteView rest = blob.subspan(start);
    const auto header = ParseHeader(rest);
    if (!header) return std::nullopt;

    Chunk chunk;
    chunk.offset = start;
    chunk.length = kHeaderSize + std::uint64_t{header->size};
    auto& meta = chunk.meta;
    meta["name"] = PrintableName(header->name);
    meta["os"] = CodeName(kOsNames, header->os);
    meta["arch"] = CodeName(kArchNames, header->arch);
    meta["type"] = CodeName(kTypeNames, header->type);
    meta["compression"] = CodeName(kCompressionNames, header->comp);
    meta["load_address"] = HexOffset(header->load);
    meta["entry_address"] = HexOffset(header->entry);
    meta["timestamp"] = std::to_string(header->time);
    if (header->magic == kOkliMagic) meta["magic"] = "OKLI";

    const ByteView payload = rest.subspan(kHeaderSize);
    if (chunk.length > rest.size()) {
      chunk.length = rest.size();
      meta["data_crc"] = "unchecked";
      chunk.issues.push_back({GapKind::kTruncated, "uImage header states " +
                                                       std::to_string(header->size) +
                                                       " bytes of data but only " +
                                                       std::to_string(payload.size()) + " remain"});
    } else if (crc32_z(0, payload.data(), header->size) == header->data_crc) {
      meta["data_crc"] = "ok";
    } else {
      meta["data_crc"] = "mismatch";
      chunk.issues.push_back({GapKind::kCorrupt, "uImage data CRC-32 does not match the header"});
    }
    if (header->multi()) {
      const ByteView data = payload.first(std::min<std::uint64_t>(payload.size(), header->size));
      const MultiTable table = ParseMultiTable(data, data.size() < header->size);
      if (table.terminated) meta["images"] = std::to_string(table.images.size());
    }
    return chunk;
  }

  Status Extract(ByteView chunk, const Chunk& /*info*/, ExtractContext& ctx) const override {
    const auto header = ParseHeader(chunk);
    if (!header) return Fail(ErrorCode::kCorruptInput, "uImage header does not parse");
    const ByteView rest = chunk.subspan(kHeaderSize);
    const ByteView data = rest.first(std::min<std::uint64_t>(rest.size(), header->size));
    const std::string name = FileName(header->name);

    if (header->comp >= kCompressionCount) {
      ctx.AddGap(
          GapKind::kUnsupported, kHeaderSize,
          "unknown compression " + std::to_string(header->comp) + "; the payload is kept as it is");
      return AddWhole(ctx, name + ".raw", data);
    }
    const auto compression = static_cast<Compression>(header->comp);
    if (!header->multi()) return ExtractPayload(compression, data, kHeaderSize, name, ctx);

    const MultiTable table = ParseMultiTable(data, data.size() < header->size);
    for (const Problem& problem : table.problems) {
      ctx.AddGap(problem.kind, kHeaderSize + problem.offset, problem.reason);
    }
    if (!table.terminated) return AddWhole(ctx, name + ".raw", data);
    for (std::size_t i = 0; i < table.images.size(); ++i) {
      IOTMARK_TRY(ctx.budget().CheckTime());
      const SubImage& image = table.images[i];
      const ByteView bytes = data.subspan(image.offset, image.size);
      const std::string image_name = name + "-" + std::to_string(i);
      if (i > 0 && compression != Compression::kNone && !LooksCompressed(compression, bytes)) {
        IOTMARK_TRY(AddWhole(ctx, image_name, bytes));
        continue;
      }
      IOTMARK_TRY(ExtractPayload(compression, bytes, kHeaderSize + image.offset, image_name, ctx));
    }
    return Ok();
  }

 private:
  static constexpr Magic kMagics[] = {
      {std::string_view("\x27\x05\x19\x56", 4), 0},
      {"OKLI", 0},
  };
};

}  // namespace

std::unique_ptr<const Format> MakeUimageFormat() { return std::make_unique<UimageFormat>(); }

}  // namespace iotmark::unpack::formats
