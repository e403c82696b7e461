#include "iotmark/unpack/formats/linux_kernel/kernel_payload.hpp"

#include <array>
#include <optional>
#include <string>
#include <utility>

#include "iotmark/unpack/codec/codec.hpp"
#include "iotmark/unpack/entry_sink.hpp"
#include "iotmark/unpack/formats/linux_kernel/kernel_banner.hpp"
#include "iotmark/unpack/formats/linux_kernel/lzop_stream.hpp"

namespace iotmark::unpack::formats::linux_kernel {

namespace {

using codec::DecodeResult;
using codec::Stop;

constexpr std::uint32_t kFileMode = 0644;
constexpr std::string_view kOutputName = "vmlinux";
// Decoding this much is enough to believe a stream is real.
constexpr std::uint64_t kProbeOutput = 4096;
// Magic matches tried before giving up on an image: the payload follows the decompressor's code
// closely, and every try decodes up to kProbeOutput bytes.
constexpr int kMaxTries = 64;

bool StartsWith(ByteView bytes, std::string_view magic) {
  return bytes.size() >= magic.size() && AsChars(bytes.first(magic.size())) == magic;
}

// An .lzma header as `lzma -9` writes it: the usual lc/lp/pb byte, a dictionary of 2^n or
// 2^n + 2^(n-1) bytes of at least 64 KiB, and an unknown or plausible uncompressed size.
bool LooksLikeLzma(ByteView bytes) {
  if (!StartsWith(bytes, std::string_view("\x5d\x00\x00", 3))) return false;
  const auto dictionary = LoadLe<std::uint32_t>(bytes, 1);
  const auto size = LoadLe<std::uint64_t>(bytes, 5);
  if (!dictionary || !size || *dictionary < (1u << 16)) return false;
  const std::uint32_t d = *dictionary;
  const bool power = (d & (d - 1)) == 0;
  const std::uint32_t low = d & (~d + 1);
  const bool power_and_half = d == low * 3;
  return (power || power_and_half) && (*size == UINT64_MAX || *size < (std::uint64_t{1} << 32));
}

std::optional<codec::Codec> CodecOf(std::string_view compression) {
  if (compression == "gzip") return codec::Codec::kGzip;
  if (compression == "xz") return codec::Codec::kXz;
  if (compression == "bzip2") return codec::Codec::kBzip2;
  if (compression == "lzma") return codec::Codec::kLzmaAlone;
  if (compression == "lz4") return codec::Codec::kLz4Legacy;
  if (compression == "zstd") return codec::Codec::kZstd;
  return std::nullopt;
}

DecodeResult Decode(std::string_view compression, ByteView input, const codec::Output& out,
                    std::uint64_t max_output) {
  if (compression == "lzo") return DecodeLzop(input, out, max_output);
  if (compression == "none") {
    // An uncompressed kernel (CONFIG_KERNEL_UNCOMPRESSED) is its own payload.
    DecodeResult result;
    const ByteView part = input.first(std::min<std::uint64_t>(input.size(), max_output));
    if (auto written = out(part); !written) {
      result.stop = Stop::kOutputError;
      result.output_error = written.error();
      result.problem = written.error().message;
      return result;
    }
    result.consumed = result.produced = part.size();
    result.complete = part.size() == input.size();
    result.stop = result.complete ? Stop::kEnd : Stop::kOutputLimit;
    return result;
  }
  const auto codec = CodecOf(compression);
  if (!codec) {
    DecodeResult result;
    result.stop = Stop::kUnsupported;
    result.problem = "unknown compression";
    return result;
  }
  codec::DecodeOptions options;
  options.max_output = max_output;
  return codec::DecodeStream(*codec, input, out, options);
}

// The first bytes of every magic CompressionOf() knows, for a quick scan.
constexpr std::array<bool, 256> kFirstBytes = [] {
  std::array<bool, 256> table{};
  for (const int b : {0x1f, 0xfd, int{'B'}, 0x5d, 0x89, 0x02, 0x28}) table[b] = true;
  return table;
}();

}  // namespace

std::string_view CompressionOf(ByteView bytes) {
  if (bytes.size() >= 4 && StartsWith(bytes, "\x1f\x8b\x08") && (bytes[3] & 0xe0) == 0) {
    return "gzip";
  }
  if (StartsWith(bytes, std::string_view("\xfd"
                                         "7zXZ\x00",
                                         6)))
    return "xz";
  if (bytes.size() >= 10 && StartsWith(bytes, "BZh") && bytes[3] >= '1' && bytes[3] <= '9' &&
      (AsChars(bytes.subspan(4, 6)) == "\x31\x41\x59\x26\x53\x59" ||
       AsChars(bytes.subspan(4, 6)) == "\x17\x72\x45\x38\x50\x90")) {
    return "bzip2";
  }
  if (LooksLikeLzma(bytes)) return "lzma";
  if (StartsWith(bytes, kLzopMagic)) return "lzo";
  if (StartsWith(bytes, "\x02\x21\x4c\x18")) return "lz4";
  if (StartsWith(bytes, "\x28\xb5\x2f\xfd")) return "zstd";
  if (bytes.size() >= 5 &&
      StartsWith(bytes,
                 "\x7f"
                 "ELF") &&
      (bytes[4] == 1 || bytes[4] == 2)) {
    return "none";
  }
  return "";
}

bool PayloadStarts(std::string_view compression, ByteView bytes) {
  const codec::Output discard = [](ByteView) { return Ok(); };
  const DecodeResult result = Decode(compression, bytes, discard, kProbeOutput);
  if (result.produced == 0) return false;
  return result.stop == Stop::kEnd || result.stop == Stop::kOutputLimit ||
         result.stop == Stop::kTruncated;
}

std::optional<KernelPayload> FindPayload(ByteView image, std::uint64_t from) {
  int tries = 0;
  for (std::uint64_t pos = from; pos < image.size(); ++pos) {
    if (!kFirstBytes[image[pos]]) continue;
    const ByteView rest = image.subspan(pos);
    const std::string_view compression = CompressionOf(rest);
    if (compression.empty() || compression == "none") continue;
    if (PayloadStarts(compression, rest)) return KernelPayload{pos, rest.size(), compression};
    if (++tries == kMaxTries) break;
  }
  return std::nullopt;
}

Status ExtractPayload(ByteView image, const KernelPayload& payload, ExtractContext& ctx) {
  const std::uint64_t offset = std::min<std::uint64_t>(payload.offset, image.size());
  const ByteView input =
      image.subspan(offset, std::min<std::uint64_t>(payload.length, image.size() - offset));
  BannerScanner scanner;
  std::optional<FileWriter> writer;
  const codec::Output out = [&](ByteView bytes) -> Status {
    if (!writer) {
      auto created = ctx.sink().CreateFile(kOutputName, kFileMode);
      if (!created) return tl::unexpected(created.error());
      writer.emplace(std::move(*created));
    }
    scanner.Feed(bytes);
    return writer->Write(bytes);
  };
  const DecodeResult result = Decode(payload.compression, input, out, UINT64_MAX);
  Status closed = writer ? writer->Close() : Ok();
  scanner.Finish();

  ctx.SetMeta("payload_compression", std::string(payload.compression));
  ctx.SetMeta("payload_offset", std::to_string(offset));
  ctx.SetMeta("uncompressed_size", std::to_string(result.produced));
  if (const auto& banner = scanner.banner()) {
    ctx.SetMeta("version", banner->version);
    ctx.SetMeta("banner", banner->line);
  }
  if (result.stop == Stop::kOutputError) {
    Error error = result.output_error.value_or(Error{ErrorCode::kInternal, result.problem});
    if (ShouldStop(error)) return tl::unexpected(std::move(error));
    ctx.AddGap(model::GapKind::kUnsafeEntry, offset, error.message);
    return Ok();
  }
  if (!closed && ShouldStop(closed.error())) return closed;
  if (!result.complete) {
    ctx.AddGap(codec::GapKindOf(result.stop), offset + result.consumed,
               std::string(payload.compression) + " kernel payload: " + result.problem);
  }
  return Ok();
}

}  // namespace iotmark::unpack::formats::linux_kernel
