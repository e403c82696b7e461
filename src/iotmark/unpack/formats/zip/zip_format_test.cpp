#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/archive/sample_tree.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeZipFormat();

namespace {

namespace fs = std::filesystem;
using archive::testing::Embed;
using archive::testing::ExpectSampleTree;
using archive::testing::GapList;
using archive::testing::HasGap;
using archive::testing::MakeSampleTree;
using iotmark::testing::ProbeAndExtract;
using iotmark::testing::ReadFileBytes;
using iotmark::testing::RunCommand;
using iotmark::testing::ScratchDir;
using iotmark::testing::WriteFileBytes;
using model::EntryKind;
using model::GapKind;

class ZipFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!archive::testing::HaveSampleBinaries()) GTEST_SKIP() << "busybox or dropbear missing";
  }
  // Zips `what` (paths inside the sample tree) with Info-ZIP; symlinks are stored as links.
  std::vector<std::uint8_t> Zip(const std::string& options, const std::string& what,
                                const std::string& name = "a.zip") {
    const fs::path out = scratch_.path() / name;
    fs::remove(out);
    const std::string command = "cd " + tree_.root.string() + " && zip -q -r -y " + options + " " +
                                out.string() + " " + what;
    EXPECT_EQ(RunCommand(command), 0) << command;
    return ReadFileBytes(out);
  }
  // Runs a Python script (to craft archives the real tools refuse to write) with `args`.
  void Python(const std::string& code, const std::string& args) {
    const fs::path script = scratch_.path() / "craft.py";
    WriteFileBytes(script, AsBytes(code));
    ASSERT_EQ(RunCommand("python3 " + script.string() + " " + args), 0);
  }

  ScratchDir scratch_;
  ScratchDir out_;
  archive::testing::SampleTree tree_ = MakeSampleTree(scratch_.path());
  std::unique_ptr<const Format> format_ = MakeZipFormat();
};

TEST_F(ZipFormatTest, ReadsAnArchiveBuiltByZipEmbeddedBetweenForeignBytes) {
  const auto archive = Zip("", ".");
  const auto blob = Embed(archive, 4097, 1500);
  const auto x = ProbeAndExtract(*format_, blob, 4097, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  ExpectSampleTree(x, tree_);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

TEST_F(ZipFormatTest, IncludesTheCommentAndReadsZip64EndRecords) {
  const auto zip64 = Zip("-fz", "usr/sbin/dropbear", "zip64.zip");
  auto x = ProbeAndExtract(*format_, Embed(zip64, 10, 700), 10, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, zip64.size());
  ASSERT_NE(x.Find("usr/sbin/dropbear"), nullptr);
  EXPECT_EQ(x.Find("usr/sbin/dropbear")->sha256, tree_.files[1].sha256);

  const fs::path commented = scratch_.path() / "comment.zip";
  Python(R"(import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("etc/banner", "hello\n")
    z.comment = b"built for a test; PK\x05\x06 inside the comment is only text"
)",
         commented.string());
  const auto archive = ReadFileBytes(commented);
  ScratchDir out;
  x = ProbeAndExtract(*format_, Embed(archive, 64, 64), 64, out);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  ASSERT_NE(x.Find("etc/banner"), nullptr);
}

TEST_F(ZipFormatTest, EndsAtTheOuterEndRecordWhenAZipHoldsAZip) {
  const auto inner = Zip("", "usr/sbin/dropbear", "inner.zip");
  ASSERT_EQ(
      RunCommand("cp " + (scratch_.path() / "inner.zip").string() + " " + tree_.root.string()), 0);
  const auto outer = Zip("-0", "inner.zip bin/sh", "outer.zip");
  const auto x = ProbeAndExtract(*format_, outer, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, outer.size());
  ASSERT_NE(x.Find("inner.zip"), nullptr);
  EXPECT_EQ(x.Find("inner.zip")->sha256, Sha256::Hex(inner));
}

TEST_F(ZipFormatTest, RefusesZipSlipEntriesAndWritesNothingOutside) {
  const fs::path evil = scratch_.path() / "slip.zip";
  Python(R"(import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr(zipfile.ZipInfo("../../evil-zipslip"), "pwned")
    z.writestr(zipfile.ZipInfo("a/../../../evil-zipslip"), "pwned")
    z.writestr(zipfile.ZipInfo("/abs/evil-zipslip"), "pwned")
    z.writestr(zipfile.ZipInfo("good.txt"), "fine")
)",
         evil.string());
  const auto archive = ReadFileBytes(evil);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_TRUE(x.status);
  for (fs::path dir = x.root; dir != dir.root_path(); dir = dir.parent_path()) {
    EXPECT_FALSE(fs::exists(dir.parent_path() / "evil-zipslip")) << dir;
  }
  EXPECT_FALSE(fs::exists("/abs/evil-zipslip"));
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "'../../evil-zipslip'")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "'a/../../../evil-zipslip'")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "absolute")) << GapList(x);
  ASSERT_NE(x.Find("abs/evil-zipslip"), nullptr);  // placed inside the tree
  ASSERT_NE(x.Find("good.txt"), nullptr);
  EXPECT_EQ(x.Find("good.txt")->sha256, Sha256::Hex(AsBytes("fine")));
}

