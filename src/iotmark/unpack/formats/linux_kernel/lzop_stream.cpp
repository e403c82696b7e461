#include "iotmark/unpack/formats/linux_kernel/lzop_stream.hpp"

#include <zlib.h>

#include <string>
#include <variant>

namespace iotmark::unpack::formats::linux_kernel {

namespace {

using codec::DecodeResult;
using codec::Stop;

// Header flags (lzop's conf.h).
constexpr std::uint32_t kAdler32D = 0x1;
constexpr std::uint32_t kAdler32C = 0x2;
constexpr std::uint32_t kExtraField = 0x40;
constexpr std::uint32_t kCrc32D = 0x100;
constexpr std::uint32_t kCrc32C = 0x200;
constexpr std::uint32_t kFilter = 0x800;
constexpr std::uint32_t kHeaderCrc32 = 0x1000;
// Version from which the header carries version_needed, level and mtime_high.
constexpr std::uint16_t kLongHeaderVersion = 0x0940;
// LZO1X-1, LZO1X-1(15) and LZO1X-999 all decode with lzo1x_decompress_safe.
constexpr std::uint8_t kFirstMethod = 1;
constexpr std::uint8_t kLastMethod = 3;

DecodeResult Stopped(Stop stop, std::uint64_t consumed, std::uint64_t produced,
                     std::string problem) {
  DecodeResult result;
  result.stop = stop;
  result.consumed = consumed;
  result.produced = produced;
  result.problem = std::move(problem);
  return result;
}

std::uint32_t HeaderChecksum(bool crc, ByteView bytes) {
  return crc ? static_cast<std::uint32_t>(crc32_z(0, bytes.data(), bytes.size()))
             : static_cast<std::uint32_t>(adler32_z(1, bytes.data(), bytes.size()));
}

// Reads the header; returns the flags and leaves `reader` at the first block, or a result
// saying why the stream cannot be read.
std::variant<std::uint32_t, DecodeResult> ReadHeader(ByteView input, ByteReader& reader) {
  reader.Skip(kLzopMagic.size());
  const auto version = reader.Read<std::uint16_t>();
  reader.Skip(2);  // lib_version
  if (version >= kLongHeaderVersion) reader.Skip(2);
  const auto method = reader.Read<std::uint8_t>();
  if (version >= kLongHeaderVersion) reader.Skip(1);
  const auto flags = reader.Read<std::uint32_t>();
  if (flags & kFilter) reader.Skip(4);
  reader.Skip(8);  // mode, mtime_low
  if (version >= kLongHeaderVersion) reader.Skip(4);
  const auto name_length = reader.Read<std::uint8_t>();
  reader.Skip(name_length);
  const std::size_t checked_end = reader.pos();
  const auto checksum = reader.Read<std::uint32_t>();
  if (!reader.ok()) return Stopped(Stop::kTruncated, input.size(), 0, "lzop header is cut short");
  if (method < kFirstMethod || method > kLastMethod) {
    return Stopped(Stop::kUnsupported, 0, 0,
                   "lzop method " + std::to_string(method) + " is not LZO1X");
  }
  const ByteView checked = input.subspan(kLzopMagic.size(), checked_end - kLzopMagic.size());
  if (HeaderChecksum(flags & kHeaderCrc32, checked) != checksum) {
    return Stopped(Stop::kCorrupt, 0, 0, "lzop header checksum mismatch");
  }
  if (flags & kExtraField) {
    const auto extra = reader.Read<std::uint32_t>();
    reader.Skip(extra);
    reader.Skip(4);
    if (!reader.ok()) {
      return Stopped(Stop::kTruncated, input.size(), 0, "lzop extra field is cut short");
    }
  }
  return flags;
}

// Passes a block's output on while checksumming it as lzop does (adler32 from 1, crc32 from 0).
struct BlockSink {
  const codec::Output& out;
  std::uint64_t produced = 0;
  std::uint32_t adler = 1;
  std::uint32_t crc = 0;

