#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/unpack/archive/sample_tree.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeCpioFormat();

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

// Where an archive written by GNU cpio really ends: after the TRAILER!!! entry and its
// alignment, before the padding cpio adds to fill a 512-byte block.
std::uint64_t TrailerEnd(const std::vector<std::uint8_t>& archive, std::string_view variant) {
  const std::string_view text = AsChars(archive);
  const std::size_t name = text.rfind("TRAILER!!!");
  if (name == std::string_view::npos) return 0;
  const std::uint64_t end = name + 11;  // the name and its NUL
  if (variant == "newc" || variant == "crc") return (end + 3) & ~std::uint64_t{3};
  if (variant == "bin") return (end + 1) & ~std::uint64_t{1};
  return end;  // odc: no alignment
}

class CpioFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!archive::testing::HaveSampleBinaries()) GTEST_SKIP() << "busybox or dropbear missing";
  }
  // Archives the tree (or `listing`, one path a line) with GNU cpio in the given format.
  std::vector<std::uint8_t> Cpio(const std::string& variant, const std::string& listing = "") {
    const fs::path out = scratch_.path() / ("a." + variant);
    const std::string list = listing.empty() ? "find ." : "printf '" + listing + "'";
    const std::string command = "cd " + tree_.root.string() + " && " + list +
                                " | cpio --quiet -o -H " + variant + " > " + out.string();
    EXPECT_EQ(RunCommand(command), 0) << command;
    return ReadFileBytes(out);
  }

  ScratchDir scratch_;
  ScratchDir out_;
  archive::testing::SampleTree tree_ = MakeSampleTree(scratch_.path());
  std::unique_ptr<const Format> format_ = MakeCpioFormat();
};

TEST_F(CpioFormatTest, ReadsEveryVariantBuiltByCpioEmbeddedBetweenForeignBytes) {
  for (const std::string variant : {"newc", "crc", "odc", "bin"}) {
    SCOPED_TRACE(variant);
    const auto archive = Cpio(variant);
    const auto blob = Embed(archive, 333, 2000);
    ScratchDir out;
    const auto x = ProbeAndExtract(*format_, blob, 333, out);
    ASSERT_TRUE(x.chunk);
    EXPECT_EQ(x.chunk->length, TrailerEnd(archive, variant));
    EXPECT_TRUE(x.chunk->issues.empty());
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    ExpectSampleTree(x, tree_);
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  }
}

TEST_F(CpioFormatTest, ReadsOldBinaryArchivesInBigEndianOrder) {
  // GNU cpio writes the old binary format in the host's order only; this one is made by hand.
  const fs::path script = scratch_.path() / "be.py";
  const fs::path out = scratch_.path() / "be.cpio";
  WriteFileBytes(script, AsBytes(R"(import struct, sys
def entry(name, data, mode):
    n = name.encode() + b"\0"
    h = struct.pack(">13H", 0o70707, 1, 7, mode, 0, 0, 1, 0, 0, 0, len(n), len(data) >> 16,
                    len(data) & 0xffff)
    out = h + n + (b"\0" if len(n) % 2 else b"")
    return out + data + (b"\0" if len(data) % 2 else b"")
with open(sys.argv[1], "wb") as f:
    f.write(entry("etc/banner", b"hello, big-endian\n", 0o100644))
    f.write(entry("TRAILER!!!", b"", 0))
)"));
  ASSERT_EQ(RunCommand("python3 " + script.string() + " " + out.string()), 0);
  const auto archive = ReadFileBytes(out);
  ASSERT_EQ(archive[0], 0x71);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, archive.size());
  EXPECT_EQ(x.chunk->meta.at("variant"), "binary big-endian");
  const auto* banner = x.Find("etc/banner");
  ASSERT_NE(banner, nullptr);
  EXPECT_EQ(banner->sha256, Sha256::Hex(AsBytes("hello, big-endian\n")));
  EXPECT_EQ(banner->mode, 0644u);
}

