// The analyzer plug-in interface. An analyzer turns the unpacked tree into evidence: it declares
// the facts it emits (catalogs refer to them by name), loads its knowledge from data files,
// registers the byte patterns it needs in the one shared content scan, and then reads the
// results of that scan, the ELF index and the files it cares about. It never decides a
// requirement's verdict. To add one: a folder under builtin/ and one line in
// builtin_analyzers.cpp.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/data_store.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/inventory/content_scan.hpp"
#include "iotmark/inventory/elf_index.hpp"
#include "iotmark/inventory/file_tree.hpp"
#include "iotmark/model/analysis_report.hpp"

namespace iotmark::analyzers {

// What an analyzer may use to prepare: its data, and the content scan to register patterns in.
struct AnalyzerSetup {
  const DataStore& data;
  inventory::PatternSet& patterns;
};

// What an analyzer reads when it runs. Everything here is read-only and shared.
struct AnalysisInput {
  const inventory::FileTree& tree;
  const inventory::ContentIndex& content;
  const inventory::ElfIndex& elf;
  ThreadPool& pool;
};

// Where an analyzer puts what it found. Thread-safe, so an analyzer may emit from pool tasks.
class AnalysisSink {
 public:
  explicit AnalysisSink(std::string analyzer) : analyzer_(std::move(analyzer)) {}

  void AddFact(std::string name, nlohmann::json value, std::vector<model::Evidence> evidence = {});
  // The analyzer's name is filled in.
  void AddFinding(model::Finding finding);
  void AddComponent(model::Component component);
  // Something the analyzer could not do completely (a file it could not parse, a limit).
  void AddGap(model::GapKind kind, std::string path, std::string reason);

  [[nodiscard]] const std::string& analyzer() const { return analyzer_; }
  // Moves everything out (the runner calls this once the analyzer has finished).
  void MoveInto(model::AnalysisReport& report);

 private:
  std::string analyzer_;
  std::mutex mutex_;
  std::vector<model::Fact> facts_;
  std::vector<model::Finding> findings_;
  std::vector<model::Component> components_;
  std::vector<model::Gap> gaps_;
};

class Analyzer {
 public:
  virtual ~Analyzer() = default;

  // Short, stable, lower-case name: "credentials". Fact names start with it.
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual std::string_view description() const = 0;
  // Every fact this analyzer emits. Run() emits each of them exactly once.
  [[nodiscard]] virtual std::span<const model::FactSpec> facts() const = 0;

  // Loads data and registers content patterns; called once, before the content scan. An error
  // (a data file that does not parse) stops this analyzer only and becomes a gap.
  virtual Status Prepare(AnalyzerSetup& /*setup*/) { return {}; }
  // Examines the tree. Problems with single files are gaps through the sink.
  virtual void Run(const AnalysisInput& input, AnalysisSink& sink) = 0;
};

using AnalyzerFactory = std::unique_ptr<Analyzer> (*)();

// Every analyzer iotmark knows, in report order.
std::span<const AnalyzerFactory> BuiltinAnalyzers();

}  // namespace iotmark::analyzers