  Status operator()(ByteView bytes) {
    produced += bytes.size();
    adler = static_cast<std::uint32_t>(adler32_z(adler, bytes.data(), bytes.size()));
    crc = static_cast<std::uint32_t>(crc32_z(crc, bytes.data(), bytes.size()));
    return out(bytes);
  }
};

// One block: stored as it is when it did not shrink, else LZO1X of exactly `dst_length` bytes.
DecodeResult DecodeBlock(ByteView data, std::uint32_t dst_length, BlockSink& sink) {
  const codec::Output forward = [&sink](ByteView bytes) { return sink(bytes); };
  if (data.size() == dst_length) {
    if (auto written = forward(data); !written) {
      DecodeResult failed = Stopped(Stop::kOutputError, 0, 0, written.error().message);
      failed.output_error = written.error();
      return failed;
    }
    DecodeResult stored = Stopped(Stop::kEnd, data.size(), data.size(), "");
    stored.complete = true;
    return stored;
  }
  codec::DecodeOptions options;
  options.expected_output = dst_length;
  DecodeResult block = codec::DecodeStream(codec::Codec::kLzo1x, data, forward, options);
  if (block.stop == Stop::kEnd && sink.produced != dst_length) {
    block.stop = Stop::kCorrupt;
    block.complete = false;
    block.problem =
        "decodes to " + std::to_string(sink.produced) + " bytes, not " + std::to_string(dst_length);
  }
  return block;
}

}  // namespace

DecodeResult DecodeLzop(ByteView input, const codec::Output& out, std::uint64_t max_output) {
  if (input.size() < kLzopMagic.size() || AsChars(input.first(kLzopMagic.size())) != kLzopMagic) {
    return Stopped(Stop::kCorrupt, 0, 0, "no lzop magic");
  }
  ByteReader reader(input, ByteReader::Order::kBig);
  const auto header = ReadHeader(input, reader);
  if (const auto* failed = std::get_if<DecodeResult>(&header)) return *failed;
  const std::uint32_t flags = std::get<std::uint32_t>(header);

  std::uint64_t produced = 0;
  // Each block consumes at least its 4-byte size, so the loop ends with the input.
  while (true) {
    const std::size_t block_start = reader.pos();
    const auto dst_length = reader.Read<std::uint32_t>();
    if (!reader.ok()) {
      return Stopped(Stop::kTruncated, input.size(), produced, "lzop stream has no end marker");
    }
    if (dst_length == 0) {
      DecodeResult done = Stopped(Stop::kEnd, reader.pos(), produced, "");
      done.complete = true;
      return done;
    }
    const auto src_length = reader.Read<std::uint32_t>();
    const std::uint32_t adler = (flags & kAdler32D) ? reader.Read<std::uint32_t>() : 0;
    const std::uint32_t crc = (flags & kCrc32D) ? reader.Read<std::uint32_t>() : 0;
    if (src_length < dst_length) {
      if (flags & kAdler32C) reader.Skip(4);
      if (flags & kCrc32C) reader.Skip(4);
    }
    if (reader.ok() &&
        (dst_length > codec::kMaxLzoBlock || src_length > dst_length || src_length == 0)) {
      return Stopped(Stop::kCorrupt, block_start, produced,
                     "lzop block at " + std::to_string(block_start) + " has impossible sizes");
    }
    const ByteView data = reader.ReadBytes(src_length);
    if (!reader.ok()) {
      return Stopped(Stop::kTruncated, input.size(), produced,
                     "lzop block at " + std::to_string(block_start) + " is cut short");
    }
    if (produced >= max_output) {
      return Stopped(Stop::kOutputLimit, block_start, produced, "output limit reached");
    }
    BlockSink sink{out};
    DecodeResult block = DecodeBlock(data, dst_length, sink);
    if (block.stop == Stop::kEnd &&
        ((flags & kAdler32D && sink.adler != adler) || (flags & kCrc32D && sink.crc != crc))) {
      block = Stopped(Stop::kCorrupt, 0, sink.produced, "checksum of the decoded data mismatches");
    }
    if (block.stop != Stop::kEnd) {
      block.consumed = block_start;
      block.produced = produced + sink.produced;
      block.complete = false;
      block.problem = "lzop block at " + std::to_string(block_start) + ": " + block.problem;
      return block;
    }
    produced += sink.produced;
  }
}

}  // namespace iotmark::unpack::formats::linux_kernel
