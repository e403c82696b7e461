#include "iotmark/unpack/codec/codec.hpp"

#include <bzlib.h>
#include <lz4.h>
#include <lz4frame.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

namespace iotmark::unpack::codec {

namespace {

// zlib and libbz2 count input in 32-bit integers; larger inputs are fed in slices.
constexpr std::size_t kMaxFeed = std::size_t{1} << 30;
// zstd windows beyond 2^27 (128 MiB) are refused: the frame header alone decides the allocation.
constexpr int kZstdWindowLogMax = 27;
// LZ4 legacy blocks decompress to exactly this much, except the last one.
constexpr std::size_t kLz4LegacyBlock = std::size_t{8} << 20;
constexpr std::uint32_t kLz4LegacyMagic = 0x184C2102;

// The decoder's output buffer and the bookkeeping every codec shares: how much may still be
// produced, handing pieces to `out`, and the result being built.
class Emitter {
 public:
  Emitter(const Output& out, const DecodeOptions& options) : out_(out), max_(options.max_output) {
    size_ = static_cast<std::size_t>(
        std::min<std::uint64_t>(kPieceSize, std::max<std::uint64_t>(max_, 1)));
  }

  // Room for the next decoder call: the buffer, shortened so output never passes max_output.
  std::span<std::uint8_t> Space() {
    if (!buffer_) buffer_ = std::make_unique_for_overwrite<std::uint8_t[]>(size_);
    const std::uint64_t left = max_ - result_.produced;
    return {buffer_.get(), static_cast<std::size_t>(std::min<std::uint64_t>(size_, left))};
  }
  [[nodiscard]] bool Full() const { return result_.produced >= max_; }
  [[nodiscard]] std::uint64_t Left() const { return max_ - result_.produced; }

  // Hands `bytes` (at most kPieceSize at a time) to `out`; false once `out` failed.
  bool Emit(ByteView bytes) {
    while (!bytes.empty()) {
      const std::size_t n = std::min(bytes.size(), kPieceSize);
      if (auto status = out_(bytes.first(n)); !status) {
        result_.stop = Stop::kOutputError;
        result_.problem = status.error().message;
        result_.output_error = std::move(status).error();
        return false;
      }
      result_.produced += n;
      bytes = bytes.subspan(n);
    }
    return true;
  }
  bool EmitBuffer(std::size_t n) { return Emit(ByteView(buffer_.get(), n)); }

  void SetConsumed(std::uint64_t consumed) { result_.consumed = consumed; }
  DecodeResult End() {
    result_.stop = Stop::kEnd;
    result_.complete = true;
    result_.problem.clear();
    return std::move(result_);
  }
  DecodeResult Stopped(Stop stop, std::string detail = {}) {
    result_.stop = stop;
    result_.complete = false;
    const std::string at = std::to_string(result_.consumed) + " bytes of input";
    switch (stop) {
      case Stop::kOutputLimit:
        result_.problem = "output limit of " + std::to_string(max_) + " bytes reached";
        break;
      case Stop::kTruncated:
        result_.problem = "truncated after " + at;
        break;
      case Stop::kCorrupt:
        result_.problem = "corrupt data after " + at + ": " + detail;
        break;
      case Stop::kUnsupported:
        result_.problem = "unsupported: " + detail;
        break;
      case Stop::kMemoryLimit:
        result_.problem = "needs more memory than allowed: " + detail;
        break;
      case Stop::kEnd:
      case Stop::kOutputError:
        break;
    }
    return std::move(result_);
  }
  DecodeResult OutputFailed() { return std::move(result_); }

