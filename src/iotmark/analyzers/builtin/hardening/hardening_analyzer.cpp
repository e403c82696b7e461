#include "iotmark/analyzers/builtin/hardening/hardening_analyzer.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace iotmark::analyzers::builtin {

namespace {

using model::FactType;

constexpr std::size_t kMaxEvidence = 50;
constexpr std::uint32_t kSetuidBit = 04000;  // S_ISUID in the mode the image records
constexpr const char* kDangerousFile = "hardening/dangerous_functions.yaml";
constexpr const char* kContextFile = "hardening/binary_context.yaml";

constexpr model::FactSpec kFacts[] = {
    {"hardening.elf_count", FactType::kInteger,
     "ELF programs and shared libraries examined (object files, kernel modules and core dumps "
     "are not)"},
    {"hardening.without_nx_count", FactType::kInteger,
     "programs and libraries whose stack is executable: PT_GNU_STACK marked executable, or no "
     "PT_GNU_STACK at all"},
    {"hardening.without_pie_count", FactType::kInteger,
     "executables linked at a fixed address (ET_EXEC), whose code ASLR cannot move"},
    {"hardening.without_relro_count", FactType::kInteger,
     "programs and libraries without a PT_GNU_RELRO segment"},
    {"hardening.without_canary_count", FactType::kInteger,
     "programs and libraries whose symbols show no stack protector (__stack_chk_fail, "
     "__stack_chk_guard, __stack_smash_handler); binaries whose symbols cannot be read are not "
     "counted (see hardening.symbols_unknown_count)"},
    {"hardening.without_fortify_count", FactType::kInteger,
     "programs and libraries that import a function _FORTIFY_SOURCE checks (memcpy, sprintf, "
     "...) but no __*_chk function"},
    {"hardening.with_rpath_count", FactType::kInteger,
     "programs and libraries with an RPATH or RUNPATH entry that is empty, relative or below a "
     "directory writable at run time"},
    {"hardening.not_stripped_count", FactType::kInteger,
     "programs and libraries that still carry their full symbol table (.symtab)"},
    {"hardening.symbols_unknown_count", FactType::kInteger,
     "programs and libraries without any readable symbol table (stripped static binaries), for "
     "which stack protector and fortification cannot be seen"},
    {"hardening.architectures", FactType::kList,
     "CPU architectures of the ELF files, lower case and sorted: [\"arm\", \"mips\"]"},
    {"hardening.dangerous_imports", FactType::kObject,
     "for every function of data/hardening/dangerous_functions.yaml, how many programs and "
     "libraries import it"},
};

struct DangerousFunction {
  std::string name;
  std::string cwe;
  std::string why;
  model::Severity severity = model::Severity::kLow;
};

// Binaries that share a property: how many, and evidence for the first kMaxEvidence of them.
struct Listing {
  std::int64_t count = 0;
  std::vector<model::Evidence> evidence;

  void Add(model::Evidence item) {
    ++count;
    if (evidence.size() < kMaxEvidence) evidence.push_back(std::move(item));
  }
  // " The first 50 are listed; 12 more are not." when the evidence was capped.
  [[nodiscard]] std::string Omitted() const {
    if (count <= static_cast<std::int64_t>(evidence.size())) return {};
    return " The first " + std::to_string(evidence.size()) + " are listed; " +
           std::to_string(count - static_cast<std::int64_t>(evidence.size())) + " more are not.";
  }
};

std::optional<model::Severity> ParseSeverity(std::string_view text) {
  for (const auto severity :
       {model::Severity::kInfo, model::Severity::kLow, model::Severity::kMedium,
        model::Severity::kHigh, model::Severity::kCritical}) {
    if (model::ToString(severity) == text) return severity;
  }
  return std::nullopt;
}

tl::unexpected<Error> DataError(const std::string& file, const YAML::Node& node,
                                const std::string& what) {
  return Fail(ErrorCode::kCorruptInput, YamlWhere(file, node) + ": " + what);
}

// `root[key]` as a list of non-empty strings.
Result<std::vector<std::string>> StringList(const YAML::Node& root, const char* key,
                                            const std::string& file) {
  const YAML::Node list = root[key];
  if (!list.IsDefined() || !list.IsSequence())
    return DataError(file, root, std::string(key) + " must be a list");
  std::vector<std::string> out;
  for (const auto& item : list) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      return DataError(file, item, std::string(key) + " entries must be non-empty strings");
    }
    out.push_back(item.Scalar());
  }
  return out;
}

