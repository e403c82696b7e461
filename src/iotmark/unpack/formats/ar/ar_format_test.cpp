#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "iotmark/unpack/archive/sample_tree.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeArFormat();

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

class ArFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!archive::testing::HaveSampleBinaries()) GTEST_SKIP() << "busybox or dropbear missing";
  }
  // Builds an archive with GNU ar; U keeps real modes, uids and times (Debian's ar defaults to
  // deterministic mode, which writes 0644 for everything).
  std::vector<std::uint8_t> Ar(const std::string& what) {
    const fs::path out = scratch_.path() / "a.a";
    fs::remove(out);
    const std::string command =
        "cd " + tree_.root.string() + " && ar rcU " + out.string() + " " + what;
    EXPECT_EQ(RunCommand(command), 0) << command;
    return ReadFileBytes(out);
  }

  ScratchDir scratch_;
  ScratchDir out_;
  archive::testing::SampleTree tree_ = MakeSampleTree(scratch_.path());
  std::unique_ptr<const Format> format_ = MakeArFormat();
};

TEST_F(ArFormatTest, ReadsAnArchiveBuiltByArEmbeddedBetweenForeignBytes) {
  // A name longer than 15 bytes goes to the GNU "//" name table.
  fs::copy_file(tree_.root / "usr/sbin/dropbear", tree_.root / "dropbear-with-a-long-name");
  const auto archive = Ar("bin/busybox usr/sbin/dropbear dropbear-with-a-long-name");
  ASSERT_NE(AsChars(archive).find("//"), std::string_view::npos);
  const auto blob = Embed(archive, 511, 2048);
  const auto x = ProbeAndExtract(*format_, blob, 511, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  // ar keeps file names only, and cannot hold symlinks.
  ExpectSampleTree(x, tree_, {.modes = true, .symlink = false, .basenames = true});
  const auto* long_name = x.Find("dropbear-with-a-long-name");
  ASSERT_NE(long_name, nullptr);
  EXPECT_EQ(long_name->sha256, tree_.files[1].sha256);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

TEST_F(ArFormatTest, ReadsBsdLongNames) {
  // BSD ar puts a long name at the start of the member's data ("#1/<length>").
  const fs::path script = scratch_.path() / "bsd.py";
  const fs::path out = scratch_.path() / "bsd.a";
  WriteFileBytes(script, AsBytes(R"(import sys
def member(name, data):
    body = name + data
    head = b"#1/%-13d%-12d%-6d%-6d%-8o%-10d`\n" % (len(name), 0, 0, 0, 0o644, len(body))
    return head + body + (b"\n" if len(body) % 2 else b"")
with open(sys.argv[1], "wb") as f:
    f.write(b"!<arch>\n")
    f.write(member(b"a-long-bsd-member-name.txt", b"hello from bsd\n"))
    f.write(member(b"odd.txt", b"x"))
)"));
  ASSERT_EQ(RunCommand("python3 " + script.string() + " " + out.string()), 0);
  const auto archive = ReadFileBytes(out);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  ASSERT_TRUE(x.status);
  const auto* file = x.Find("a-long-bsd-member-name.txt");
  ASSERT_NE(file, nullptr) << GapList(x);
  EXPECT_EQ(file->sha256, Sha256::Hex(AsBytes("hello from bsd\n")));
  ASSERT_NE(x.Find("odd.txt"), nullptr);
}

TEST_F(ArFormatTest, ATruncatedArchiveGivesAGapAndTheMembersBeforeTheCut) {
  const auto archive = Ar("usr/sbin/dropbear bin/busybox");
  const std::vector<std::uint8_t> cut(archive.begin(), archive.begin() + 1024 * 1024);
  const auto x = ProbeAndExtract(*format_, cut, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_NE(x.Find("dropbear"), nullptr);
  EXPECT_EQ(x.Find("dropbear")->sha256, tree_.files[1].sha256);
  ASSERT_NE(x.Find("busybox"), nullptr);
  EXPECT_LT(x.Find("busybox")->size, tree_.files[0].size);
  EXPECT_TRUE(HasGap(x, GapKind::kTruncated)) << GapList(x);
}

TEST_F(ArFormatTest, EndsAtTheLastValidMemberAndRejectsAnEmptyArchive) {
  auto archive = Ar("usr/sbin/dropbear");
  const std::size_t end = archive.size();
  archive.insert(archive.end(), {'n', 'o', 't', ' ', 'a', ' ', 'm', 'e', 'm', 'b', 'e', 'r'});
  archive.resize(end + 200, 'x');
  const auto chunk = format_->Probe(archive, 0);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->length, end);

  const std::string empty = "!<arch>\nthis is not a member header at all, only text ........\n";
  EXPECT_FALSE(format_->Probe(AsBytes(empty), 0));
}

TEST_F(ArFormatTest, ReadsTheSharedSample) {
  const fs::path sample = iotmark::testing::SharedSamplePath("ar/fact_test.a");
  if (sample.empty()) GTEST_SKIP() << "shared samples not present";
  const auto archive = ReadFileBytes(sample);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  const auto* data = x.Find("test.data");
  ASSERT_NE(data, nullptr) << GapList(x);
  EXPECT_EQ(data->size, 128u);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

}  // namespace
}  // namespace iotmark::unpack::formats
