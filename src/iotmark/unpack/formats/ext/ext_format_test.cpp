#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeExtFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

namespace fs = std::filesystem;
using model::EntryKind;
using model::GapKind;
using testing::Extraction;
using testing::ProbeAndExtract;
using testing::ReadFileBytes;
using testing::RunCommand;
using testing::ScratchDir;

constexpr std::size_t kPrefix = 8192 + 17;
constexpr std::size_t kSuffix = 5003;

const Format& Ext() {
  static const auto format = formats::MakeExtFormat();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// The tree every image is built from: real binaries, fast and slow symlinks, a hard link, a
// setuid file, an empty file, a sparse file, a nested directory, devices and a FIFO.
void BuildTree(const fs::path& root) {
  const std::string script = "set -e; mkdir -p " + Quoted(root) + "; cd " + Quoted(root) +
                             "; mkdir -p bin usr/sbin usr/bin etc var a/b/c/d dev run"
                             "; cp /bin/busybox bin/busybox"
                             "; cp /usr/sbin/dropbear usr/sbin/dropbear"
                             "; ln -s busybox bin/sh"
                             "; ln -s /a/long/target/that/is/longer/than/sixty/characters/for/"
                             "slow/links usr/bin/longlink"
                             "; ln bin/busybox bin/busybox-hard"
                             "; printf '#!/bin/sh\\necho su\\n' > usr/bin/su-tool"
                             "; chmod 4755 usr/bin/su-tool"
                             "; : > etc/empty"
                             "; printf 'root:x:0:0:root:/root:/bin/sh\\n' > etc/passwd"
                             "; truncate -s 3M var/sparse.img"
                             "; printf middle | dd of=var/sparse.img bs=1 seek=1500000 "
                             "conv=notrunc 2>/dev/null; echo end >> var/sparse.img"
                             "; echo deep > a/b/c/d/deep.txt"
                             "; mknod dev/console c 5 1; mknod dev/sda b 8 0; mkfifo run/fifo";
  ASSERT_EQ(RunCommand(script), 0);
}

std::vector<std::uint8_t> Embed(const std::vector<std::uint8_t>& image) {
  std::vector<std::uint8_t> blob(kPrefix, 0);
  std::mt19937 random(5);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random() % 0x50);  // never 0x53
  blob.insert(blob.end(), image.begin(), image.end());
  blob.insert(blob.end(), kSuffix, 0xa5);
  return blob;
}

bool HasGap(const Extraction& x, GapKind kind, const std::string& text) {
  return std::any_of(x.gaps.begin(), x.gaps.end(), [&](const model::Gap& gap) {
    return gap.kind == kind && gap.reason.find(text) != std::string::npos;
  });
}

std::string GapList(const Extraction& x) {
  std::string out;
  for (const auto& gap : x.gaps) {
    out += std::string(model::ToString(gap.kind)) + ": " + gap.reason + "\n";
  }
  return out;
}

// Every entry of `root` came out with its kind, size, content, mode and link target, and
// nothing else came out.
void ExpectTreeMatches(const Extraction& x, const fs::path& root) {
  std::size_t expected = 0;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    ++expected;
    const std::string rel = it->path().lexically_relative(root).string();
    SCOPED_TRACE(rel);
    const auto* entry = x.Find(rel);
    ASSERT_NE(entry, nullptr);
    struct stat st {};
    ASSERT_EQ(::lstat(it->path().c_str(), &st), 0);
    const std::uint32_t mode = st.st_mode & 07777;
    if (S_ISLNK(st.st_mode)) {
      EXPECT_EQ(entry->kind, EntryKind::kSymlink);
      EXPECT_EQ(entry->link_target, fs::read_symlink(it->path()).string());
    } else if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(entry->kind, EntryKind::kDirectory);
      EXPECT_EQ(entry->mode, mode);
    } else if (S_ISREG(st.st_mode)) {
      const auto content = ReadFileBytes(it->path());
      const std::string sha = Sha256::Hex(content);
      const model::InventoryEntry* file = entry;
      if (entry->kind == EntryKind::kHardlink) {
        EXPECT_GT(st.st_nlink, 1u);
        file = x.Find(entry->link_target);
        ASSERT_NE(file, nullptr);
      }
      ASSERT_EQ(file->kind, EntryKind::kFile);
      EXPECT_EQ(file->size, content.size());
      EXPECT_EQ(file->sha256, sha);
      EXPECT_EQ(file->mode, mode);
      EXPECT_EQ(Sha256::Hex(x.Read(rel)), sha);
    } else {
      const EntryKind kind = S_ISCHR(st.st_mode)    ? EntryKind::kCharDevice
                             : S_ISBLK(st.st_mode)  ? EntryKind::kBlockDevice
                             : S_ISFIFO(st.st_mode) ? EntryKind::kFifo
                                                    : EntryKind::kSocket;
      EXPECT_EQ(entry->kind, kind);
      EXPECT_EQ(entry->mode, mode);
      EXPECT_FALSE(entry->materialized);
    }
  }
  EXPECT_EQ(x.entries.size(), expected);
}