// A required, non-empty string field of a map.
Result<std::string> Field(const YAML::Node& map, const char* key, const std::string& file) {
  // A missing key gives an undefined node, which throws on anything but IsDefined().
  const YAML::Node value = map[key];
  if (!value.IsDefined() || !value.IsScalar() || value.Scalar().empty()) {
    return DataError(file, map, std::string("missing or empty field ") + key);
  }
  return value.Scalar();
}

Result<DangerousFunction> ParseDangerous(const YAML::Node& item, const std::string& file) {
  if (!item.IsMap()) return DataError(file, item, "functions entries must be maps");
  DangerousFunction function;
  auto name = Field(item, "name", file);
  auto cwe = Field(item, "cwe", file);
  auto severity = Field(item, "severity", file);
  auto why = Field(item, "why", file);
  if (!name) return tl::unexpected(name.error());
  if (!cwe) return tl::unexpected(cwe.error());
  if (!severity) return tl::unexpected(severity.error());
  if (!why) return tl::unexpected(why.error());
  if (!cwe->starts_with("CWE-")) return DataError(file, item, "cwe must look like CWE-120");
  const auto parsed = ParseSeverity(*severity);
  if (!parsed) return DataError(file, item, "unknown severity " + *severity);
  return DangerousFunction{*name, *cwe, *why, *parsed};
}

bool IsProgram(const inventory::ElfFacts& elf) {
  return elf.type == "executable" || elf.type == "pie-executable" || elf.type == "shared-object";
}

std::string BaseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool Imports(const inventory::ElfFacts& elf, std::string_view name) {
  return std::binary_search(elf.imports.begin(), elf.imports.end(), name);
}

std::string Join(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& item : list) out += (out.empty() ? "" : ", ") + item;
  return out;
}

struct Tally {
  std::int64_t programs = 0;
  Listing without_nx;
  Listing without_pie;
  Listing exposed_without_pie;
  Listing without_relro;
  Listing without_canary;
  Listing without_fortify;
  Listing insecure_rpath;
  Listing not_stripped;
  Listing symbols_unknown;
  std::vector<Listing> dangerous;
  std::set<std::string> architectures;
};

class HardeningAnalyzer final : public Analyzer {
 public:
  [[nodiscard]] std::string_view name() const override { return "hardening"; }
  [[nodiscard]] std::string_view description() const override {
    return "Exploit mitigations of every program and library (NX, PIE, RELRO, stack canary, "
           "_FORTIFY_SOURCE), run-time search paths and imports of dangerous functions.";
  }
  [[nodiscard]] std::span<const model::FactSpec> facts() const override { return kFacts; }

  Status Prepare(AnalyzerSetup& setup) override {
    // yaml-cpp throws on some malformed nodes even after the checks below; keep that here.
    try {
      IOTMARK_TRY(LoadDangerous(setup.data));
      return LoadContext(setup.data);
    } catch (const YAML::Exception& e) {
      return Fail(ErrorCode::kCorruptInput, "hardening data: " + std::string(e.what()));
    }
  }

  void Run(const AnalysisInput& input, AnalysisSink& sink) override;

 private:
  [[nodiscard]] Tally Collect(const AnalysisInput& input) const;
  void EmitFacts(const Tally& tally, AnalysisSink& sink) const;
  void EmitFindings(const Tally& tally, AnalysisSink& sink) const;

  Status LoadDangerous(const DataStore& data) {
    const std::string file = kDangerousFile;
    dangerous_.clear();
    auto root = data.LoadYaml(file);
    if (!root) return tl::unexpected(root.error());
    if (!root->IsMap() || !(*root)["functions"].IsDefined() || !(*root)["functions"].IsSequence()) {
      return DataError(file, *root, "expected a map with a functions list");
    }
    for (const auto& item : (*root)["functions"]) {
      auto function = ParseDangerous(item, file);
      if (!function) return tl::unexpected(function.error());
      dangerous_.push_back(std::move(*function));
    }
    return {};
  }