 private:
  const Output& out_;
  std::uint64_t max_;
  std::size_t size_;
  std::unique_ptr<std::uint8_t[]> buffer_;
  DecodeResult result_;
};

// --- zlib: raw deflate, zlib and gzip differ only in windowBits ---------------------------------

DecodeResult DecodeInflate(ByteView input, int window_bits, Emitter& emitter) {
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) {
    return emitter.Stopped(Stop::kMemoryLimit, "zlib could not allocate its state");
  }
  struct End {
    z_stream* zs;
    ~End() { inflateEnd(zs); }
  } end{&zs};
  std::size_t fed = 0;
  while (true) {
    if (zs.avail_in == 0 && fed < input.size()) {
      const std::size_t n = std::min(kMaxFeed, input.size() - fed);
      zs.next_in = const_cast<Bytef*>(input.data() + fed);
      zs.avail_in = static_cast<uInt>(n);
      fed += n;
    }
    if (emitter.Full()) return emitter.Stopped(Stop::kOutputLimit);
    const auto space = emitter.Space();
    zs.next_out = space.data();
    zs.avail_out = static_cast<uInt>(space.size());
    const int ret = inflate(&zs, Z_NO_FLUSH);
    emitter.SetConsumed(fed - zs.avail_in);
    const std::size_t produced = space.size() - zs.avail_out;
    if (produced > 0 && !emitter.EmitBuffer(produced)) return emitter.OutputFailed();
    switch (ret) {
      case Z_STREAM_END:
        return emitter.End();
      case Z_NEED_DICT:
        return emitter.Stopped(Stop::kUnsupported, "the stream needs a preset dictionary");
      case Z_DATA_ERROR:
        return emitter.Stopped(Stop::kCorrupt, zs.msg != nullptr ? zs.msg : "invalid data");
      case Z_MEM_ERROR:
        return emitter.Stopped(Stop::kMemoryLimit, "zlib ran out of memory");
      case Z_OK:
      case Z_BUF_ERROR:
        break;
      default:
        return emitter.Stopped(Stop::kCorrupt, "zlib error " + std::to_string(ret));
    }
    // Output space left over means zlib wanted more input than there is.
    if (zs.avail_out > 0 && zs.avail_in == 0 && fed == input.size()) {
      return emitter.Stopped(Stop::kTruncated);
    }
    if (ret == Z_BUF_ERROR && produced == 0 && zs.avail_out > 0) {
      return emitter.Stopped(Stop::kCorrupt, "no progress");
    }
  }
}

// --- liblzma: .xz streams and .lzma (alone) streams ----------------------------------------------

DecodeResult LzmaStopped(lzma_ret ret, Emitter& emitter) {
  switch (ret) {
    case LZMA_MEM_ERROR:
      return emitter.Stopped(Stop::kMemoryLimit, "liblzma could not allocate memory");
    case LZMA_MEMLIMIT_ERROR:
      return emitter.Stopped(Stop::kMemoryLimit, "the dictionary is larger than " +
                                                     std::to_string(kMemoryLimit >> 20) + " MiB");
    case LZMA_FORMAT_ERROR:
      return emitter.Stopped(Stop::kCorrupt, "not a valid header");
    case LZMA_OPTIONS_ERROR:
      return emitter.Stopped(Stop::kUnsupported, "unsupported options or filter");
    case LZMA_DATA_ERROR:
      return emitter.Stopped(Stop::kCorrupt, "compressed data is corrupt or a check failed");
    default:
      return emitter.Stopped(Stop::kCorrupt, "liblzma error " + std::to_string(ret));
  }
}

DecodeResult DecodeLzma(ByteView input, bool xz, Emitter& emitter) {
  lzma_stream strm = LZMA_STREAM_INIT;
  // No LZMA_CONCATENATED: one stream, so `consumed` ends at its footer.
  const lzma_ret init =
      xz ? lzma_stream_decoder(&strm, kMemoryLimit, 0) : lzma_alone_decoder(&strm, kMemoryLimit);
  if (init != LZMA_OK) return LzmaStopped(init, emitter);
  struct End {
    lzma_stream* strm;
    ~End() { lzma_end(strm); }
  } end{&strm};
  strm.next_in = input.data();
  strm.avail_in = input.size();
  while (true) {
    if (emitter.Full()) return emitter.Stopped(Stop::kOutputLimit);
    const auto space = emitter.Space();
    strm.next_out = space.data();
    strm.avail_out = space.size();
    const lzma_ret ret = lzma_code(&strm, LZMA_RUN);
    emitter.SetConsumed(input.size() - strm.avail_in);
    const std::size_t produced = space.size() - strm.avail_out;
    if (produced > 0 && !emitter.EmitBuffer(produced)) return emitter.OutputFailed();
    if (ret == LZMA_STREAM_END) return emitter.End();
    if (ret != LZMA_OK && ret != LZMA_BUF_ERROR) return LzmaStopped(ret, emitter);
    if (strm.avail_out > 0 && strm.avail_in == 0) return emitter.Stopped(Stop::kTruncated);
    if (ret == LZMA_BUF_ERROR) return emitter.Stopped(Stop::kCorrupt, "no progress");
  }
}

// --- libbz2 --------------------------------------------------------------------------------------

DecodeResult DecodeBzip2(ByteView input, Emitter& emitter) {
  bz_stream bz{};
  if (BZ2_bzDecompressInit(&bz, 0, 0) != BZ_OK) {
    return emitter.Stopped(Stop::kMemoryLimit, "libbz2 could not allocate its state");
  }
  struct End {
    bz_stream* bz;
    ~End() { BZ2_bzDecompressEnd(bz); }
  } end{&bz};
  std::size_t fed = 0;
  while (true) {
    if (bz.avail_in == 0 && fed < input.size()) {
      const std::size_t n = std::min(kMaxFeed, input.size() - fed);
      bz.next_in = const_cast<char*>(reinterpret_cast<const char*>(input.data() + fed));
      bz.avail_in = static_cast<unsigned>(n);
      fed += n;
    }
    if (emitter.Full()) return emitter.Stopped(Stop::kOutputLimit);
    const auto space = emitter.Space();
    bz.next_out = reinterpret_cast<char*>(space.data());
    bz.avail_out = static_cast<unsigned>(space.size());
    const int ret = BZ2_bzDecompress(&bz);
    emitter.SetConsumed(fed - bz.avail_in);
    const std::size_t produced = space.size() - bz.avail_out;
    if (produced > 0 && !emitter.EmitBuffer(produced)) return emitter.OutputFailed();
    switch (ret) {
      case BZ_STREAM_END:
        return emitter.End();
      case BZ_OK:
        break;
      case BZ_DATA_ERROR_MAGIC:
        return emitter.Stopped(Stop::kCorrupt, "not a bzip2 stream");
      case BZ_DATA_ERROR:
        return emitter.Stopped(Stop::kCorrupt, "invalid block or CRC mismatch");
      case BZ_MEM_ERROR:
        return emitter.Stopped(Stop::kMemoryLimit, "libbz2 ran out of memory");
      default:
        return emitter.Stopped(Stop::kCorrupt, "libbz2 error " + std::to_string(ret));
    }
    if (bz.avail_out > 0 && bz.avail_in == 0 && fed == input.size()) {
      return emitter.Stopped(Stop::kTruncated);
    }
  }
}

// --- skippable frames (shared by zstd and the LZ4 frame format) ---------------------------------

bool IsSkippableMagic(std::uint32_t magic) { return (magic & 0xFFFFFFF0U) == 0x184D2A50U; }

// Skips leading skippable frames; returns the offset of the first other byte, or nullopt if a
// skippable frame runs past the input.
std::optional<std::size_t> SkipSkippableFrames(ByteView input) {
  std::size_t pos = 0;
  while (true) {
    const auto magic = LoadLe<std::uint32_t>(input, pos);
    if (!magic || !IsSkippableMagic(*magic)) return pos;
    const auto size = LoadLe<std::uint32_t>(input, pos + 4);
    if (!size || input.size() - pos - 8 < *size) return std::nullopt;
    pos += 8 + std::size_t{*size};
  }
}

// --- libzstd -------------------------------------------------------------------------------------

DecodeResult DecodeZstd(ByteView input, Emitter& emitter) {
  const auto start = SkipSkippableFrames(input);
  if (!start) {
    emitter.SetConsumed(input.size());
    return emitter.Stopped(Stop::kTruncated);
  }
  emitter.SetConsumed(*start);
  if (*start == input.size() && *start > 0) return emitter.End();
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  if (dctx == nullptr) return emitter.Stopped(Stop::kMemoryLimit, "cannot allocate a context");
  struct End {
    ZSTD_DCtx* dctx;
    ~End() { ZSTD_freeDCtx(dctx); }
  } end{dctx};
  ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, kZstdWindowLogMax);
  ZSTD_inBuffer in{input.data(), input.size(), *start};
  while (true) {
    if (emitter.Full()) return emitter.Stopped(Stop::kOutputLimit);
    const auto space = emitter.Space();
    ZSTD_outBuffer out{space.data(), space.size(), 0};
    const std::size_t ret = ZSTD_decompressStream(dctx, &out, &in);
    emitter.SetConsumed(in.pos);
    if (out.pos > 0 && !emitter.EmitBuffer(out.pos)) return emitter.OutputFailed();
    if (ZSTD_isError(ret)) {
      switch (ZSTD_getErrorCode(ret)) {
        case ZSTD_error_frameParameter_windowTooLarge:
          return emitter.Stopped(Stop::kMemoryLimit, "window larger than 128 MiB");
        case ZSTD_error_memory_allocation:
          return emitter.Stopped(Stop::kMemoryLimit, "libzstd could not allocate memory");
        case ZSTD_error_dictionary_wrong:
          return emitter.Stopped(Stop::kUnsupported, "the frame needs a dictionary");
        case ZSTD_error_frameParameter_unsupported:
        case ZSTD_error_version_unsupported:
          return emitter.Stopped(Stop::kUnsupported, ZSTD_getErrorName(ret));
        default:
          return emitter.Stopped(Stop::kCorrupt, ZSTD_getErrorName(ret));
      }
    }
    if (ret == 0) return emitter.End();
    if (in.pos == in.size && out.pos < out.size) return emitter.Stopped(Stop::kTruncated);
  }
}

