// zlib and liblzma do the decoding; what is ours is telling the framings apart. LZMA-alone,
// properties-only and headerless blocks all go through liblzma's raw LZMA1 decoder with the
// properties the block names (or the fixed lc=3 lp=0 pb=2), and a dictionary of the block size:
// a block never refers back further than its own output, so a dictionary size claimed in a
// header is never allocated.
#include "iotmark/unpack/formats/squashfs_legacy/legacy_codec.hpp"

#include <lzma.h>
#include <sqfs/compressor.h>
#include <zlib.h>

#include <algorithm>
#include <array>

#include "iotmark/unpack/formats/squashfs/squashfs_io.hpp"
#include "iotmark/unpack/formats/squashfs_legacy/legacy_superblock.hpp"

namespace iotmark::unpack::formats::squashfs_legacy {

namespace {

constexpr std::size_t kAloneHeaderSize = 13;
constexpr std::size_t kPropertiesSize = 5;
constexpr std::uint8_t kDefaultProperties = 0x5d;  // lc=3 lp=0 pb=2
constexpr std::uint8_t kMaxProperties = 9 * 5 * 5;
// Dictionary sizes an LZMA header may plausibly name (4 KiB .. 1 GiB); only used to tell a header
// from stream bytes, never allocated.
constexpr std::uint32_t kMinDictionary = std::uint32_t{1} << 12;
constexpr std::uint32_t kMaxDictionary = std::uint32_t{1} << 30;

constexpr std::array<std::string_view, static_cast<std::size_t>(Variant::kCount)> kNames = {
    "zlib",
    "lzma (lzma-alone headers)",
    "lzma (properties header without size, 7z-style)",
    "lzma (raw, lc=3 lp=0 pb=2)",
    "xz",
    "lzo",
    "lz4",
    "zstd"};

constexpr std::array<Variant, 4> kDetected = {Variant::kZlib, Variant::kLzmaAlone,
                                              Variant::kLzmaProperties, Variant::kLzmaRaw};

bool ZlibHeader(ByteView in) {
  if (in.size() < 2) return false;
  const unsigned cmf = in[0];
  const unsigned flg = in[1];
  return (cmf & 0x0F) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0 && (flg & 0x20) == 0;
}

bool PlausibleProperties(std::uint8_t props) {
  if (props >= kMaxProperties) return false;
  const unsigned lc = props % 9;
  const unsigned lp = (props / 9) % 5;
  return lc + lp <= LZMA_LCLP_MAX;
}

// A header's properties byte and dictionary size look like one, and the stream after it starts
// with the zero byte every LZMA range coder writes first.
bool PlausibleLzmaHeader(ByteView in, std::size_t header_size) {
  if (in.size() <= header_size || !PlausibleProperties(in[0]) || in[header_size] != 0) {
    return false;
  }
  const std::uint32_t dictionary = LoadLe<std::uint32_t>(in, 1).value_or(0);
  return dictionary >= kMinDictionary && dictionary <= kMaxDictionary;
}

Variant LibraryVariant(std::uint16_t compression) {
  switch (compression) {
    case SQFS_COMP_LZO:
      return Variant::kLzo;
    case SQFS_COMP_LZ4:
      return Variant::kLz4;
    case SQFS_COMP_ZSTD:
      return Variant::kZstd;
    default:
      return Variant::kXz;
  }
}

}  // namespace

std::string_view VariantName(Variant variant) {
  const auto index = static_cast<std::size_t>(variant);
  return index < kNames.size() ? kNames[index] : std::string_view("unknown");
}

void VariantLog::Record(Variant variant) {
  const auto index = static_cast<unsigned>(variant);
  used_.fetch_or(std::uint32_t{1} << index, std::memory_order_relaxed);
  preferred_.store(static_cast<int>(index), std::memory_order_relaxed);
}

std::optional<Variant> VariantLog::preferred() const {
  const int index = preferred_.load(std::memory_order_relaxed);
  if (index < 0) return std::nullopt;
  return static_cast<Variant>(index);
}

std::string VariantLog::Describe() const {
  const std::uint32_t used = used_.load(std::memory_order_relaxed);
  std::string out;
  for (unsigned i = 0; i < static_cast<unsigned>(Variant::kCount); ++i) {
    if ((used & (std::uint32_t{1} << i)) == 0) continue;
    if (!out.empty()) out += " + ";
    out += kNames[i];
  }
  return out;
}

struct BlockCodec::Streams {
  std::uint16_t compression = 0;
  std::uint32_t dictionary = 0;
  z_stream zlib{};
  bool zlib_ready = false;
  lzma_stream lzma = LZMA_STREAM_INIT;
  squashfs::ObjectPtr<sqfs_compressor_t> library;

  Streams() = default;
  Streams(const Streams&) = delete;
  Streams& operator=(const Streams&) = delete;
  ~Streams() {
    if (zlib_ready) inflateEnd(&zlib);
    lzma_end(&lzma);
  }

  std::optional<std::size_t> Inflate(ByteView in, std::span<std::uint8_t> out) {
    if (!ZlibHeader(in) || inflateReset(&zlib) != Z_OK) return std::nullopt;
    zlib.next_in = const_cast<Bytef*>(in.data());
    zlib.avail_in = static_cast<uInt>(in.size());
    zlib.next_out = out.data();
    zlib.avail_out = static_cast<uInt>(out.size());
    if (inflate(&zlib, Z_FINISH) != Z_STREAM_END) return std::nullopt;
    return out.size() - zlib.avail_out;
  }

