// Identifies software components and their versions: version signatures from
// data/components/signatures.yaml (one shared content scan for all of them, then the exact
// version read from the bytes of each match), file names, strings of named libraries, package
// databases (dpkg, opkg) and the kernel banners the unpacker found. Each component gets a PURL,
// an NVD CPE 2.3 name, every place it was seen, and how sure we are.
#include <fnmatch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <tuple>

#include "iotmark/analyzers/analyzer.hpp"
#include "iotmark/analyzers/builtin/components/package_db.hpp"
#include "iotmark/analyzers/builtin/components/signature_set.hpp"
#include "iotmark/sbom/identifiers.hpp"

namespace iotmark::analyzers::builtin {

namespace {

constexpr model::FactSpec kFacts[] = {
    {"components.count", model::FactType::kInteger, "distinct components (name and version)"},
    {"components.list", model::FactType::kList, "every component as name@version"},
    {"components.without_version_count", model::FactType::kInteger,
     "components seen whose version could not be established"},
    {"components.package_managers", model::FactType::kList,
     "package databases present in the image (dpkg, opkg)"},
};

// Longest match text read back for version extraction; signatures are short.
constexpr std::size_t kMaxMatchText = 256;
// Strings rules read at most this much of a named library.
constexpr std::uint64_t kMaxStringsFile = 64ULL << 20;
constexpr std::size_t kMaxEvidencePerComponent = 20;

struct PackageDbLocation {
  std::string_view path;
  std::string_view manager;
  bool directory_of_controls;
};

constexpr PackageDbLocation kPackageDbs[] = {
    {"/var/lib/dpkg/status", "dpkg", false}, {"/usr/lib/opkg/status", "opkg", false},
    {"/var/lib/opkg/status", "opkg", false}, {"/usr/lib/opkg/info/", "opkg", true},
    {"/var/lib/opkg/info/", "opkg", true},
};

std::string_view BaseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool GlobMatches(const std::string& glob, std::string_view name) {
  return glob.empty() || ::fnmatch(glob.c_str(), std::string(name).c_str(), 0) == 0;
}

// Group 1 of `regex` over `text` if the whole text matches (`whole`) or some of it does; when
// group 2 matched too, it is the distribution's full version and is returned instead.
std::optional<std::string> Extract(const std::regex& regex, const std::string& text, bool whole) {
  std::smatch match;
  const bool found =
      whole ? std::regex_match(text, match, regex) : std::regex_search(text, match, regex);
  if (!found) return std::nullopt;
  if (match.size() > 2 && match[2].matched && match[2].length() > 0 && match[1].matched) {
    const std::string full = match[2].str();
    // "2.36-9+deb12u14" is written as "2.36" and "9+deb12u14" in some banners.
    return full.find(match[1].str()) == std::string::npos ? match[1].str() + "-" + full : full;
  }
  return match.size() > 1 && match[1].matched ? match[1].str() : std::string();
}

struct Sighting {
  std::string version;
  model::Confidence confidence = model::Confidence::kMedium;
  std::string method;
  model::Evidence evidence;
};

class ComponentsAnalyzer final : public Analyzer {
 public:
  std::string_view name() const override { return "components"; }
  std::string_view description() const override {
    return "Software components and versions from signatures, file names, package databases "
           "and kernel banners";
  }
  std::span<const model::FactSpec> facts() const override { return kFacts; }

  Status Prepare(AnalyzerSetup& setup) override {
    auto signatures = LoadSignatures(setup.data);
    if (!signatures) return tl::unexpected(signatures.error());
    signatures_ = std::move(*signatures);
    for (std::size_t s = 0; s < signatures_.size(); ++s) {
      for (std::size_t r = 0; r < signatures_[s].rules.size(); ++r) {
        const auto& rule = signatures_[s].rules[r];
        if (rule.kind != SignatureRule::Kind::kMatch) continue;
        const auto id = setup.patterns.AddRegex(rule.scan, {.start_offsets = true},
                                                "components (" + rule.where + ")");
        patterns_.push_back({id, s, r});
      }
    }
    return {};
  }

