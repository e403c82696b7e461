#include "iotmark/analyzers/analysis.hpp"

#include <gtest/gtest.h>

#include "iotmark/analyzers/testing/tree_builder.hpp"

namespace iotmark::analyzers {
namespace {

using testing::RunAnalyzer;
using testing::ScratchDir;
using testing::TreeBuilder;

constexpr model::FactSpec kProbeFacts[] = {
    {"probe.hits", model::FactType::kInteger, "files holding the word"},
    {"probe.found", model::FactType::kBoolean, "whether any file holds it"},
};

// A small analyzer that counts files holding a word, to test the runner.
class ProbeAnalyzer final : public Analyzer {
 public:
  explicit ProbeAnalyzer(std::string word, bool emit_extra = false)
      : word_(std::move(word)), emit_extra_(emit_extra) {}
  std::string_view name() const override { return "probe"; }
  std::string_view description() const override { return "test analyzer"; }
  std::span<const model::FactSpec> facts() const override { return kProbeFacts; }
  Status Prepare(AnalyzerSetup& setup) override {
    pattern_ = setup.patterns.AddLiteral(word_, {.start_offsets = true}, "probe");
    return {};
  }
  void Run(const AnalysisInput& input, AnalysisSink& sink) override {
    std::vector<model::Evidence> evidence;
    std::int64_t files = 0;
    std::uint32_t last = UINT32_MAX;
    for (const auto& match : input.content.Matches(pattern_)) {
      if (match.file != last) ++files;
      last = match.file;
      evidence.push_back(
          input.tree.EvidenceFor(input.tree.files()[match.file], "probe.word", match.from));
    }
    sink.AddFact("probe.hits", files, evidence);
    if (emit_extra_) {
      sink.AddFact("probe.undeclared", true);
    } else {
      sink.AddFact("probe.found", files > 0);
    }
  }

 private:
  std::string word_;
  bool emit_extra_;
  inventory::PatternId pattern_ = 0;
};

TEST(Analysis, FindsPatternMatchesWithTheirFilesAndOffsets) {
  ScratchDir scratch;
  TreeBuilder tree(scratch);
  tree.File("/etc/a.conf", "xx telnetd yy telnetd")
      .File("/etc/b.conf", "nothing")
      .File("/bin/c", "telnetd");
  const auto report = RunAnalyzer(tree, std::make_unique<ProbeAnalyzer>("telnetd"));
  const auto* hits = report.FindFact("probe.hits");
  ASSERT_NE(hits, nullptr);
  EXPECT_EQ(hits->value, 2);
  ASSERT_EQ(hits->evidence.size(), 3u);
  EXPECT_EQ(hits->evidence[0].system_path, "/bin/c");
  EXPECT_EQ(hits->evidence[0].offset, 0u);
  EXPECT_EQ(hits->evidence[1].system_path, "/etc/a.conf");
  EXPECT_EQ(hits->evidence[1].offset, 3u);
  EXPECT_EQ(hits->evidence[2].offset, 14u);
  EXPECT_FALSE(hits->evidence[1].sha256.empty());
  EXPECT_TRUE(report.gaps.empty());
}

TEST(Analysis, RejectsFactsAnAnalyzerDidNotDeclareAndReportsMissingOnes) {
  ScratchDir scratch;
  TreeBuilder tree(scratch);
  tree.File("/etc/a.conf", "x");
  const auto report = RunAnalyzer(tree, std::make_unique<ProbeAnalyzer>("x", true));
  EXPECT_EQ(report.FindFact("probe.undeclared"), nullptr);
  ASSERT_EQ(report.gaps.size(), 2u);
  EXPECT_NE(report.gaps[0].reason.find("probe.found"), std::string::npos);
  EXPECT_NE(report.gaps[1].reason.find("undeclared"), std::string::npos);
}

TEST(FileTree, ResolvesSymlinksInsideTheirRootAndNeverOutOfIt) {
  ScratchDir scratch;
  TreeBuilder builder(scratch);
  builder.File("/bin/busybox", "BB")
      .Symlink("/bin/sh", "busybox")
      .Symlink("/usr/bin/telnetd", "../../bin/busybox")
      .Symlink("/sbin/loop", "/sbin/loop")
      .Symlink("/sbin/out", "../../../../etc/shadow");
  auto tree = inventory::FileTree::Open(builder.root(), builder.report());
  ASSERT_TRUE(tree.has_value());
  const auto sh = tree->FindAll("/bin/sh");
  ASSERT_EQ(sh.size(), 1u);
  const auto* target = tree->Resolve(*sh[0]);
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(target->system_path, "/bin/busybox");
  EXPECT_EQ(tree->Resolve(*tree->FindAll("/usr/bin/telnetd")[0])->system_path, "/bin/busybox");
  EXPECT_EQ(tree->Resolve(*tree->FindAll("/sbin/loop")[0]), nullptr);
  EXPECT_EQ(tree->Resolve(*tree->FindAll("/sbin/out")[0]), nullptr);
  EXPECT_FALSE(tree->Map(*sh[0]).has_value());  // a symlink is never mapped
  EXPECT_EQ(inventory::JoinSystemPath("/a/b/link", "../../../../x"), "/x");
}

TEST(ContentScan, ReportsAPatternThatDoesNotCompileWithItsOwner) {
  ScratchDir scratch;
  TreeBuilder builder(scratch);
  builder.File("/a", "a");
  auto tree = inventory::FileTree::Open(builder.root(), builder.report());
  ASSERT_TRUE(tree.has_value());
  inventory::PatternSet patterns;
  patterns.AddRegex("(unclosed", {}, "secrets");
  ThreadPool pool(1);
  const auto index = inventory::ContentIndex::Scan(patterns, *tree, pool);
  ASSERT_FALSE(index.has_value());
  EXPECT_NE(index.error().message.find("secrets"), std::string::npos);
}

}  // namespace
}  // namespace iotmark::analyzers
