#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "iotmark/unpack/archive/sample_tree.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeTarFormat();

namespace {

namespace fs = std::filesystem;
using archive::testing::Embed;
using archive::testing::Expect;
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

class TarFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!archive::testing::HaveSampleBinaries()) GTEST_SKIP() << "busybox or dropbear missing";
  }
  // Builds an archive with GNU tar (-b1: no record padding after the end-of-archive blocks).
  std::vector<std::uint8_t> Tar(const std::string& options, const std::string& what) {
    const fs::path out = scratch_.path() / "a.tar";
    fs::remove(out);
    const std::string command =
        "tar " + options + " -b1 -cf " + out.string() + " -C " + tree_.root.string() + " " + what;
    EXPECT_EQ(RunCommand(command), 0) << command;
    return ReadFileBytes(out);
  }

  ScratchDir scratch_;
  ScratchDir out_;
  archive::testing::SampleTree tree_ = MakeSampleTree(scratch_.path());
  std::unique_ptr<const Format> format_ = MakeTarFormat();
};

TEST_F(TarFormatTest, ReadsGnuPaxAndUstarArchivesEmbeddedBetweenForeignBytes) {
  for (const std::string variant : {"gnu", "posix", "ustar"}) {
    SCOPED_TRACE(variant);
    const auto archive = Tar("--format=" + variant, ".");
    const auto blob = Embed(archive, 1000, 3000);
    ScratchDir out;
    const auto x = ProbeAndExtract(*format_, blob, 1000, out);
    ASSERT_TRUE(x.chunk);
    EXPECT_EQ(x.chunk->offset, 1000u);
    EXPECT_EQ(x.chunk->length, archive.size());  // exactly through the two zero blocks
    EXPECT_TRUE(x.chunk->issues.empty());
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    ExpectSampleTree(x, tree_);
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  }
}

TEST_F(TarFormatTest, EndsAfterTheEndOfArchiveBlocksNotAtTheRecordPadding) {
  const fs::path out = scratch_.path() / "padded.tar";
  ASSERT_EQ(RunCommand("tar -cf " + out.string() + " -C " + tree_.root.string() + " ."), 0);
  const auto archive = ReadFileBytes(out);
  ASSERT_EQ(archive.size() % 10240, 0u);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  // The last header and data, then 1024 zero bytes; the rest of the 10 KiB record is padding.
  EXPECT_LT(x.chunk->length, archive.size());
  EXPECT_EQ(x.chunk->length % 512, 0u);
  EXPECT_TRUE(IsFilledWith(ByteView(archive).subspan(x.chunk->length - 1024), 0));
  EXPECT_FALSE(IsFilledWith(ByteView(archive).subspan(x.chunk->length - 1536, 512), 0));
}

TEST_F(TarFormatTest, ReadsSizesWrittenInBase256) {
  // GNU tar writes sizes beyond 8 GiB in base-256; a small file says it the same way when the
  // header is patched, checksum included.
  auto archive = Tar("--format=gnu", "usr/sbin/dropbear");
  const std::uint64_t size = tree_.files[1].size;
  std::uint8_t* field = archive.data() + 124;
  std::fill(field, field + 12, 0);
  field[0] = 0x80;
  for (int i = 0; i < 8; ++i) field[11 - i] = static_cast<std::uint8_t>(size >> (8 * i));
  std::uint32_t sum = 0;
  for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : archive[i];
  snprintf(reinterpret_cast<char*>(archive.data() + 148), 8, "%06o", sum);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  const auto* entry = x.Find("usr/sbin/dropbear");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->sha256, tree_.files[1].sha256);
}

TEST_F(TarFormatTest, ATruncatedArchiveGivesAGapAndTheFilesBeforeTheCut) {
  const auto archive = Tar("--format=gnu", "usr/sbin/dropbear bin/busybox bin/sh");
  // Cut in the middle of busybox, the second file.
  const std::vector<std::uint8_t> cut(archive.begin(), archive.begin() + 1024 * 1024);
  const auto x = ProbeAndExtract(*format_, cut, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  const auto* dropbear = x.Find("usr/sbin/dropbear");
  ASSERT_NE(dropbear, nullptr);
  EXPECT_EQ(dropbear->sha256, tree_.files[1].sha256);
  const auto* busybox = x.Find("bin/busybox");
  ASSERT_NE(busybox, nullptr);  // partial output is kept
  EXPECT_LT(busybox->size, tree_.files[0].size);
  EXPECT_TRUE(HasGap(x, GapKind::kTruncated)) << GapList(x);
  EXPECT_EQ(x.Find("bin/sh"), nullptr);
}

TEST_F(TarFormatTest, RejectsHeadersWithABadChecksumAndRandomBytesAfterTheMagic) {
  auto archive = Tar("--format=gnu", "usr/sbin/dropbear");
  archive[10] ^= 0x01;  // in the name: the checksum no longer matches
  EXPECT_FALSE(ProbeAndExtract(*format_, archive, 0, out_).chunk);

  std::vector<std::uint8_t> noise = Embed({}, 4096, 0);
  const std::string magic(
      "ustar\0"
      "00",
      8);
  std::copy(magic.begin(), magic.end(), noise.begin() + 257);
  EXPECT_FALSE(format_->Probe(noise, 0));
}

TEST_F(TarFormatTest, StopsAtAnInvalidHeaderAfterValidOnes) {
  auto archive = Tar("--format=gnu", "usr/sbin/dropbear bin/busybox");
  // The second header starts after dropbear's header and padded data.
  const std::uint64_t second = 512 + (tree_.files[1].size + 511) / 512 * 512;
  archive[second + 148] = 'x';  // not an octal checksum
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, second);
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kCorrupt);
  ASSERT_NE(x.Find("usr/sbin/dropbear"), nullptr);
  EXPECT_EQ(x.Find("usr/sbin/dropbear")->sha256, tree_.files[1].sha256);
}