  void Run(const AnalysisInput& input, AnalysisSink& sink) override {
    sightings_.assign(signatures_.size(), {});
    FromMatches(input, sink);
    FromFilesAndStrings(input, sink);
    FromKernelBanners(input);
    const auto managers = FromPackageDatabases(input, sink);
    Emit(sink, managers);
  }

 private:
  struct PatternRef {
    inventory::PatternId id;
    std::size_t signature;
    std::size_t rule;
  };

  void Add(std::size_t signature, Sighting sighting) {
    sightings_[signature].push_back(std::move(sighting));
  }

  static model::Confidence DefaultConfidence(const SignatureRule& rule, bool has_version) {
    if (rule.confidence) return *rule.confidence;
    if (!has_version) return model::Confidence::kLow;
    return rule.kind == SignatureRule::Kind::kMatch ? model::Confidence::kHigh
                                                    : model::Confidence::kMedium;
  }

  void FromMatches(const AnalysisInput& input, AnalysisSink& sink) {
    struct Hit {
      std::uint32_t file;
      std::uint64_t from;
      std::uint64_t to;
      const PatternRef* pattern;
    };
    std::vector<Hit> hits;
    for (const auto& pattern : patterns_) {
      for (const auto& match : input.content.Matches(pattern.id)) {
        hits.push_back({match.file, match.from, match.to, &pattern});
      }
    }
    std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
      return std::tie(a.file, a.from) < std::tie(b.file, b.from);
    });
    std::optional<MappedFile> mapped;
    std::uint32_t mapped_file = UINT32_MAX;
    // One sighting per file, component and version is enough evidence.
    std::set<std::tuple<std::uint32_t, std::size_t, std::string>> seen;
    for (const auto& hit : hits) {
      const auto& file = input.tree.files()[hit.file];
      if (hit.file != mapped_file) {
        mapped_file = hit.file;
        auto opened = input.tree.Map(file);
        if (!opened) {
          mapped.reset();
          sink.AddGap(model::GapKind::kIo, file.path(), opened.error().message);
          continue;
        }
        mapped = std::move(*opened);
      }
      if (!mapped) continue;
      const auto bytes = mapped->bytes();
      if (hit.to > bytes.size() || hit.from > hit.to) continue;
      // The version is read from where the scan matched on, so that a rule's optional tail
      // (a distribution version after the upstream one) is seen too.
      const auto length = std::min<std::uint64_t>(bytes.size() - hit.from, kMaxMatchText);
      const std::string text(reinterpret_cast<const char*>(bytes.data() + hit.from), length);
      const auto& rule = signatures_[hit.pattern->signature].rules[hit.pattern->rule];
      if (!GlobMatches(rule.files, BaseName(file.system_path))) continue;
      const auto version = Extract(rule.regex, text, false);
      if (!version) continue;
      if (!seen.emplace(hit.file, hit.pattern->signature, *version).second) continue;
      Add(hit.pattern->signature, {*version, DefaultConfidence(rule, !version->empty()),
                                   "signature", Located(input, file, hit.from, rule, text)});
    }
  }

  static model::Evidence Located(const AnalysisInput& input, const inventory::TreeFile& file,
                                 std::optional<std::uint64_t> offset, const SignatureRule& rule,
                                 std::string excerpt) {
    auto evidence =
        input.tree.EvidenceFor(file, "components.signature", offset, std::move(excerpt));
    evidence.rule = rule.where;
    return evidence;
  }

  void FromFilesAndStrings(const AnalysisInput& input, AnalysisSink& sink) {
    for (std::size_t s = 0; s < signatures_.size(); ++s) {
      for (const auto& rule : signatures_[s].rules) {
        if (rule.kind == SignatureRule::Kind::kMatch) continue;
        for (const auto& file : input.tree.files()) {
          if (!file.is_file() || file.unpacked) continue;
          const auto base = BaseName(file.system_path);
          if (rule.kind == SignatureRule::Kind::kFilename) {
            if (!GlobMatches(rule.files, base)) continue;
            const auto version = Extract(rule.regex, std::string(base), true);
            if (!version) continue;
            Add(s, {*version, DefaultConfidence(rule, !version->empty()), "filename",
                    Located(input, file, std::nullopt, rule, std::string(base))});
          } else if (GlobMatches(rule.files, base) && file.entry->size <= kMaxStringsFile) {
            if (auto version = FromStrings(input, file, rule, sink)) {
              Add(s, {*version, DefaultConfidence(rule, true), "strings",
                      Located(input, file, std::nullopt, rule, *version)});
            }
          }
        }
      }
    }
  }

