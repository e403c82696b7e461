#include "format_text.hpp"

#include <array>
#include <cstdio>
#include <vector>

#include "iotmark/base/bytes.hpp"

namespace iotmark::cli {

std::string HumanBytes(std::uint64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  std::array<char, 32> text{};
  if (unit == 0) {
    std::snprintf(text.data(), text.size(), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text.data(), text.size(), "%.1f %s", value, kUnits[unit]);
  }
  return text.data();
}

namespace {

// The few meta facts worth a place on the line, in a fixed order.
std::string KeyFacts(const model::ExtractionNode& node) {
  static constexpr std::array<const char*, 9> kKeys = {
      "name", "original_name", "version", "compression", "kind", "os", "arch", "fill", "files"};
  std::string out;
  for (const char* key : kKeys) {
    auto it = node.meta.find(key);
    if (it == node.meta.end() || it->second.empty()) continue;
    if (!out.empty()) out += ", ";
    out += it->second.substr(0, 60);
  }
  return out;
}

struct TreePrinter {
  std::ostream& out;
  std::size_t max_lines;
  std::size_t lines = 0;
  std::size_t skipped = 0;

  void Line(const std::string& text) {
    if (lines < max_lines) {
      out << text << '\n';
      ++lines;
    } else {
      ++skipped;
    }
  }

  void Walk(const model::ExtractionNode& node, int indent) {
    const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
    for (const auto& child : node.children) {
      if (child.kind == model::ExtractionNode::Kind::kBlob) {
        Line(pad + child.path + "  (" + HumanBytes(child.length) + ")");
        Walk(child, indent + 1);
        continue;
      }
      std::array<char, 160> text{};
      std::snprintf(text.data(), text.size(), "%s%-10s %-12s %10s  %-11s", pad.c_str(),
                    HexOffset(child.offset).c_str(), child.format.c_str(),
                    HumanBytes(child.length).c_str(), std::string(ToString(child.status)).c_str());
      std::string line = text.data();
      if (child.entropy) {
        std::array<char, 32> e{};
        std::snprintf(e.data(), e.size(), "entropy %.2f", *child.entropy);
        line += e.data();
      }
      const std::string facts = KeyFacts(child);
      if (!facts.empty()) line += facts;
      Line(line);
      Walk(child, indent + 1);
    }
  }
};

}  // namespace

void PrintSummary(std::ostream& out, const model::UnpackReport& report,
                  const SummaryOptions& options) {
  out << "iotmark " << report.tool_version << "  " << report.image_name << "  "
      << HumanBytes(report.image_size) << "  sha256 " << report.image_sha256 << "\n\n";
  TreePrinter printer{out, options.max_tree_lines};
  printer.Walk(report.tree, 1);
  if (printer.skipped > 0) out << "  ... " << printer.skipped << " more lines in the JSON report\n";

  std::array<char, 200> line{};
  std::snprintf(line.data(), line.size(),
                "\nUnpacked %s in %llu files from %llu chunks (%llu unknown), nesting depth %llu, "
                "%.2f s\n",
                HumanBytes(report.stats.bytes_written).c_str(),
                static_cast<unsigned long long>(report.stats.files),
                static_cast<unsigned long long>(report.stats.chunks),
                static_cast<unsigned long long>(report.stats.unknown_chunks),
                static_cast<unsigned long long>(report.stats.max_depth_reached), options.seconds);
  out << line.data();
  if (!options.output_dir.empty()) out << "Extracted tree: " << options.output_dir << "\n";
  if (report.gaps.empty()) {
    out << "No gaps: everything recognised was read completely.\n";
    return;
  }
  out << "\nGaps (" << report.gaps.size() << "): what could not be read, and why\n";
  std::size_t shown = 0;
  for (const auto& gap : report.gaps) {
    if (shown++ == options.max_gaps) {
      out << "  ... " << report.gaps.size() - options.max_gaps << " more in the JSON report\n";
      break;
    }
    out << "  " << ToString(gap.kind) << "  " << (gap.blob.empty() ? report.image_name : gap.blob)
        << " @" << HexOffset(gap.offset) << (gap.format.empty() ? "" : " [" + gap.format + "]")
        << ": " << gap.reason << "\n";
  }
}

void PrintAnalysis(std::ostream& out, const model::AnalysisReport& report, double seconds) {
  constexpr std::size_t kMaxComponents = 40;
  constexpr std::size_t kMaxFindings = 30;
  out << "\nComponents (" << report.components.size() << ")\n";
  std::size_t shown = 0;
  for (const auto& component : report.components) {
    if (shown++ == kMaxComponents) {
      out << "  ... " << report.components.size() - kMaxComponents << " more in the JSON report\n";
      break;
    }
    std::array<char, 160> line{};
    std::snprintf(
        line.data(), line.size(), "  %-22s %-16s %-10s %s", component.name.c_str(),
        component.version.empty() ? "?" : component.version.c_str(),
        std::string(model::ToString(component.confidence)).c_str(),
        component.locations.empty() ? "" : component.locations.front().system_path.c_str());
    out << line.data() << "\n";
  }
  std::array<std::size_t, 5> by_severity{};
  for (const auto& finding : report.findings)
    ++by_severity[static_cast<std::size_t>(finding.severity)];
  out << "\nFindings (" << report.findings.size() << ": " << by_severity[4] << " critical, "
      << by_severity[3] << " high, " << by_severity[2] << " medium, " << by_severity[1] << " low, "
      << by_severity[0] << " info)\n";
  shown = 0;
  for (const auto& finding : report.findings) {
    if (shown++ == kMaxFindings) {
      out << "  ... " << report.findings.size() - kMaxFindings << " more in the JSON report\n";
      break;
    }
    out << "  " << model::ToString(finding.severity) << "  " << finding.title;
    if (!finding.evidence.empty()) {
      const auto& where = finding.evidence.front();
      out << "  [" << (where.system_path.empty() ? where.path : where.system_path) << "]";
    }
    out << "\n";
  }
  if (!report.gaps.empty()) {
    out << "\nAnalysis gaps (" << report.gaps.size() << ")\n";
    for (std::size_t i = 0; i < report.gaps.size() && i < 20; ++i) {
      const auto& gap = report.gaps[i];
      out << "  " << gap.format << ": " << (gap.blob.empty() ? "" : gap.blob + ": ") << gap.reason
          << "\n";
    }
  }
  std::array<char, 96> tail{};
  std::snprintf(tail.data(), tail.size(), "\nAnalyzed by %zu analyzers, %zu facts, %.2f s\n",
                report.analyzers.size(), report.facts.size(), seconds);
  out << tail.data();
}

}  // namespace iotmark::cli
