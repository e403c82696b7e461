#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeRomfsFormat();
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

constexpr std::size_t kPrefix = 4097;
constexpr std::size_t kSuffix = 1234;

const Format& Romfs() {
  static const auto format = formats::MakeRomfsFormat();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// Real binaries, a hard link, symlinks, an empty file, nested directories, devices, a FIFO.
void BuildTree(const fs::path& root) {
  const std::string script =
      "set -e; mkdir -p " + Quoted(root) + "; cd " + Quoted(root) +
      "; mkdir -p bin usr/sbin usr/bin etc a/b/c/d dev run empty_dir"
      "; cp /bin/busybox bin/busybox"
      "; cp /usr/sbin/dropbear usr/sbin/dropbear"
      "; ln bin/busybox bin/busybox-hard"
      "; ln -s busybox bin/sh"
      "; ln -s /a/long/target/that/is/longer/than/sixty/characters/for/"
      "slow/links usr/bin/longlink"
      "; printf '#!/bin/sh\\necho su\\n' > usr/bin/tool; chmod 755 usr/bin/tool"
      "; : > etc/empty"
      "; printf 'root:x:0:0:root:/root:/bin/sh\\n' > etc/passwd"
      "; echo deep > a/b/c/d/deep.txt"
      "; mknod dev/console c 5 1; mknod dev/sda b 8 0; mkfifo run/fifo";
  ASSERT_EQ(RunCommand(script), 0);
}

std::vector<std::uint8_t> MakeImage(const ScratchDir& scratch) {
  const fs::path root = scratch.path() / "root";
  if (!fs::exists(root)) BuildTree(root);
  const fs::path image = scratch.path() / "image.romfs";
  EXPECT_EQ(RunCommand("genromfs -V fixture -d " + Quoted(root) + " -f " + Quoted(image) +
                       " >/dev/null 2>&1"),
            0);
  return ReadFileBytes(image);
}

std::uint32_t FullSize(const std::vector<std::uint8_t>& image) {
  return LoadBe<std::uint32_t>(image, 8).value();
}

// The offset of the file header whose name is `name` (and whose checksum holds, so that file
// data that happens to look like the name is not taken for it).
std::size_t HeaderOf(const std::vector<std::uint8_t>& image, const std::string& name) {
  std::string padded = name;
  padded.resize((name.size() + 16) / 16 * 16, '\0');
  for (std::size_t at = 32; at + 16 + padded.size() <= image.size(); at += 16) {
    if (std::memcmp(&image[at + 16], padded.data(), padded.size()) != 0) continue;
    std::uint32_t sum = 0;
    for (std::size_t i = at; i < at + 16 + padded.size(); i += 4) {
      sum += LoadBe<std::uint32_t>(image, i).value();
    }
    if (sum == 0) return at;
  }
  ADD_FAILURE() << "no header named " << name;
  return 0;
}

void Put32Be(std::vector<std::uint8_t>& image, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) image[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
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

// Every entry of `root` came out with its kind, size, content and link target, and nothing else
// did. RomFS keeps no permissions, only an exec bit: modes are the kernel's (0644, 0755 for
// executables and directories, 0600 for devices).
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
    if (S_ISLNK(st.st_mode)) {
      EXPECT_EQ(entry->kind, EntryKind::kSymlink);
      EXPECT_EQ(entry->link_target, fs::read_symlink(it->path()).string());
      EXPECT_TRUE(fs::is_symlink(x.root / rel));
    } else if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(entry->kind, EntryKind::kDirectory);
      EXPECT_EQ(entry->mode, 0755u);
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
      EXPECT_EQ(file->mode, (st.st_mode & 0100) != 0 ? 0755u : 0644u);
      EXPECT_EQ(Sha256::Hex(x.Read(rel)), sha);
    } else {
      const bool device = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
      const EntryKind kind = S_ISCHR(st.st_mode)    ? EntryKind::kCharDevice
                             : S_ISBLK(st.st_mode)  ? EntryKind::kBlockDevice
                             : S_ISFIFO(st.st_mode) ? EntryKind::kFifo
                                                    : EntryKind::kSocket;
      EXPECT_EQ(entry->kind, kind);
      EXPECT_EQ(entry->mode & 0666, device ? 0600u : 0644u);
      EXPECT_FALSE(entry->materialized);
    }
  }
  EXPECT_EQ(x.entries.size(), expected);
}

