// The "hardening" analyzer: exploit mitigations of every program and library (NX, PIE, RELRO,
// stack canaries, _FORTIFY_SOURCE), run-time search paths and imports of dangerous functions,
// from the shared ELF index.
#pragma once

#include <memory>

#include "iotmark/analyzers/analyzer.hpp"

namespace iotmark::analyzers::builtin {

std::unique_ptr<Analyzer> MakeHardeningAnalyzer();

}  // namespace iotmark::analyzers::builtin