// Builds the tree and a filesystem of it with mke2fs -d; returns the image bytes.
std::vector<std::uint8_t> MakeImage(const ScratchDir& scratch, const std::string& options,
                                    const std::string& size = "16M") {
  const fs::path root = scratch.path() / "root";
  if (!fs::exists(root)) BuildTree(root);
  const fs::path image = scratch.path() / "image.ext";
  fs::remove(image);
  EXPECT_EQ(RunCommand("mke2fs -q -F " + options + " -L fixture -d " + Quoted(root) + " " +
                       Quoted(image) + " " + size + " >/dev/null 2>&1"),
            0);
  return ReadFileBytes(image);
}

struct Variant {
  const char* options;
  const char* filesystem;
  const char* feature;  // one feature the image must list
};

class ExtVariantTest : public ::testing::TestWithParam<Variant> {};

TEST_P(ExtVariantTest, ExtractsEveryEntryOfAFilesystemBuiltByMke2fs) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, GetParam().options);
  ASSERT_GT(image.size(), 4096u);
  const auto blob = Embed(image);
  const auto x = ProbeAndExtract(Ext(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, kPrefix);
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("filesystem"), GetParam().filesystem);
  EXPECT_EQ(x.chunk->meta.at("volume_name"), "fixture");
  EXPECT_EQ(x.chunk->meta.at("revision"), "1.0");
  EXPECT_EQ(x.chunk->meta.at("uuid").size(), 36u);
  EXPECT_NE(x.chunk->meta.at("features").find(GetParam().feature), std::string::npos)
      << x.chunk->meta.at("features");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  // The empty lost+found mke2fs adds is left out; everything else matches the source tree.
  EXPECT_EQ(x.Find("lost+found"), nullptr);
  ExpectTreeMatches(x, scratch.path() / "root");
}

INSTANTIATE_TEST_SUITE_P(EveryFlavour, ExtVariantTest,
                         ::testing::Values(Variant{"-t ext2", "ext2", "filetype"},
                                           Variant{"-t ext3", "ext3", "has_journal"},
                                           Variant{"-t ext4 -b 4096", "ext4", "extent"},
                                           Variant{"-t ext4 -b 1024 -O inline_data,^has_journal",
                                                   "ext4", "inline_data"}));

TEST(ExtFormat, MatchesDebugfsOnTheSharedSamples) {
  for (const char* name : {"fact_ext2.img.xz", "fact_ext3.img.xz", "fact_ext4.img.xz"}) {
    SCOPED_TRACE(name);
    const fs::path sample = testing::SharedSamplePath(std::string("ext/") + name);
    if (sample.empty()) GTEST_SKIP() << "shared samples are not available";
    ScratchDir scratch;
    const fs::path image = scratch.path() / "image";
    const fs::path reference = scratch.path() / "reference";
    ASSERT_EQ(RunCommand("xz -dc " + Quoted(sample) + " > " + Quoted(image)), 0);
    ASSERT_EQ(RunCommand("mkdir " + Quoted(reference) + " && debugfs -R 'rdump / " +
                         reference.string() + "' " + Quoted(image) + " >/dev/null 2>&1 && rmdir " +
                         Quoted(reference / "lost+found")),
              0);
    const auto bytes = ReadFileBytes(image);
    const auto x = ProbeAndExtract(Ext(), bytes, 0, scratch);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, bytes.size());
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
    ExpectTreeMatches(x, reference);
    ASSERT_NE(x.Find("get_files_test/testfile1"), nullptr);
    EXPECT_EQ(x.Find("get_files_test/testfile1")->size, 62u);
  }
}