TEST(RomfsFormat, ExtractsEveryEntryOfAnImageBuiltByGenromfs) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch);
  ASSERT_GT(image.size(), 4096u);
  std::vector<std::uint8_t> blob;
  blob.reserve(kPrefix + image.size() + kSuffix);
  blob.assign(kPrefix, 0x11);
  blob.insert(blob.end(), image.begin(), image.end());
  blob.insert(blob.end(), kSuffix, 0x77);
  const auto x = ProbeAndExtract(Romfs(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, kPrefix);
  EXPECT_EQ(x.chunk->length, FullSize(image));  // not genromfs's padding to 1 KiB
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("checksum"), "ok");
  EXPECT_EQ(x.chunk->meta.at("volume"), "fixture");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
  // genromfs stores one of the two names as a hard link to the other.
  const auto* hard = x.Find("bin/busybox-hard");
  const auto* soft = x.Find("bin/busybox");
  ASSERT_NE(hard, nullptr);
  ASSERT_NE(soft, nullptr);
  EXPECT_TRUE(hard->kind == EntryKind::kHardlink || soft->kind == EntryKind::kHardlink);
}

TEST(RomfsFormat, ExtractsTheSharedSamples) {
  const fs::path fact = testing::SharedSamplePath("romfs/fact_romfs.img");
  const fs::path binwalk = testing::SharedSamplePath("romfs/binwalk_romfs.bin");
  if (fact.empty() || binwalk.empty()) GTEST_SKIP() << "shared samples are not available";
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Romfs(), ReadFileBytes(fact), 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, 0x1b0u);
  EXPECT_EQ(x.chunk->meta.at("checksum"), "ok");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_EQ(x.entries.size(), 4u);
  EXPECT_EQ(x.Find("generic folder")->kind, EntryKind::kDirectory);
  EXPECT_EQ(x.Find("generic folder/test file 3_.txt")->sha256,
            Sha256::Hex(AsBytes("The third test file!")));
  EXPECT_EQ(x.Find("testfile1")->size, 62u);
  EXPECT_EQ(std::string(AsChars(x.Read("testfile1"))).substr(0, 10), "test file:");
  EXPECT_EQ(x.Find("testfile2")->sha256, Sha256::Hex(AsBytes("This is the second test file")));

  ScratchDir other;
  const auto y = ProbeAndExtract(Romfs(), ReadFileBytes(binwalk), 0, other);
  ASSERT_TRUE(y.chunk.has_value());
  EXPECT_EQ(y.chunk->length, 0xf0u);
  ASSERT_TRUE(y.status) << y.status.error().ToString();
  EXPECT_TRUE(y.gaps.empty()) << GapList(y);
  ASSERT_EQ(y.entries.size(), 1u);
  EXPECT_EQ(y.entries[0].path, "lsb-release");
  EXPECT_EQ(y.entries[0].size, 104u);
  EXPECT_EQ(std::string(AsChars(y.Read("lsb-release"))).substr(0, 18), "DISTRIB_ID=Ubuntu\n");
}

TEST(RomfsFormat, ReadsWhatItCanOfAnImageCutShort) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch);
  for (const std::size_t cut :
       {std::size_t{100}, std::size_t{600}, std::size_t{FullSize(image) / 3},
        std::size_t{FullSize(image) - 1}}) {
    SCOPED_TRACE(cut);
    const std::vector<std::uint8_t> part(image.begin(),
                                         image.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir out;
    const auto x = ProbeAndExtract(Romfs(), part, 0, out);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, cut);
    ASSERT_FALSE(x.chunk->issues.empty());
    EXPECT_EQ(x.chunk->issues.back().kind, GapKind::kTruncated);
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    if (cut < FullSize(image) - 16) {  // not only the padding after the last file is gone
      EXPECT_TRUE(HasGap(x, GapKind::kTruncated, "")) << GapList(x);
    }
  }
  EXPECT_FALSE(Romfs().Probe(std::vector<std::uint8_t>(image.begin(), image.begin() + 20), 0));
}

