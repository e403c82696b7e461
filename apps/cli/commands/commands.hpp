// The verbs of the iotmark command line; each registers itself on the app and runs on its own.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace iotmark::cli {

// Registers a verb; the returned function runs it after parsing and gives the exit code.
using Verb = std::function<int()>;

Verb RegisterScan(CLI::App& app);
Verb RegisterUnpack(CLI::App& app);
Verb RegisterFormats(CLI::App& app);
Verb RegisterSbom(CLI::App& app);

}  // namespace iotmark::cli