TEST_F(CpioFormatTest, LinksHardLinksWhicheverLinkCarriesTheData) {
  ASSERT_EQ(RunCommand("ln " + (tree_.root / "bin/busybox").string() + " " +
                       (tree_.root / "bin/ash").string()),
            0);
  // newc and crc keep the data on the last link only; odc and bin repeat it on every link.
  for (const std::string variant : {"newc", "crc", "odc", "bin"}) {
    SCOPED_TRACE(variant);
    const auto archive = Cpio(variant, "bin/busybox\\nbin/ash\\nusr/sbin/dropbear\\n");
    ScratchDir out;
    const auto x = ProbeAndExtract(*format_, archive, 0, out);
    ASSERT_TRUE(x.chunk);
    ASSERT_TRUE(x.status);
    const auto* busybox = x.Find("bin/busybox");
    const auto* ash = x.Find("bin/ash");
    ASSERT_NE(busybox, nullptr);
    ASSERT_NE(ash, nullptr);
    const auto* file = busybox->kind == EntryKind::kFile ? busybox : ash;
    const auto* link = busybox->kind == EntryKind::kFile ? ash : busybox;
    EXPECT_EQ(file->kind, EntryKind::kFile);
    EXPECT_EQ(file->sha256, tree_.files[0].sha256);
    EXPECT_EQ(link->kind, EntryKind::kHardlink);
    EXPECT_EQ(link->link_target, file->path);
    EXPECT_EQ(fs::hard_link_count(x.root / "bin/busybox"), 2u);
    EXPECT_EQ(Sha256::Hex(x.Read("bin/ash")), tree_.files[0].sha256);
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  }
}

TEST_F(CpioFormatTest, RecordsDeviceNodesWithoutCreatingThem) {
  const fs::path dev = tree_.root / "dev";
  fs::create_directories(dev);
  ASSERT_EQ(
      RunCommand("mknod " + (dev / "console").string() + " c 5 1 && mknod " +
                 (dev / "mtdblock0").string() + " b 31 0 && mkfifo " + (dev / "initctl").string()),
      0);
  const auto archive = Cpio("newc", "dev\\ndev/console\\ndev/mtdblock0\\ndev/initctl\\n");
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  ASSERT_TRUE(x.status);
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

TEST_F(CpioFormatTest, ATruncatedArchiveGivesAGapAndTheFilesBeforeTheCut) {
  const auto archive = Cpio("newc", "usr/sbin/dropbear\\nbin/busybox\\nbin/sh\\n");
  const std::vector<std::uint8_t> cut(archive.begin(), archive.begin() + 1024 * 1024);
  const auto x = ProbeAndExtract(*format_, cut, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_NE(x.Find("usr/sbin/dropbear"), nullptr);
  EXPECT_EQ(x.Find("usr/sbin/dropbear")->sha256, tree_.files[1].sha256);
  ASSERT_NE(x.Find("bin/busybox"), nullptr);
  EXPECT_LT(x.Find("bin/busybox")->size, tree_.files[0].size);
  EXPECT_TRUE(HasGap(x, GapKind::kTruncated)) << GapList(x);
}

TEST_F(CpioFormatTest, RejectsMagicsFollowedByGarbage) {
  auto archive = Cpio("newc", "usr/sbin/dropbear\\n");
  archive[20] = 'z';  // not a hex digit
  EXPECT_FALSE(format_->Probe(archive, 0));
  // Four MiB of noise hold many two-byte binary magics; none may be taken for an archive.
  const auto noise = Embed({}, 4 << 20, 0);
  std::size_t candidates = 0;
  for (std::size_t i = 0; i + 1 < noise.size(); ++i) {
    if ((noise[i] == 0xc7 && noise[i + 1] == 0x71) || (noise[i] == 0x71 && noise[i + 1] == 0xc7)) {
      ++candidates;
      EXPECT_FALSE(format_->Probe(noise, i)) << "at " << i;
    }
  }
  EXPECT_GT(candidates, 100u);
}

TEST_F(CpioFormatTest, ReadsTheSharedSample) {
  const fs::path sample = iotmark::testing::SharedSamplePath("cpio/fact_test.cpio");
  if (sample.empty()) GTEST_SKIP() << "shared samples not present";
  const auto archive = ReadFileBytes(sample);
  const auto x = ProbeAndExtract(*format_, archive, 0, out_);
  ASSERT_TRUE(x.chunk);
  EXPECT_EQ(x.chunk->meta.at("variant"), "binary little-endian");
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  std::size_t files = 0;
  for (const auto& entry : x.entries) files += entry.kind == EntryKind::kFile ? 1 : 0;
  EXPECT_GT(files, 0u);
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
}

}  // namespace
}  // namespace iotmark::unpack::formats