TEST(ExtFormat, ReadsWhatItCanOfATruncatedFilesystem) {
  ScratchDir scratch;
  auto image = MakeImage(scratch, "-t ext4 -b 4096");
  image.resize(image.size() * 3 / 4);
  const auto x = ProbeAndExtract(Ext(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  // No crash; what lies before the cut is read.
  if (x.status) {
    EXPECT_NE(x.Find("etc/passwd"), nullptr);
  }
}

TEST(ExtFormat, SurvivesCutsAtManyPoints) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-t ext3", "8M");
  for (const std::size_t cut : {std::size_t{2048}, std::size_t{3000}, std::size_t{8192},
                                std::size_t{70000}, std::size_t{300000}, image.size() / 2}) {
    SCOPED_TRACE(cut);
    const std::vector<std::uint8_t> part(image.begin(),
                                         image.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir out;
    const auto x = ProbeAndExtract(Ext(), part, 0, out);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, cut);
  }
}

TEST(ExtFormat, RejectsRandomBytesWithAPlantedMagic) {
  std::vector<std::uint8_t> blob(1 << 17);
  std::mt19937 random(13);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  std::vector<std::uint64_t> starts;
  for (std::uint64_t start = 0; start + 2048 < blob.size(); start += 3001) {
    blob[start + 1080] = 0x53;
    blob[start + 1081] = 0xef;
    starts.push_back(start);
  }
  for (const std::uint64_t start : starts) {
    EXPECT_FALSE(Ext().Probe(blob, start).has_value()) << start;
  }
}

TEST(ExtFormat, RejectsASuperblockWithInconsistentGroupCounts) {
  ScratchDir scratch;
  auto image = MakeImage(scratch, "-t ext2");
  ASSERT_TRUE(Ext().Probe(image, 0).has_value());
  image[1024 + 0] ^= 0x01;  // s_inodes_count no longer inodes_per_group x groups
  EXPECT_FALSE(Ext().Probe(image, 0).has_value());
}

TEST(ExtFormat, DoesNotFollowAHardLinkedDirectory) {
  ScratchDir scratch;
  MakeImage(scratch, "-t ext4 -b 4096");
  const fs::path image = scratch.path() / "image.ext";
  ASSERT_EQ(RunCommand("debugfs -w -R 'link /a /a/b/c/loop' " + Quoted(image) + " >/dev/null 2>&1"),
            0);
  const auto x = ProbeAndExtract(Ext(), ReadFileBytes(image), 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'a/b/c/loop' is a directory listed before"))
      << GapList(x);
  ASSERT_NE(x.Find("a/b/c/d/deep.txt"), nullptr);
  EXPECT_EQ(x.Find("a/b/c/loop/b"), nullptr);
}

TEST(ExtFormat, ReportsADamagedInodeAndExtractsTheOtherFiles) {
  ScratchDir scratch;
  MakeImage(scratch, "-t ext4 -b 4096");
  const fs::path image = scratch.path() / "image.ext";
  const fs::path where = scratch.path() / "imap.txt";
  ASSERT_EQ(RunCommand("debugfs -R 'imap /etc/passwd' " + Quoted(image) + " > " + Quoted(where) +
                       " 2>/dev/null"),
            0);
  // "located at block 1234, offset 0x0d00"
  const auto text = ReadFileBytes(where);
  const std::string imap(text.begin(), text.end());
  unsigned long block = 0;
  unsigned offset = 0;
  const auto at = imap.find("located at block");
  ASSERT_NE(at, std::string::npos) << imap;
  ASSERT_EQ(std::sscanf(imap.c_str() + at, "located at block %lu, offset %x", &block, &offset), 2);
  auto bytes = ReadFileBytes(image);
  const std::size_t inode = block * 4096 + offset;
  for (std::size_t i = 0; i < 128; ++i) bytes[inode + i] = 0xff;
  const auto x = ProbeAndExtract(Ext(), bytes, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'etc/passwd'")) << GapList(x);
  EXPECT_EQ(x.Find("etc/passwd"), nullptr);
  ASSERT_NE(x.Find("bin/busybox"), nullptr);
  EXPECT_EQ(x.Find("bin/busybox")->sha256, Sha256::Hex(ReadFileBytes("/bin/busybox")));
}

TEST(ExtFormat, KeepsLostAndFoundWhenItHoldsSomething) {
  ScratchDir scratch;
  MakeImage(scratch, "-t ext2");
  const fs::path image = scratch.path() / "image.ext";
  ASSERT_EQ(RunCommand("debugfs -w -R 'write /etc/hostname lost+found/#1234' " + Quoted(image) +
                       " >/dev/null 2>&1"),
            0);
  const auto x = ProbeAndExtract(Ext(), ReadFileBytes(image), 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  ASSERT_NE(x.Find("lost+found"), nullptr);
  ASSERT_NE(x.Find("lost+found/#1234"), nullptr);
  EXPECT_EQ(x.Find("lost+found/#1234")->sha256, Sha256::Hex(ReadFileBytes("/etc/hostname")));
}

}  // namespace
}  // namespace iotmark::unpack
