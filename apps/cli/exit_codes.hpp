// The exit codes a CI pipeline can rely on (docs/cli.md lists them; keep the two in step).
#pragma once

#include "iotmark/base/result.hpp"

namespace iotmark::cli {

enum ExitCode : int {
  kExitOk = 0,        // done, nothing left unread
  kExitGaps = 1,      // done; the report lists gaps (truncated, corrupt, limits, unsafe entries)
  kExitUsage = 2,     // bad command line
  kExitInput = 3,     // the image cannot be read
  kExitOutput = 4,    // the output cannot be written (or would overwrite something)
  kExitInternal = 5,  // a bug: please report it
};

inline int ExitCodeFor(const Error& error) {
  switch (error.code) {
    case ErrorCode::kNotFound:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupportedFormat:
    case ErrorCode::kCorruptInput:
      return kExitInput;
    case ErrorCode::kIo:
    case ErrorCode::kConflict:
      return kExitOutput;
    default:
      return kExitInternal;
  }
}

}  // namespace iotmark::cli