  // The first printable string of `file` that matches the rule as a whole.
  static std::optional<std::string> FromStrings(const AnalysisInput& input,
                                                const inventory::TreeFile& file,
                                                const SignatureRule& rule, AnalysisSink& sink) {
    auto mapped = input.tree.Map(file);
    if (!mapped) {
      sink.AddGap(model::GapKind::kIo, file.path(), mapped.error().message);
      return std::nullopt;
    }
    const auto bytes = mapped->bytes();
    std::size_t start = 0;
    for (std::size_t i = 0; i <= bytes.size(); ++i) {
      const bool printable = i < bytes.size() && bytes[i] >= 0x20 && bytes[i] < 0x7f;
      if (printable) continue;
      const auto length = i - start;
      if (length >= 3 && length <= 200) {
        const std::string text(reinterpret_cast<const char*>(bytes.data() + start), length);
        if (auto version = Extract(rule.regex, text, true); version && !version->empty()) {
          return version;
        }
      }
      start = i + 1;
    }
    return std::nullopt;
  }

  void FromKernelBanners(const AnalysisInput& input) {
    const auto kernel = std::find_if(signatures_.begin(), signatures_.end(),
                                     [](const auto& s) { return s.name == "linux"; });
    if (kernel == signatures_.end()) return;
    const auto index = static_cast<std::size_t>(kernel - signatures_.begin());
    Walk(input.tree.report().tree, "",
         [&](const model::ExtractionNode& node, const std::string& blob) {
           if (node.format != "linux_kernel") return;
           const auto version = node.meta.find("version");
           if (version == node.meta.end() || version->second.empty()) return;
           model::Evidence evidence;
           evidence.path = blob;
           evidence.offset = node.offset;
           evidence.check = "components.kernel_banner";
           const auto banner = node.meta.find("banner");
           if (banner != node.meta.end()) evidence.excerpt = banner->second.substr(0, 200);
           Add(index, {version->second, model::Confidence::kHigh, "kernel-banner", evidence});
         });
  }

  template <typename Visit>
  static void Walk(const model::ExtractionNode& node, const std::string& blob, Visit&& visit) {
    const std::string& here = node.kind == model::ExtractionNode::Kind::kBlob ? node.path : blob;
    visit(node, here);
    for (const auto& child : node.children) Walk(child, here, visit);
  }

  std::vector<std::string> FromPackageDatabases(const AnalysisInput& input, AnalysisSink& sink) {
    std::set<std::string> managers;
    for (const auto& file : input.tree.files()) {
      if (!file.is_file()) continue;
      for (const auto& db : kPackageDbs) {
        const bool hit = db.directory_of_controls ? file.system_path.starts_with(db.path) &&
                                                        file.system_path.ends_with(".control")
                                                  : file.system_path == db.path;
        if (!hit) continue;
        auto mapped = input.tree.Map(file);
        if (!mapped) {
          sink.AddGap(model::GapKind::kIo, file.path(), mapped.error().message);
          continue;
        }
        managers.emplace(db.manager);
        const auto bytes = mapped->bytes();
        const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        for (auto& package : ParsePackageStanzas(text))
          AddPackage(input, file, db.manager, package);
      }
    }
    return {managers.begin(), managers.end()};
  }

