#include "iotmark/analyzers/analysis.hpp"

#include <algorithm>
#include <set>

namespace iotmark::analyzers {

void AnalysisSink::AddFact(std::string name, nlohmann::json value,
                           std::vector<model::Evidence> evidence) {
  std::lock_guard lock(mutex_);
  facts_.push_back({std::move(name), std::move(value), std::move(evidence)});
}

void AnalysisSink::AddFinding(model::Finding finding) {
  finding.analyzer = analyzer_;
  std::lock_guard lock(mutex_);
  findings_.push_back(std::move(finding));
}

void AnalysisSink::AddComponent(model::Component component) {
  std::lock_guard lock(mutex_);
  components_.push_back(std::move(component));
}

void AnalysisSink::AddGap(model::GapKind kind, std::string path, std::string reason) {
  std::lock_guard lock(mutex_);
  gaps_.push_back({kind, std::move(path), 0, analyzer_, std::move(reason)});
}

void AnalysisSink::MoveInto(model::AnalysisReport& report) {
  std::lock_guard lock(mutex_);
  std::move(facts_.begin(), facts_.end(), std::back_inserter(report.facts));
  std::move(findings_.begin(), findings_.end(), std::back_inserter(report.findings));
  std::move(components_.begin(), components_.end(), std::back_inserter(report.components));
  std::move(gaps_.begin(), gaps_.end(), std::back_inserter(report.gaps));
  facts_.clear();
  findings_.clear();
  components_.clear();
  gaps_.clear();
}

namespace {

// Keeps only the facts `analyzer` declared, of the declared type, once each; anything else is
// a bug in the analyzer and is reported as a gap rather than passed on to the catalogs.
void CheckFacts(const Analyzer& analyzer, model::AnalysisReport& part) {
  const auto specs = analyzer.facts();
  std::set<std::string, std::less<>> seen;
  std::vector<model::Fact> kept;
  auto gap = [&](std::string reason) {
    part.gaps.push_back(
        {model::GapKind::kUnsupported, "", 0, std::string(analyzer.name()), std::move(reason)});
  };
  for (auto& fact : part.facts) {
    const auto spec = std::find_if(specs.begin(), specs.end(),
                                   [&](const model::FactSpec& s) { return s.name == fact.name; });
    if (spec == specs.end()) {
      gap("analyzer emitted the undeclared fact " + fact.name);
    } else if (!model::Conforms(fact.value, spec->type)) {
      gap("analyzer emitted " + fact.name + " as " + fact.value.type_name() + ", declared " +
          std::string(model::ToString(spec->type)));
    } else if (!seen.insert(fact.name).second) {
      gap("analyzer emitted " + fact.name + " more than once");
    } else {
      kept.push_back(std::move(fact));
    }
  }
  for (const auto& spec : specs) {
    if (!seen.contains(spec.name)) {
      gap("analyzer did not establish " + std::string(spec.name) + "; it stays unknown");
    }
  }
  part.facts = std::move(kept);
}

}  // namespace

Result<model::AnalysisReport> Analyze(const inventory::FileTree& tree, const DataStore& data,
                                      ThreadPool& pool, const AnalyzeOptions& options) {
  std::vector<std::unique_ptr<Analyzer>> analyzers;
  for (const auto factory : BuiltinAnalyzers()) {
    auto analyzer = factory();
    if (!options.only.empty() && std::find(options.only.begin(), options.only.end(),
                                           analyzer->name()) == options.only.end()) {
      continue;
    }
    analyzers.push_back(std::move(analyzer));
  }
  for (const auto& name : options.only) {
    if (std::none_of(analyzers.begin(), analyzers.end(),
                     [&](const auto& a) { return a->name() == name; })) {
      return Fail(ErrorCode::kInvalidArgument, "no analyzer is called " + name);
    }
  }
  return Analyze(tree, data, pool, std::move(analyzers), options);
}

Result<model::AnalysisReport> Analyze(const inventory::FileTree& tree, const DataStore& data,
                                      ThreadPool& pool,
                                      std::vector<std::unique_ptr<Analyzer>> analyzers,
                                      const AnalyzeOptions& options) {
  model::AnalysisReport report;
  inventory::PatternSet patterns;
  std::vector<std::unique_ptr<Analyzer>> ready;
  for (auto& analyzer : analyzers) {
    AnalyzerSetup setup{data, patterns};
    // Patterns of an analyzer that fails to prepare would still be scanned for; harmless.
    if (auto prepared = analyzer->Prepare(setup); !prepared) {
      report.gaps.push_back({model::GapKind::kUnsupported, "", 0, std::string(analyzer->name()),
                             "analyzer not run: " + prepared.error().ToString()});
      continue;
    }
    ready.push_back(std::move(analyzer));
  }

  auto scanned = inventory::ContentIndex::Scan(patterns, tree, pool, options.scan);
  if (!scanned) return tl::unexpected(scanned.error());
  const auto& content = *scanned;
  const auto elf = inventory::ElfIndex::Build(tree, pool);
  report.gaps.insert(report.gaps.end(), content.gaps().begin(), content.gaps().end());
  report.gaps.insert(report.gaps.end(), elf.gaps().begin(), elf.gaps().end());

  const AnalysisInput input{tree, content, elf, pool};
  std::vector<std::unique_ptr<AnalysisSink>> sinks;
  for (const auto& analyzer : ready) {
    sinks.push_back(std::make_unique<AnalysisSink>(std::string(analyzer->name())));
  }
  {
    TaskGroup group(pool);
    for (std::size_t i = 0; i < ready.size(); ++i) {
      group.Run([&, i] { ready[i]->Run(input, *sinks[i]); });
    }
    group.Wait();
  }
  for (std::size_t i = 0; i < ready.size(); ++i) {
    model::AnalysisReport part;
    sinks[i]->MoveInto(part);
    CheckFacts(*ready[i], part);
    report.analyzers.emplace_back(ready[i]->name());
    std::move(part.facts.begin(), part.facts.end(), std::back_inserter(report.facts));
    std::move(part.findings.begin(), part.findings.end(), std::back_inserter(report.findings));
    std::move(part.components.begin(), part.components.end(),
              std::back_inserter(report.components));
    std::move(part.gaps.begin(), part.gaps.end(), std::back_inserter(report.gaps));
  }
  report.Normalize();
  return report;
}

}  // namespace iotmark::analyzers