TEST_F(ZipFormatTest, ReportsEncryptedEntriesAsEncryptedGaps) {
  const auto archive = Zip("-P secret", "usr/sbin/dropbear");
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_TRUE(x.status);
  EXPECT_EQ(x.Find("usr/sbin/dropbear"), nullptr);
  EXPECT_TRUE(HasGap(x, GapKind::kEncrypted, "usr/sbin/dropbear")) << GapList(x);
}

TEST_F(ZipFormatTest, ATruncatedArchiveIsReadFromItsLocalHeaders) {
  const auto archive = Zip("", "usr/sbin/dropbear bin/busybox");
  // Cut a little into busybox, the second entry: no central directory, no end record.
  const std::size_t second = AsChars(archive).find("PK\x03\x04", 4);
  ASSERT_NE(second, std::string_view::npos);
  const std::vector<std::uint8_t> cut(archive.begin(), archive.begin() + second + 5000);
  const auto x = ProbeAndExtract(*format_, cut, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_NE(x.Find("usr/sbin/dropbear"), nullptr);
  EXPECT_EQ(x.Find("usr/sbin/dropbear")->sha256, tree_.files[1].sha256);
  EXPECT_TRUE(HasGap(x, GapKind::kTruncated)) << GapList(x);
}

TEST_F(ZipFormatTest, ATruncatedArchiveOfDataDescriptorEntriesEndsAtTheLastCompleteOne) {
  // Streamed zips (zip reading stdin) give sizes only in data descriptors after the data.
  const fs::path out = scratch_.path() / "stream.zip";
  ASSERT_EQ(RunCommand("cat " + (tree_.root / "usr/sbin/dropbear").string() + " | zip -q " +
                       out.string() + " - > /dev/null"),
            0);
  const auto archive = ReadFileBytes(out);
  const std::size_t central = AsChars(archive).find("PK\x01\x02");
  ASSERT_NE(central, std::string_view::npos);
  std::vector<std::uint8_t> cut(archive.begin(), archive.begin() + central);
  const auto blob = Embed(cut, 0, 512);
  const auto x = ProbeAndExtract(*format_, blob, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, central);
  ASSERT_NE(x.Find("-"), nullptr);
  EXPECT_EQ(x.Find("-")->sha256, tree_.files[1].sha256);
}

TEST_F(ZipFormatTest, RejectsALocalHeaderMagicFollowedByGarbage) {
  auto noise = Embed({}, 8192, 0);
  noise[100] = 'P';
  noise[101] = 'K';
  noise[102] = 3;
  noise[103] = 4;
  EXPECT_FALSE(format_->Probe(noise, 100));
  // A valid local header with no end record and an impossible method.
  auto archive = Zip("", "usr/sbin/dropbear");
  archive[8] = 0x77;
  EXPECT_FALSE(format_->Probe(archive, 0));
}

TEST_F(ZipFormatTest, ReadsTheSharedSamples) {
  for (const std::string name : {"zip/fact_test.zip", "zip/binwalk_zip.bin"}) {
    SCOPED_TRACE(name);
    const fs::path sample = iotmark::testing::SharedSamplePath(name);
    if (sample.empty()) GTEST_SKIP() << "shared samples not present";
    const auto archive = ReadFileBytes(sample);
    ScratchDir out;
    const auto x = ProbeAndExtract(*format_, archive, 0, out);
    ASSERT_TRUE(x.chunk);
    EXPECT_EQ(x.chunk->length, archive.size());
    EXPECT_TRUE(x.chunk->issues.empty());
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    std::size_t files = 0;
    for (const auto& entry : x.entries) files += entry.kind == EntryKind::kFile ? 1 : 0;
    EXPECT_GT(files, 0u);
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  }
}

TEST_F(ZipFormatTest, TheTruncatedSharedSampleGivesAGapNotACrash) {
  const fs::path sample = iotmark::testing::SharedSamplePath("zip/binwalk_zip_truncated.bin");
  if (sample.empty()) GTEST_SKIP() << "shared samples not present";
  const auto archive = ReadFileBytes(sample);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  ASSERT_FALSE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  std::size_t files = 0;
  for (const auto& entry : x.entries) files += entry.kind == EntryKind::kFile ? 1 : 0;
  EXPECT_GT(files, 0u) << GapList(x);
}

}  // namespace
}  // namespace iotmark::unpack::formats