TEST_F(TarFormatTest, KeepsAbsoluteDotDotAndSymlinkEscapesInside) {
  const fs::path outside = scratch_.path() / "outside";
  fs::create_directories(outside);
  const fs::path script = scratch_.path() / "craft.py";
  const fs::path evil = scratch_.path() / "evil.tar";
  WriteFileBytes(script, AsBytes(R"(import io, sys, tarfile
outside = sys.argv[2]
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    def add(name, data=b"pwned", kind=tarfile.REGTYPE, target=""):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        info.mode = 0o644
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    add("/abs/evil")
    add("../evil")
    add("a/../../evil")
    add("link", kind=tarfile.SYMTYPE, target=outside)
    add("link/evil")
    add("up", kind=tarfile.SYMTYPE, target="../../outside")
    add("up/evil")
    add("good.txt", b"fine")
)"));
  ASSERT_EQ(RunCommand("python3 " + script.string() + " " + evil.string() + " " + outside.string()),
            0);
  const auto archive = ReadFileBytes(evil);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_TRUE(x.status);
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_FALSE(fs::exists(out_.path() / "evil"));
  EXPECT_FALSE(fs::exists(out_.path().parent_path() / "evil"));
  // The absolute path was placed inside; the others were refused, each with a gap.
  ASSERT_NE(x.Find("abs/evil"), nullptr);
  EXPECT_TRUE(fs::exists(x.root / "abs/evil"));
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "absolute")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "'../evil'")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "'a/../../evil'")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "'link/evil'")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsafeEntry, "'up/evil'")) << GapList(x);
  // The links are recorded as stated, and not followed.
  ASSERT_NE(x.Find("link"), nullptr);
  EXPECT_EQ(x.Find("link")->kind, EntryKind::kSymlink);
  EXPECT_EQ(x.Find("link")->link_target, outside.string());
  ASSERT_NE(x.Find("up"), nullptr);
  EXPECT_EQ(x.Find("up")->link_target, "../../outside");
  EXPECT_EQ(x.Find("link/evil"), nullptr);
  ASSERT_NE(x.Find("good.txt"), nullptr);
  EXPECT_EQ(x.Find("good.txt")->sha256, Sha256::Hex(AsBytes("fine")));
}

TEST_F(TarFormatTest, RecordsHardLinksAndDevicesWithoutCreatingDevices) {
  const fs::path dev = tree_.root / "dev";
  fs::create_directories(dev);
  ASSERT_EQ(RunCommand("ln " + (tree_.root / "bin/busybox").string() + " " +
                       (tree_.root / "bin/ash").string()),
            0);
  ASSERT_EQ(
      RunCommand("mknod " + (dev / "console").string() + " c 5 1 && mknod " +
                 (dev / "mtdblock0").string() + " b 31 0 && mkfifo " + (dev / "initctl").string()),
      0);
  const auto archive = Tar("--format=gnu", "bin/busybox bin/ash dev");
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
  const auto* link = x.Find("bin/ash");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->kind, EntryKind::kHardlink);
  EXPECT_EQ(link->link_target, "bin/busybox");
  EXPECT_EQ(fs::hard_link_count(x.root / "bin/busybox"), 2u);
  EXPECT_EQ(link->mode, 0755u);  // what the disk holds: setuid never gets there
  const struct {
    const char* path;
    EntryKind kind;
  } kSpecial[] = {{"dev/console", EntryKind::kCharDevice},
                  {"dev/mtdblock0", EntryKind::kBlockDevice},
                  {"dev/initctl", EntryKind::kFifo}};
  for (const auto& special : kSpecial) {
    SCOPED_TRACE(special.path);
    const auto* entry = x.Find(special.path);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->kind, special.kind);
    EXPECT_FALSE(entry->materialized);
    EXPECT_FALSE(fs::exists(fs::symlink_status(x.root / special.path)));
  }
}

TEST_F(TarFormatTest, KeepsTheSetuidBitInTheInventoryOnly) {
  const auto archive = Tar("--format=posix", "bin/busybox");
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  const auto* busybox = x.Find("bin/busybox");
  ASSERT_NE(busybox, nullptr);
  EXPECT_EQ(busybox->mode, 04755u);
  EXPECT_EQ(static_cast<unsigned>(fs::status(x.root / "bin/busybox").permissions()) & 07000, 0u);
}

TEST_F(TarFormatTest, ReadsTheSharedSample) {
  const fs::path sample = iotmark::testing::SharedSamplePath("tar/fact_test.tar");
  if (sample.empty()) GTEST_SKIP() << "shared samples not present";
  const auto archive = ReadFileBytes(sample);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_LE(x.chunk->length, archive.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  std::size_t files = 0;
  for (const auto& entry : x.entries) files += entry.kind == EntryKind::kFile ? 1 : 0;
  EXPECT_GT(files, 0u);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

}  // namespace
}  // namespace iotmark::unpack::formats