  // Raw LZMA1 with `props`. A stream without an end marker is accepted when it fills `out` or,
  // unless `exact`, when it used all of its input.
  std::optional<std::size_t> Lzma(std::uint8_t props, ByteView in, std::span<std::uint8_t> out,
                                  bool exact) {
    if (!PlausibleProperties(props)) return std::nullopt;
    lzma_options_lzma options{};
    options.dict_size = dictionary;
    options.lc = props % 9;
    options.lp = (props / 9) % 5;
    options.pb = props / 45;
    const std::array<lzma_filter, 2> filters = {
        {{LZMA_FILTER_LZMA1, &options}, {LZMA_VLI_UNKNOWN, nullptr}}};
    if (lzma_raw_decoder(&lzma, filters.data()) != LZMA_OK) return std::nullopt;
    lzma.next_in = in.data();
    lzma.avail_in = in.size();
    lzma.next_out = out.data();
    lzma.avail_out = out.size();
    lzma_ret ret = LZMA_OK;
    // liblzma returns when it can make no more progress; a few rounds cover partial returns.
    for (int round = 0; round < 8 && ret == LZMA_OK; ++round) {
      const std::size_t before = lzma.avail_in + lzma.avail_out;
      ret = lzma_code(&lzma, LZMA_FINISH);
      if (lzma.avail_in + lzma.avail_out == before) break;
    }
    const std::size_t produced = out.size() - lzma.avail_out;
    if (ret == LZMA_STREAM_END) return produced;
    if (ret != LZMA_OK && ret != LZMA_BUF_ERROR) return std::nullopt;
    if (lzma.avail_out == 0) return produced;
    if (!exact && lzma.avail_in == 0) return produced;
    return std::nullopt;
  }

  std::optional<std::size_t> Try(Variant variant, ByteView in, std::span<std::uint8_t> out,
                                 bool exact) {
    switch (variant) {
      case Variant::kZlib:
        return Inflate(in, out);
      case Variant::kLzmaAlone: {
        if (!PlausibleLzmaHeader(in, kAloneHeaderSize)) return std::nullopt;
        const std::uint64_t size = LoadLe<std::uint64_t>(in, kPropertiesSize).value_or(0);
        if (size == ~std::uint64_t{0}) {
          return Lzma(in[0], in.subspan(kAloneHeaderSize), out, exact);
        }
        if (size > out.size() || (exact && size != out.size())) return std::nullopt;
        return Lzma(in[0], in.subspan(kAloneHeaderSize), out.first(size), true);
      }
      case Variant::kLzmaProperties:
        if (!PlausibleLzmaHeader(in, kPropertiesSize)) return std::nullopt;
        return Lzma(in[0], in.subspan(kPropertiesSize), out, exact);
      case Variant::kLzmaRaw:
        if (in[0] != 0) return std::nullopt;
        return Lzma(kDefaultProperties, in, out, exact);
      default:
        return std::nullopt;
    }
  }
};

BlockCodec::BlockCodec(std::unique_ptr<Streams> streams, VariantLog& log)
    : streams_(std::move(streams)), log_(log) {}

BlockCodec::~BlockCodec() = default;

Result<std::unique_ptr<BlockCodec>> BlockCodec::Make(std::uint16_t compression,
                                                     std::uint32_t block_size, VariantLog& log) {
  auto streams = std::make_unique<Streams>();
  streams->compression = compression;
  streams->dictionary = std::max(block_size, kMetadataSize);
  if (compression <= SQFS_COMP_LZMA) {
    if (inflateInit(&streams->zlib) != Z_OK) return Fail(ErrorCode::kInternal, "inflateInit");
    streams->zlib_ready = true;
  } else {
    auto library = squashfs::MakeDecompressor(compression, block_size);
    if (!library) return tl::unexpected(library.error());
    streams->library = std::move(*library);
  }
  return std::unique_ptr<BlockCodec>(new BlockCodec(std::move(streams), log));
}

std::optional<std::size_t> BlockCodec::Decode(ByteView in, std::span<std::uint8_t> out,
                                              bool exact) {
  if (in.empty() || out.empty()) return std::nullopt;
  const auto accept = [&](std::optional<std::size_t> produced,
                          Variant variant) -> std::optional<std::size_t> {
    if (!produced || *produced == 0 || (exact && *produced != out.size())) return std::nullopt;
    log_.Record(variant);
    return produced;
  };
  if (streams_->library) {
    sqfs_compressor_t* library = streams_->library.get();
    const sqfs_s32 produced =
        library->do_block(library, in.data(), static_cast<sqfs_u32>(in.size()), out.data(),
                          static_cast<sqfs_u32>(out.size()));
    if (produced <= 0) return std::nullopt;
    return accept(static_cast<std::size_t>(produced), LibraryVariant(streams_->compression));
  }
  std::array<Variant, kDetected.size() + 1> order{};
  std::size_t count = 0;
  if (const auto preferred = log_.preferred()) order[count++] = *preferred;
  for (const Variant variant : kDetected) order[count++] = variant;
  for (std::size_t i = 0; i < count; ++i) {
    if (std::find(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(i), order[i]) !=
        order.begin() + static_cast<std::ptrdiff_t>(i)) {
      continue;  // the preferred variant, already tried
    }
    if (auto produced = accept(streams_->Try(order[i], in, out, exact), order[i])) return produced;
  }
  return std::nullopt;
}

}  // namespace iotmark::unpack::formats::squashfs_legacy