// --- liblz4: frame format ------------------------------------------------------------------------

DecodeResult DecodeLz4Frame(ByteView input, Emitter& emitter) {
  const auto start = SkipSkippableFrames(input);
  if (!start) {
    emitter.SetConsumed(input.size());
    return emitter.Stopped(Stop::kTruncated);
  }
  emitter.SetConsumed(*start);
  if (*start == input.size() && *start > 0) return emitter.End();
  LZ4F_dctx* dctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
    return emitter.Stopped(Stop::kMemoryLimit, "cannot allocate a context");
  }
  struct End {
    LZ4F_dctx* dctx;
    ~End() { LZ4F_freeDecompressionContext(dctx); }
  } end{dctx};
  std::size_t pos = *start;
  int idle = 0;
  while (true) {
    if (emitter.Full()) return emitter.Stopped(Stop::kOutputLimit);
    const auto space = emitter.Space();
    std::size_t dst_size = space.size();
    std::size_t src_size = input.size() - pos;
    const std::size_t ret =
        LZ4F_decompress(dctx, space.data(), &dst_size, input.data() + pos, &src_size, nullptr);
    pos += src_size;
    emitter.SetConsumed(pos);
    if (dst_size > 0 && !emitter.EmitBuffer(dst_size)) return emitter.OutputFailed();
    if (LZ4F_isError(ret)) return emitter.Stopped(Stop::kCorrupt, LZ4F_getErrorName(ret));
    if (ret == 0) return emitter.End();
    if (pos == input.size() && dst_size < space.size()) return emitter.Stopped(Stop::kTruncated);
    // LZ4F always moves when it has input and room; guard anyway against a library spinning.
    idle = (src_size == 0 && dst_size == 0) ? idle + 1 : 0;
    if (idle > 2) return emitter.Stopped(Stop::kCorrupt, "no progress");
  }
}