  Status LoadContext(const DataStore& data) {
    const std::string file = kContextFile;
    auto root = data.LoadYaml(file);
    if (!root) return tl::unexpected(root.error());
    if (!root->IsMap()) return DataError(file, *root, "expected a map");
    auto fortifiable = StringList(*root, "fortifiable_functions", file);
    auto network_imports = StringList(*root, "network_imports", file);
    auto network_programs = StringList(*root, "network_programs", file);
    auto writable = StringList(*root, "writable_directories", file);
    for (const auto* list : {&fortifiable, &network_imports, &network_programs, &writable}) {
      if (!*list) return tl::unexpected(list->error());
    }
    fortifiable_ = std::move(*fortifiable);
    network_imports_ = std::move(*network_imports);
    network_programs_ = {network_programs->begin(), network_programs->end()};
    writable_directories_ = std::move(*writable);
    return {};
  }

  // For each file that symlinks with a network daemon's name resolve to (BusyBox applets),
  // those names.
  [[nodiscard]] std::unordered_map<std::uint32_t, std::vector<std::string>> DaemonLinks(
      const inventory::FileTree& tree) const {
    std::unordered_map<std::uint32_t, std::vector<std::string>> out;
    const auto& files = tree.files();
    for (const auto& file : files) {
      if (file.entry->kind != model::EntryKind::kSymlink) continue;
      const auto name = BaseName(file.system_path);
      if (!network_programs_.contains(name)) continue;
      const auto* target = tree.Resolve(file);
      if (target == nullptr || !target->is_file()) continue;
      out[static_cast<std::uint32_t>(target - files.data())].push_back(name);
    }
    return out;
  }

  // Why a binary is worth attacking from outside: setuid, accepts connections, or runs as a
  // network daemon. Empty if none applies.
  [[nodiscard]] std::string Exposure(
      const inventory::ElfFacts& elf, const inventory::TreeFile& file,
      const std::unordered_map<std::uint32_t, std::vector<std::string>>& links) const {
    std::vector<std::string> reasons;
    if ((file.entry->mode & kSetuidBit) != 0) reasons.emplace_back("setuid");
    for (const auto& import : network_imports_) {
      if (Imports(elf, import)) {
        reasons.push_back("imports " + import);
        break;
      }
    }
    std::vector<std::string> names;
    if (network_programs_.contains(BaseName(file.system_path))) {
      names.push_back(BaseName(file.system_path));
    }
    if (const auto it = links.find(elf.file); it != links.end()) {
      names.insert(names.end(), it->second.begin(), it->second.end());
    }
    if (!names.empty()) reasons.push_back("runs as " + Join(names));
    return Join(reasons);
  }

  // The first search path entry a local attacker could plant a library in, or nothing.
  [[nodiscard]] std::optional<std::string> InsecureSearchPath(
      const inventory::ElfFacts& elf) const {
    for (const auto* list : {&elf.rpath, &elf.runpath}) {
      const char* kind = list == &elf.rpath ? "RPATH" : "RUNPATH";
      for (const auto& entry : *list) {
        if (entry.empty()) return std::string(kind) + " has an empty entry (the current directory)";
        if (entry.starts_with("$ORIGIN") || entry.starts_with("${ORIGIN}")) continue;
        if (entry.front() != '/') return std::string(kind) + " " + entry + " is relative";
        const auto normal = inventory::JoinSystemPath("/", entry);
        for (const auto& dir : writable_directories_) {
          if (normal == dir || normal.starts_with(dir + "/")) {
            return std::string(kind) + " " + entry + " is below writable " + dir;
          }
        }
      }
    }
    return std::nullopt;
  }

  // The first import that _FORTIFY_SOURCE would have replaced, if the binary has no __*_chk.
  [[nodiscard]] std::optional<std::string> Unfortified(const inventory::ElfFacts& elf) const {
    if (elf.fortify) return std::nullopt;
    for (const auto& function : fortifiable_) {
      if (Imports(elf, function)) return function;
    }
    return std::nullopt;
  }