TEST(RomfsFormat, DetectsALoopInTheNextChain) {
  ScratchDir scratch;
  auto image = MakeImage(scratch);
  // deep.txt is the only entry of a/b/c/d besides . and ..: make it point back to the first.
  const std::size_t deep = HeaderOf(image, "deep.txt");
  const std::size_t dir = HeaderOf(image, "d");
  const std::uint32_t first = LoadBe<std::uint32_t>(image, dir + 4).value();
  Put32Be(image, deep, first | (LoadBe<std::uint32_t>(image, deep).value() & 0xf));
  const auto x = ProbeAndExtract(Romfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "a loop")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "fails its checksum")) << GapList(x);
  EXPECT_NE(x.Find("a/b/c/d/deep.txt"), nullptr);
  EXPECT_NE(x.Find("usr/sbin/dropbear"), nullptr);
}

TEST(RomfsFormat, DoesNotFollowADirectoryPointingToItsParent) {
  ScratchDir scratch;
  auto image = MakeImage(scratch);
  const std::size_t dir = HeaderOf(image, "d");
  Put32Be(image, dir + 4, 0x20);  // the root directory's first header
  const auto x = ProbeAndExtract(Romfs(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "a loop")) << GapList(x);
  EXPECT_NE(x.Find("a/b/c/d"), nullptr);
  EXPECT_EQ(x.Find("a/b/c/d/deep.txt"), nullptr);
  EXPECT_EQ(x.Find("a/b/c/d/bin"), nullptr);
}

TEST(RomfsFormat, ReportsCorruptedFieldsAndGoesOn) {
  ScratchDir scratch;
  auto image = MakeImage(scratch);
  // A file claiming more data than the image holds, and a hard link pointing nowhere.
  const std::size_t passwd = HeaderOf(image, "passwd");
  Put32Be(image, passwd + 8, 0x7fffffff);
  const std::size_t hard = HeaderOf(image, "busybox-hard");
  const bool hard_is_link = (image[hard + 3] & 7) == 0;
  if (hard_is_link) Put32Be(image, hard + 4, 0x7ffffff0);
  const auto x = ProbeAndExtract(Romfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'etc/passwd' claims 2147483647 bytes")) << GapList(x);
  if (hard_is_link) {
    EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "points outside the image")) << GapList(x);
  }
  EXPECT_EQ(x.Find("a/b/c/d/deep.txt")->sha256, Sha256::Hex(AsBytes("deep\n")));
}

TEST(RomfsFormat, AcceptsABadSuperblockChecksumWithAnIssue) {
  ScratchDir scratch;
  auto image = MakeImage(scratch);
  image[12] ^= 1;
  const auto x = ProbeAndExtract(Romfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->meta.at("checksum"), "mismatch");
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kCorrupt);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_NE(x.Find("bin/busybox"), nullptr);
}

TEST(RomfsFormat, RejectsRandomBytesWithAPlantedMagic) {
  std::vector<std::uint8_t> blob(1 << 16);
  std::mt19937 random(23);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  for (std::uint64_t offset = 0; offset + 600 < blob.size(); offset += 4093) {
    std::memcpy(&blob[offset], "-rom1fs-", 8);
    EXPECT_FALSE(Romfs().Probe(blob, offset).has_value()) << offset;
  }
}

TEST(RomfsFormat, SurvivesRandomHeadersWithoutCrashing) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch);
  std::mt19937 random(29);
  for (int round = 0; round < 60; ++round) {
    auto bad = image;
    // Random words in the first headers, leaving the superblock intact.
    for (int i = 0; i < 6; ++i) {
      const std::size_t at = 32 + (random() % 96) * 4;
      Put32Be(bad, at, static_cast<std::uint32_t>(random()));
    }
    ScratchDir out;
    Limits limits;
    limits.max_total_bytes = 64 << 20;
    const auto x = ProbeAndExtract(Romfs(), bad, 0, out, limits);
    if (x.chunk) {
      EXPECT_LE(x.chunk->length, bad.size());
    }
  }
}

TEST(RomfsFormatTest, IgnoresTheRomfsSignatureInsideBusybox) {
  // BusyBox carries "-rom1fs-" to recognise romfs volumes; that is not a filesystem.
  const auto busybox = ReadFileBytes("/bin/busybox");
  const std::string_view text(reinterpret_cast<const char*>(busybox.data()), busybox.size());
  std::size_t hits = 0;
  for (auto at = text.find("-rom1fs-"); at != std::string_view::npos;
       at = text.find("-rom1fs-", at + 1)) {
    ++hits;
    EXPECT_FALSE(Romfs().Probe(busybox, at).has_value()) << "at " << at;
  }
  EXPECT_GT(hits, 0u);
}

}  // namespace
}  // namespace iotmark::unpack
