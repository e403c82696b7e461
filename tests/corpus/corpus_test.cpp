// Runs every sample under ../shared/data/formats through the whole unpacker and prints a table of
// what was recognised and unpacked. Formats of this scope must be recognised; samples of
// formats not supported yet are listed, not failed. Skipped when ../shared is not beside the repo.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "iotmark/unpack/testing/format_harness.hpp"
#include "iotmark/unpack/unpacker.hpp"

namespace iotmark {
namespace {

namespace fs = std::filesystem;

void CollectFormats(const model::ExtractionNode& node, std::set<std::string>& out) {
  for (const auto& child : node.children) {
    if (child.kind == model::ExtractionNode::Kind::kChunk && child.format != "unknown" &&
        child.format != "padding") {
      out.insert(child.format);
    }
    CollectFormats(child, out);
  }
}

// Sample folder -> the format that must be recognised in it ('|' separates alternatives).
const std::map<std::string, std::string>& Expected() {
  // clang-format off
  static const std::map<std::string, std::string> expected = {
      {"7z", "7z"},
      {"ar", "ar"},
      {"bzip2", "bzip2"},
      {"cpio", "cpio"},
      {"gzip", "gzip"},
      {"iso9660", "iso9660"},
      {"lz4", "lz4"},
      {"lzma", "lzma"},
      {"tar", "tar"},
      {"xz", "xz"},
      {"zip", "zip"},
      {"zstd", "zstd"},
      {"uimage", "uimage"},
      {"trx", "trx"},
      {"ext", "ext"},
      {"linux_kernel", "linux_kernel"},
      {"uimage_fit", "fit"},
      {"squashfs", "squashfs|squashfs_legacy"},
      {"jffs2", "jffs2"},
      {"cramfs", "cramfs"},
      {"romfs", "romfs"},
      {"android_sparse", "android_sparse"},
      {"ubi", "ubi"},
      {"ubifs", "ubifs"},
      {"yaffs2", "yaffs2"},
      {"ihex", "ihex"},
      {"srec", "srec"},
      {"tplink", "tplink"},
      {"dlink", "dlink_mh01|dlink_encrypted|seama|shrs"},
      {"arcadyan", "arcadyan"},
      {"broadcom", "broadcom_sao|broadcom_tag"},
  };
  // clang-format on
  return expected;
}

TEST(Corpus, EverySharedSampleIsReadWithoutErrors) {
  const fs::path root = testing::SharedSamplePath("");
  if (root.empty()) GTEST_SKIP() << "../shared/data/formats is not present";
  std::vector<fs::path> samples;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) samples.push_back(entry.path());
  }
  std::sort(samples.begin(), samples.end());

  std::printf("%-48s %-10s %-8s %-6s %s\n", "sample", "expected", "result", "gaps",
              "formats found");
  int recognised = 0;
  int in_scope = 0;
  for (const auto& sample : samples) {
    const std::string folder = sample.parent_path().filename().string();
    const std::string file = sample.filename().string();
    testing::ScratchDir scratch;
    unpack::UnpackOptions options;
    options.threads = 2;
    auto unpacker = unpack::Unpacker::Create(options);
    ASSERT_TRUE(unpacker);
    auto report = unpacker->Run(sample, scratch.path() / "out");
    ASSERT_TRUE(report) << sample << ": " << report.error().ToString();
    std::set<std::string> formats;
    CollectFormats(report->tree, formats);
    std::string found;
    for (const auto& f : formats) found += (found.empty() ? "" : ",") + f;

    const auto expected = Expected().find(folder);
    const std::string must = expected != Expected().end() ? expected->second : "";
    bool ok = must.empty();
    for (std::size_t start = 0; !ok && start <= must.size();) {
      const auto end = std::min(must.find('|', start), must.size());
      ok = formats.count(must.substr(start, end - start)) > 0;
      start = end + 1;
    }
    if (!must.empty()) {
      ++in_scope;
      if (ok) ++recognised;
      EXPECT_TRUE(ok) << sample << ": expected " << must << ", found " << found;
    }
    std::printf("%-48s %-10s %-8s %-6zu %s\n", (folder + "/" + file).substr(0, 48).c_str(),
                must.empty() ? "-" : must.c_str(), must.empty() ? "listed" : (ok ? "ok" : "MISSED"),
                report->gaps.size(), found.c_str());
  }
  std::printf("\n%d of %d in-scope samples recognised; %zu samples in all\n", recognised, in_scope,
              samples.size());
}

}  // namespace
}  // namespace iotmark