  std::vector<DangerousFunction> dangerous_;
  std::vector<std::string> fortifiable_;
  std::vector<std::string> network_imports_;
  std::set<std::string, std::less<>> network_programs_;
  std::vector<std::string> writable_directories_;
};

struct FindingText {
  std::string id;
  model::Severity severity = model::Severity::kLow;
  std::string title;
  std::string detail;
  std::string cwe;
  std::string advice;
};

void AddFinding(AnalysisSink& sink, const Listing& listing, FindingText text) {
  if (listing.count == 0) return;
  model::Finding finding;
  finding.id = std::move(text.id);
  finding.severity = text.severity;
  finding.title = std::move(text.title);
  finding.detail = std::move(text.detail) + listing.Omitted();
  finding.cwe = std::move(text.cwe);
  finding.advice = std::move(text.advice);
  finding.evidence = listing.evidence;
  sink.AddFinding(std::move(finding));
}

std::string Count(const Listing& listing, std::string_view one, std::string_view many) {
  return std::to_string(listing.count) + " " + std::string(listing.count == 1 ? one : many);
}

void HardeningAnalyzer::Run(const AnalysisInput& input, AnalysisSink& sink) {
  const Tally tally = Collect(input);
  EmitFacts(tally, sink);
  EmitFindings(tally, sink);
}

Tally HardeningAnalyzer::Collect(const AnalysisInput& input) const {
  const auto& files = input.tree.files();
  const auto links = DaemonLinks(input.tree);
  Tally tally;
  tally.dangerous.resize(dangerous_.size());
  for (const auto& elf : input.elf.all()) {
    if (elf.type != "core") tally.architectures.insert(elf.machine);
    if (!IsProgram(elf)) continue;
    const auto& file = files[elf.file];
    auto evidence = [&](const char* check, std::string excerpt) {
      return input.tree.EvidenceFor(file, check, std::nullopt, std::move(excerpt));
    };
    ++tally.programs;
    if (!elf.nx) tally.without_nx.Add(evidence("hardening.nx", "executable stack"));
    if (elf.type == "executable") {
      tally.without_pie.Add(evidence("hardening.pie", "ET_EXEC: loaded at a fixed address"));
      if (auto why = Exposure(elf, file, links); !why.empty()) {
        tally.exposed_without_pie.Add(evidence("hardening.pie", "not PIE; " + why));
      }
    }
    if (elf.relro == inventory::Relro::kNone) {
      tally.without_relro.Add(evidence("hardening.relro", "no PT_GNU_RELRO"));
    }
    if (!elf.symbols_known) {
      tally.symbols_unknown.Add(evidence("hardening.symbols", "no readable symbol table"));
    } else if (!elf.canary) {
      tally.without_canary.Add(evidence("hardening.canary", "no __stack_chk_* symbol"));
    }
    if (auto function = elf.symbols_known ? Unfortified(elf) : std::nullopt) {
      tally.without_fortify.Add(
          evidence("hardening.fortify", "imports " + *function + " but no __*_chk function"));
    }
    if (auto why = InsecureSearchPath(elf)) {
      tally.insecure_rpath.Add(evidence("hardening.rpath", *why));
    }
    if (!elf.stripped) tally.not_stripped.Add(evidence("hardening.symtab", ".symtab present"));
    for (std::size_t i = 0; i < dangerous_.size(); ++i) {
      if (Imports(elf, dangerous_[i].name)) {
        tally.dangerous[i].Add(
            evidence("hardening.dangerous_function", "imports " + dangerous_[i].name));
      }
    }
  }
  return tally;
}