// --- liblz4: legacy format -----------------------------------------------------------------------

// A sequence of [u32 LE compressed size][block]; every block but the last decompresses to
// exactly 8 MiB, and nothing marks the end, so a block shorter than that is the last one, and
// a size field that cannot be a block ends the stream.
DecodeResult DecodeLz4Legacy(ByteView input, Emitter& emitter) {
  const auto magic = LoadLe<std::uint32_t>(input, 0);
  if (!magic || *magic != kLz4LegacyMagic) {
    emitter.SetConsumed(std::min<std::size_t>(input.size(), 4));
    return magic ? emitter.Stopped(Stop::kCorrupt, "not an LZ4 legacy stream")
                 : emitter.Stopped(Stop::kTruncated);
  }
  constexpr std::uint32_t kBound = LZ4_COMPRESSBOUND(kLz4LegacyBlock);
  std::unique_ptr<std::uint8_t[]> block;
  std::size_t pos = 4;
  bool any = false;
  emitter.SetConsumed(pos);
  while (true) {
    const auto size = LoadLe<std::uint32_t>(input, pos);
    if (!size) {
      // End of input: after a full block that is how an `lz4 -l` file ends.
      if (any) return emitter.End();
      emitter.SetConsumed(input.size());
      return emitter.Stopped(Stop::kTruncated);
    }
    if (*size == 0 || *size > kBound || *size == kLz4LegacyMagic) {
      if (any) return emitter.End();
      return emitter.Stopped(Stop::kCorrupt, "invalid block size " + std::to_string(*size));
    }
    if (input.size() - pos - 4 < *size) {
      emitter.SetConsumed(input.size());
      return emitter.Stopped(Stop::kTruncated);
    }
    if (emitter.Full()) return emitter.Stopped(Stop::kOutputLimit);
    const char* src = reinterpret_cast<const char*>(input.data() + pos + 4);
    // Less than a block still wanted (probes): decode just that much of it. The output only
    // shrinks from here on, so the first buffer is big enough for every later block.
    const std::uint64_t left = emitter.Left();
    const bool partial = left < kLz4LegacyBlock;
    const int capacity = static_cast<int>(partial ? left : kLz4LegacyBlock);
    if (!block) block = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
    char* dst = reinterpret_cast<char*>(block.get());
    const int decoded =
        partial ? LZ4_decompress_safe_partial(src, dst, static_cast<int>(*size), capacity, capacity)
                : LZ4_decompress_safe(src, dst, static_cast<int>(*size), capacity);
    if (decoded < 0) return emitter.Stopped(Stop::kCorrupt, "invalid LZ4 block");
    if (!emitter.Emit(ByteView(block.get(), static_cast<std::size_t>(decoded)))) {
      return emitter.OutputFailed();
    }
    if (partial && decoded == capacity) return emitter.Stopped(Stop::kOutputLimit);
    pos += 4 + std::size_t{*size};
    emitter.SetConsumed(pos);
    any = true;
    if (static_cast<std::size_t>(decoded) < kLz4LegacyBlock) return emitter.End();
  }
}

