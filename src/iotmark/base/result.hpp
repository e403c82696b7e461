// Result<T> and Error: the one error style of the library (no exceptions cross our APIs).
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace iotmark {

enum class ErrorCode {
  kInvalidArgument,
  kNotFound,
  kUnsupportedFormat,
  kCorruptInput,
  kLimitExceeded,
  kIo,
  kIntegrityFailure,
  kConflict,
  kUnavailable,
  kInternal,
};

std::string_view ToString(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // "corrupt input: squashfs superblock: bytes_used beyond end of blob"
  [[nodiscard]] std::string ToString() const;
};

template <typename T>
using Result = tl::expected<T, Error>;

// Status is a Result that carries nothing on success.
using Status = Result<void>;

[[nodiscard]] inline tl::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

// Prefixes the error's message with where it happened, keeping its code.
[[nodiscard]] inline tl::unexpected<Error> Wrap(const Error& error, std::string_view where) {
  return tl::unexpected<Error>(Error{error.code, std::string(where) + ": " + error.message});
}

inline Status Ok() { return {}; }

}  // namespace iotmark

// Returns the error of `expr` from the enclosing function if it failed.
#define IOTMARK_TRY(expr)                                            \
  do {                                                               \
    if (auto iotmark_try_result_ = (expr); !iotmark_try_result_) {   \
      return tl::unexpected(std::move(iotmark_try_result_).error()); \
    }                                                                \
  } while (false)