  void AddPackage(const AnalysisInput& input, const inventory::TreeFile& file,
                  std::string_view manager, const InstalledPackage& package) {
    auto evidence = input.tree.EvidenceFor(file, "components.package_db", std::nullopt,
                                           package.name + " " + package.version);
    const auto known = std::find_if(signatures_.begin(), signatures_.end(), [&](const auto& s) {
      return std::find(s.packages.begin(), s.packages.end(), package.name) != s.packages.end() ||
             (!package.source.empty() &&
              std::find(s.packages.begin(), s.packages.end(), package.source) != s.packages.end());
    });
    if (known != signatures_.end()) {
      Add(static_cast<std::size_t>(known - signatures_.begin()),
          {package.version, model::Confidence::kHigh, std::string(manager), evidence});
      return;
    }
    model::Component component;
    component.name = package.name;
    component.version = package.version;
    component.purl = manager == "dpkg" ? "pkg:deb/" + sbom::PercentEncode(package.name)
                                       : "pkg:opkg/" + sbom::PercentEncode(package.name);
    component.purl = sbom::PurlWithVersion(component.purl, package.version);
    if (!package.architecture.empty())
      component.purl += "?arch=" + sbom::PercentEncode(package.architecture);
    component.method = std::string(manager);
    component.confidence = model::Confidence::kHigh;
    component.locations.push_back(std::move(evidence));
    unlisted_.push_back(std::move(component));
  }

  // One component per signature and upstream version; the sightings' evidence is merged, the
  // best confidence wins, and a sighting without version is dropped when a version is known.
  void Emit(AnalysisSink& sink, const std::vector<std::string>& managers) {
    std::vector<model::Component> components;
    for (std::size_t s = 0; s < signatures_.size(); ++s) {
      auto& list = sightings_[s];
      if (list.empty()) continue;
      const bool any_version = std::any_of(list.begin(), list.end(),
                                           [](const Sighting& x) { return !x.version.empty(); });
      std::map<std::string, model::Component> by_version;
      for (auto& sighting : list) {
        if (any_version && sighting.version.empty()) continue;
        const auto upstream = UpstreamVersion(sighting.version);
        auto [it, fresh] = by_version.try_emplace(upstream);
        auto& component = it->second;
        if (fresh) {
          component = Describe(signatures_[s], upstream);
          component.confidence = sighting.confidence;
          component.method = sighting.method;
        }
        // A package manager's full version (with the distribution revision) says more.
        if (sighting.version.size() > component.version.size())
          component.version = sighting.version;
        component.confidence = std::max(component.confidence, sighting.confidence);
        if (component.method.find(sighting.method) == std::string::npos) {
          component.method += "+" + sighting.method;
        }
        if (component.locations.size() < kMaxEvidencePerComponent) {
          component.locations.push_back(std::move(sighting.evidence));
        }
      }
      for (auto& [version, component] : by_version) components.push_back(std::move(component));
    }
    for (auto& component : unlisted_) components.push_back(std::move(component));

    nlohmann::json names = nlohmann::json::array();
    std::int64_t without_version = 0;
    for (const auto& component : components) {
      names.push_back(component.name + "@" + (component.version.empty() ? "?" : component.version));
      if (component.version.empty()) ++without_version;
    }
    std::sort(names.begin(), names.end());
    sink.AddFact("components.count", static_cast<std::int64_t>(components.size()));
    sink.AddFact("components.list", names);
    sink.AddFact("components.without_version_count", without_version);
    sink.AddFact("components.package_managers", managers);
    for (auto& component : components) sink.AddComponent(std::move(component));
  }

  static model::Component Describe(const ComponentSignature& signature,
                                   const std::string& version) {
    model::Component component;
    component.name = signature.name;
    component.version = version;
    component.purl = sbom::PurlWithVersion(signature.purl, version);
    auto cpe = sbom::ParseCpeBase(signature.cpe);
    cpe.version = version.empty() ? "*" : version;
    if (!signature.cpe_update_from.empty() && !version.empty()) {
      const auto split = version.find(signature.cpe_update_from);
      if (split != std::string::npos && split > 0) {
        cpe.version = version.substr(0, split);
        cpe.update = version.substr(split);
      }
    }
    component.cpe = sbom::FormatCpe(cpe);
    return component;
  }

  std::vector<ComponentSignature> signatures_;
  std::vector<PatternRef> patterns_;
  std::vector<std::vector<Sighting>> sightings_;
  std::vector<model::Component> unlisted_;
};

}  // namespace

std::unique_ptr<Analyzer> MakeComponentsAnalyzer() {
  return std::make_unique<ComponentsAnalyzer>();
}

}  // namespace iotmark::analyzers::builtin