// --- lzo2 ----------------------------------------------------------------------------------------

bool LzoReady() {
  static const bool ready = lzo_init() == LZO_E_OK;
  return ready;
}

DecodeResult DecodeLzo1x(ByteView input, const DecodeOptions& options, Emitter& emitter) {
  if (!LzoReady()) return emitter.Stopped(Stop::kUnsupported, "lzo_init failed");
  if (options.expected_output == 0) {
    return emitter.Stopped(Stop::kUnsupported, "LZO1X needs the decompressed size");
  }
  if (options.expected_output > kMaxLzoBlock) {
    return emitter.Stopped(
        Stop::kMemoryLimit,
        "block of " + std::to_string(options.expected_output) + " bytes is larger than 64 MiB");
  }
  // LZO1X cannot stop early or stream: the whole block is decoded at once.
  const auto capacity = static_cast<std::size_t>(options.expected_output);
  auto buffer = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
  lzo_uint out_len = capacity;
  const int ret =
      lzo1x_decompress_safe(input.data(), input.size(), buffer.get(), &out_len, nullptr);
  switch (ret) {
    case LZO_E_OK:
    case LZO_E_INPUT_NOT_CONSUMED:
      // lzo2 does not say where the block ended; callers pass the block's exact bytes.
      emitter.SetConsumed(input.size());
      break;
    case LZO_E_INPUT_OVERRUN:
      emitter.SetConsumed(input.size());
      return emitter.Stopped(Stop::kTruncated);
    case LZO_E_OUTPUT_OVERRUN:
      return emitter.Stopped(Stop::kCorrupt, "output larger than the stated size");
    case LZO_E_LOOKBEHIND_OVERRUN:
      return emitter.Stopped(Stop::kCorrupt, "match distance before the start of the output");
    default:
      return emitter.Stopped(Stop::kCorrupt, "lzo error " + std::to_string(ret));
  }
  const std::size_t keep =
      static_cast<std::size_t>(std::min<std::uint64_t>(out_len, emitter.Left()));
  if (!emitter.Emit(ByteView(buffer.get(), keep))) return emitter.OutputFailed();
  if (keep < out_len) return emitter.Stopped(Stop::kOutputLimit);
  return emitter.End();
}

}  // namespace

