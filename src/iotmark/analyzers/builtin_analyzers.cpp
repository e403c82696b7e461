// The one list of analyzers (as builtin_formats.cpp is for formats): to add an analyzer, add its
// folder under builtin/ and one line here. Order is the order of the report.
#include <array>
#include <memory>

#include "iotmark/analyzers/analyzer.hpp"

#define IOTMARK_BUILTIN_ANALYZERS(X) X(Components) X(Hardening)

namespace iotmark::analyzers {

namespace builtin {
#define IOTMARK_DECLARE_ANALYZER(Name) std::unique_ptr<Analyzer> Make##Name##Analyzer();
IOTMARK_BUILTIN_ANALYZERS(IOTMARK_DECLARE_ANALYZER)
#undef IOTMARK_DECLARE_ANALYZER
}  // namespace builtin

std::span<const AnalyzerFactory> BuiltinAnalyzers() {
#define IOTMARK_LIST_ANALYZER(Name) &builtin::Make##Name##Analyzer,
  static constexpr AnalyzerFactory kList[] = {
      IOTMARK_BUILTIN_ANALYZERS(IOTMARK_LIST_ANALYZER) nullptr};
#undef IOTMARK_LIST_ANALYZER
  return std::span<const AnalyzerFactory>(kList, std::size(kList) - 1);
}

}  // namespace iotmark::analyzers