void HardeningAnalyzer::EmitFacts(const Tally& tally, AnalysisSink& sink) const {
  sink.AddFact("hardening.elf_count", tally.programs);
  sink.AddFact("hardening.without_nx_count", tally.without_nx.count, tally.without_nx.evidence);
  sink.AddFact("hardening.without_pie_count", tally.without_pie.count, tally.without_pie.evidence);
  sink.AddFact("hardening.without_relro_count", tally.without_relro.count,
               tally.without_relro.evidence);
  sink.AddFact("hardening.without_canary_count", tally.without_canary.count,
               tally.without_canary.evidence);
  sink.AddFact("hardening.without_fortify_count", tally.without_fortify.count,
               tally.without_fortify.evidence);
  sink.AddFact("hardening.with_rpath_count", tally.insecure_rpath.count,
               tally.insecure_rpath.evidence);
  sink.AddFact("hardening.not_stripped_count", tally.not_stripped.count,
               tally.not_stripped.evidence);
  sink.AddFact("hardening.symbols_unknown_count", tally.symbols_unknown.count,
               tally.symbols_unknown.evidence);
  sink.AddFact("hardening.architectures", nlohmann::json(tally.architectures));
  nlohmann::json imports = nlohmann::json::object();
  for (std::size_t i = 0; i < dangerous_.size(); ++i) {
    imports[dangerous_[i].name] = tally.dangerous[i].count;
  }
  sink.AddFact("hardening.dangerous_imports", std::move(imports));
}

void HardeningAnalyzer::EmitFindings(const Tally& tally, AnalysisSink& sink) const {
  AddFinding(sink, tally.without_nx,
             {"hardening.executable_stack", model::Severity::kMedium,
              "Programs or libraries run with an executable stack",
              Count(tally.without_nx, "binary has", "binaries have") +
                  " no PT_GNU_STACK segment or one marked executable, so code injected "
                  "into the stack can run.",
              "CWE-693",
              "Build with -Wl,-z,noexecstack and give assembly sources a "
              ".note.GNU-stack section."});
  AddFinding(
      sink, tally.exposed_without_pie,
      {"hardening.no_pie_exposed", model::Severity::kLow,
       "Network-facing or setuid programs are not position independent",
       Count(tally.exposed_without_pie, "program that faces", "programs that face") +
           " the network or runs setuid " + (tally.exposed_without_pie.count == 1 ? "is" : "are") +
           " linked at a fixed address, so ASLR cannot hide "
           "their code from an exploit.",
       "CWE-693", "Build these programs with -fPIE -pie."});
  AddFinding(sink, tally.without_relro,
             {"hardening.no_relro", model::Severity::kLow, "Programs or libraries without RELRO",
              Count(tally.without_relro, "binary has", "binaries have") +
                  " no read-only relocations (PT_GNU_RELRO), so the GOT stays writable "
                  "and is an easy target for memory corruption.",
              "CWE-693", "Link with -Wl,-z,relro,-z,now."});
  AddFinding(sink, tally.without_canary,
             {"hardening.no_canary", model::Severity::kLow,
              "Programs or libraries without stack protector",
              Count(tally.without_canary, "binary shows", "binaries show") +
                  " no sign of a stack protector (__stack_chk_fail, __stack_chk_guard), "
                  "so stack buffer overflows are not detected.",
              "CWE-693", "Build with -fstack-protector-strong."});
  AddFinding(sink, tally.insecure_rpath,
             {"hardening.insecure_rpath", model::Severity::kMedium,
              "Library search paths an attacker can write to",
              Count(tally.insecure_rpath, "binary searches", "binaries search") +
                  " for libraries in an empty, relative or writable directory (RPATH or "
                  "RUNPATH), where a local attacker can plant a library.",
              "CWE-426",
              "Remove RPATH and RUNPATH or point them at read-only system directories "
              "or $ORIGIN."});
  for (std::size_t i = 0; i < dangerous_.size(); ++i) {
    const auto& function = dangerous_[i];
    AddFinding(sink, tally.dangerous[i],
               {"hardening.dangerous_function." + function.name, function.severity,
                "Binaries use " + function.name,
                Count(tally.dangerous[i], "binary imports ", "binaries import ") + function.name +
                    ", which " + function.why + ".",
                function.cwe,
                "Review each use of " + function.name +
                    " and replace it with a bounded or safer alternative."});
  }
}

}  // namespace

std::unique_ptr<Analyzer> MakeHardeningAnalyzer() { return std::make_unique<HardeningAnalyzer>(); }

}  // namespace iotmark::analyzers::builtin
