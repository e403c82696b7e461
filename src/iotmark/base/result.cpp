#include "iotmark/base/result.hpp"

namespace iotmark {

std::string_view ToString(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kUnsupportedFormat:
      return "unsupported format";
    case ErrorCode::kCorruptInput:
      return "corrupt input";
    case ErrorCode::kLimitExceeded:
      return "limit exceeded";
    case ErrorCode::kIo:
      return "I/O error";
    case ErrorCode::kIntegrityFailure:
      return "integrity failure";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInternal:
      return "internal error";
  }
  return "unknown error";
}

std::string Error::ToString() const {
  return std::string(iotmark::ToString(code)) + ": " + message;
}

}  // namespace iotmark
