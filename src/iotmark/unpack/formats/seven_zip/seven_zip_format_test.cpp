#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "iotmark/unpack/archive/sample_tree.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeSevenZipFormat();

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
using model::EntryKind;
using model::GapKind;

class SevenZipFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!archive::testing::HaveSampleBinaries()) GTEST_SKIP() << "busybox or dropbear missing";
    if (RunCommand("command -v 7zz > /dev/null") != 0) GTEST_SKIP() << "7zz missing";
  }
  // Archives `what` from the sample tree with 7-Zip; symlinks are stored as links (-snl).
  std::vector<std::uint8_t> SevenZip(const std::string& options, const std::string& what) {
    const fs::path out = scratch_.path() / "a.7z";
    fs::remove(out);
    const std::string command = "cd " + tree_.root.string() + " && 7zz a -snl -bso0 -bsp0 " +
                                options + " " + out.string() + " " + what;
    EXPECT_EQ(RunCommand(command), 0) << command;
    return ReadFileBytes(out);
  }

  ScratchDir scratch_;
  ScratchDir out_;
  archive::testing::SampleTree tree_ = MakeSampleTree(scratch_.path());
  std::unique_ptr<const Format> format_ = MakeSevenZipFormat();
};

TEST_F(SevenZipFormatTest, ReadsAnArchiveBuilt7zzEmbeddedBetweenForeignBytes) {
  const auto archive = SevenZip("", ".");
  const auto blob = Embed(archive, 12345, 999);
  const auto x = ProbeAndExtract(*format_, blob, 12345, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  ExpectSampleTree(x, tree_);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

TEST_F(SevenZipFormatTest, ReadsCopyAndBcjFilteredArchives) {
  for (const std::string options : {"-m0=Copy", "-mf=BCJ -m0=LZMA", "-m0=BZip2", "-ms=off"}) {
    SCOPED_TRACE(options);
    const auto archive = SevenZip(options, "bin/busybox usr/sbin/dropbear");
    ScratchDir out;
    const auto x = ProbeAndExtract(*format_, archive, 0, out);
    ASSERT_TRUE(x.chunk);
    EXPECT_EQ(x.chunk->length, archive.size());
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    ExpectSampleTree(x, tree_, {.modes = true, .symlink = false, .basenames = false});
  }
}

TEST_F(SevenZipFormatTest, ReportsEncryptedContentAndEncryptedHeaders) {
  auto archive = SevenZip("-psecret", "usr/sbin/dropbear");
  auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.Find("usr/sbin/dropbear"), nullptr);
  EXPECT_TRUE(HasGap(x, GapKind::kEncrypted, "usr/sbin/dropbear")) << GapList(x);

  archive = SevenZip("-psecret -mhe=on", "usr/sbin/dropbear");
  ScratchDir out;
  x = ProbeAndExtract(*format_, archive, 0, out);
  ASSERT_TRUE(x.chunk);  // the signature header is not encrypted
  EXPECT_TRUE(x.entries.empty());
  // Nothing can be read: the whole chunk fails (the unpacker records the error as a gap).
  ASSERT_FALSE(x.status);
  EXPECT_EQ(x.status.error().code, ErrorCode::kUnsupportedFormat) << x.status.error().ToString();
}

TEST_F(SevenZipFormatTest, ATruncatedArchiveIsClippedAndFailsWithoutACrash) {
  const auto archive = SevenZip("", ".");
  const std::vector<std::uint8_t> cut(archive.begin(), archive.begin() + archive.size() / 2);
  const auto x = ProbeAndExtract(*format_, cut, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  // 7z keeps its directory at the end: with it gone nothing can be named or extracted.
  EXPECT_TRUE(!x.status || !x.gaps.empty());
}

TEST_F(SevenZipFormatTest, RejectsABadSignatureHeaderAndFlagsABadHeaderCrc) {
  auto archive = SevenZip("", "usr/sbin/dropbear");
  auto broken = archive;
  broken[14] ^= 0x40;  // the next header offset: the start header CRC no longer matches
  EXPECT_FALSE(format_->Probe(broken, 0));
  broken = archive;
  broken[6] = 1;  // major version 1 does not exist
  EXPECT_FALSE(format_->Probe(broken, 0));
  broken = archive;
  broken[archive.size() - 3] ^= 0xff;  // inside the next header
  const auto chunk = format_->Probe(broken, 0);
  ASSERT_TRUE(chunk);
  ASSERT_EQ(chunk->issues.size(), 1u);
  EXPECT_EQ(chunk->issues[0].kind, GapKind::kCorrupt);
}

TEST_F(SevenZipFormatTest, ReadsTheSharedSamples) {
  for (const std::string name : {"7z/fact_test.7z", "7z/binwalk_7z.bin"}) {
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

}  // namespace
}  // namespace iotmark::unpack::formats
