#include "iotmark/unpack/codec/decode_to_file.hpp"

#include <optional>
#include <utility>

namespace iotmark::unpack::codec {

namespace {

constexpr std::uint32_t kFileMode = 0644;

Result<FileWriter> Create(EntrySink& sink, const std::string& name) {
  auto writer = sink.CreateFile(name, kFileMode);
  if (writer || ShouldStop(writer.error()) || name == "decompressed") return writer;
  // The sink refused the name (and recorded why); the content is still worth having.
  return sink.CreateFile("decompressed", kFileMode);
}

}  // namespace

Result<DecodeResult> DecodeToFile(Codec codec, ByteView input, const std::string& name,
                                  ExtractContext& ctx, const DecodeOptions& options,
                                  std::uint64_t input_offset) {
  std::optional<FileWriter> writer;
  const Output out = [&](ByteView bytes) -> Status {
    if (!writer) {
      auto created = Create(ctx.sink(), name);
      if (!created) return tl::unexpected(created.error());
      writer.emplace(std::move(*created));
    }
    return writer->Write(bytes);
  };
  DecodeResult result = DecodeStream(codec, input, out, options);
  ctx.SetConsumed(input_offset + result.consumed);

  Status closed = Ok();
  if (!writer && result.complete) {
    auto created = Create(ctx.sink(), name);
    if (created) {
      writer.emplace(std::move(*created));
    } else {
      closed = tl::unexpected(created.error());
    }
  }
  if (writer) closed = writer->Close();
  ctx.SetMeta("uncompressed_size", std::to_string(result.produced));

  if (result.stop == Stop::kOutputError) {
    Error error = result.output_error.value_or(Error{ErrorCode::kInternal, result.problem});
    if (ShouldStop(error)) return tl::unexpected(std::move(error));
    // A refused name twice over: nothing could be written, but the chunk is understood.
    ctx.AddGap(model::GapKind::kUnsafeEntry, input_offset, error.message);
    return result;
  }
  if (!closed && ShouldStop(closed.error())) return tl::unexpected(closed.error());
  if (!result.complete) {
    ctx.AddGap(GapKindOf(result.stop), input_offset + result.consumed,
               std::string(ToString(codec)) + " stream: " + result.problem);
  }
  return result;
}

}  // namespace iotmark::unpack::codec