std::string_view ToString(Codec codec) {
  switch (codec) {
    case Codec::kDeflate:
      return "deflate";
    case Codec::kZlib:
      return "zlib";
    case Codec::kGzip:
      return "gzip";
    case Codec::kXz:
      return "xz";
    case Codec::kLzmaAlone:
      return "lzma";
    case Codec::kBzip2:
      return "bzip2";
    case Codec::kZstd:
      return "zstd";
    case Codec::kLz4Frame:
      return "lz4";
    case Codec::kLz4Legacy:
      return "lz4-legacy";
    case Codec::kLzo1x:
      return "lzo1x";
  }
  return "unknown";
}

std::string_view ToString(Stop stop) {
  switch (stop) {
    case Stop::kEnd:
      return "end";
    case Stop::kOutputLimit:
      return "output limit";
    case Stop::kTruncated:
      return "truncated";
    case Stop::kCorrupt:
      return "corrupt";
    case Stop::kUnsupported:
      return "unsupported";
    case Stop::kMemoryLimit:
      return "memory limit";
    case Stop::kOutputError:
      return "output error";
  }
  return "unknown";
}

model::GapKind GapKindOf(Stop stop) {
  switch (stop) {
    case Stop::kTruncated:
      return model::GapKind::kTruncated;
    case Stop::kUnsupported:
      return model::GapKind::kUnsupported;
    case Stop::kOutputLimit:
    case Stop::kMemoryLimit:
      return model::GapKind::kLimit;
    case Stop::kOutputError:
      return model::GapKind::kIo;
    case Stop::kEnd:
    case Stop::kCorrupt:
      return model::GapKind::kCorrupt;
  }
  return model::GapKind::kCorrupt;
}

DecodeResult DecodeStream(Codec codec, ByteView input, const Output& out,
                          const DecodeOptions& options) {
  Emitter emitter(out, options);
  switch (codec) {
    case Codec::kDeflate:
      return DecodeInflate(input, -MAX_WBITS, emitter);
    case Codec::kZlib:
      return DecodeInflate(input, MAX_WBITS, emitter);
    case Codec::kGzip:
      return DecodeInflate(input, MAX_WBITS + 16, emitter);
    case Codec::kXz:
      return DecodeLzma(input, true, emitter);
    case Codec::kLzmaAlone:
      return DecodeLzma(input, false, emitter);
    case Codec::kBzip2:
      return DecodeBzip2(input, emitter);
    case Codec::kZstd:
      return DecodeZstd(input, emitter);
    case Codec::kLz4Frame:
      return DecodeLz4Frame(input, emitter);
    case Codec::kLz4Legacy:
      return DecodeLz4Legacy(input, emitter);
    case Codec::kLzo1x:
      return DecodeLzo1x(input, options, emitter);
  }
  return emitter.Stopped(Stop::kUnsupported, "unknown codec");
}

Result<DecodeResult> Decode(Codec codec, ByteView input, const Output& out,
                            const DecodeOptions& options) {
  DecodeResult result = DecodeStream(codec, input, out, options);
  if (result.stop == Stop::kOutputError && result.output_error) {
    return tl::unexpected(std::move(*result.output_error));
  }
  return result;
}

bool LooksValid(Codec codec, ByteView input, std::uint64_t probe_output) {
  const Output discard = [](ByteView) { return Ok(); };
  DecodeOptions options;
  options.max_output = std::max<std::uint64_t>(probe_output, 1);
  const DecodeResult result = DecodeStream(codec, input, discard, options);
  return result.stop == Stop::kEnd || result.stop == Stop::kOutputLimit;
}

}  // namespace iotmark::unpack::codec
