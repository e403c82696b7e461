#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeSquashfsFormat();
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

constexpr std::size_t kPrefix = 4099;
constexpr std::size_t kSuffix = 3001;

const Format& Squashfs() {
  static const auto format = formats::MakeSquashfsFormat();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// The tree every image is built from: real binaries, a symlink, a hard link, a setuid file, an
// empty file, a sparse file, a nested directory, devices and a FIFO.
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
  std::mt19937 random(7);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random() % 200);  // never 'h' 's' 'q'
  blob.insert(blob.end(), image.begin(), image.end());
  blob.insert(blob.end(), kSuffix, 0x5a);
  return blob;
}

std::uint64_t BytesUsed(const std::vector<std::uint8_t>& image) {
  return LoadLe<std::uint64_t>(image, 40).value_or(0);
}

bool HasGap(const Extraction& x, GapKind kind, const std::string& text) {
  return std::any_of(x.gaps.begin(), x.gaps.end(), [&](const model::Gap& gap) {
    return gap.kind == kind && gap.reason.find(text) != std::string::npos;
  });
}

std::string GapList(const Extraction& x) {
  std::string out;
  for (const auto& gap : x.gaps)
    out += std::string(model::ToString(gap.kind)) + ": " + gap.reason + "\n";
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
      EXPECT_TRUE(fs::is_symlink(x.root / rel));
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

// Builds the tree and an image of it with mksquashfs; returns the image bytes.
std::vector<std::uint8_t> MakeImage(const ScratchDir& scratch, const std::string& options) {
  const fs::path root = scratch.path() / "root";
  if (!fs::exists(root)) BuildTree(root);
  const fs::path image = scratch.path() / "image.sqfs";
  fs::remove(image);
  EXPECT_EQ(RunCommand("mksquashfs " + Quoted(root) + " " + Quoted(image) + " " + options +
                       " -noappend -no-progress -quiet -no-xattrs >/dev/null 2>&1"),
            0);
  return ReadFileBytes(image);
}

class SquashfsCompressorTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SquashfsCompressorTest, ExtractsEveryEntryOfAnImageBuiltByMksquashfs) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-comp " + GetParam());
  ASSERT_GT(image.size(), 4096u);
  const auto blob = Embed(image);
  const auto x = ProbeAndExtract(Squashfs(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, kPrefix);
  EXPECT_EQ(x.chunk->length, BytesUsed(image));  // not the 4 KiB padding mksquashfs adds
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("compression"), GetParam());
  EXPECT_EQ(x.chunk->meta.at("block_size"), "131072");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
}

INSTANTIATE_TEST_SUITE_P(EveryCompressor, SquashfsCompressorTest,
                         ::testing::Values("gzip", "xz", "lzo", "lz4", "zstd", "lzma"));

TEST(SquashfsFormat, ExtractsAnImageBuiltByGensquashfs) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root";
  BuildTree(root);
  const fs::path image = scratch.path() / "image.sqfs";
  ASSERT_EQ(RunCommand("gensquashfs -c zstd -b 65536 -D " + Quoted(root) + " " + Quoted(image) +
                       " >/dev/null 2>&1"),
            0);
  const auto bytes = ReadFileBytes(image);
  const auto x = ProbeAndExtract(Squashfs(), bytes, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, BytesUsed(bytes));
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  // gensquashfs packs hard links as separate files; compare what both tools agree on.
  for (const char* path : {"bin/busybox", "usr/sbin/dropbear", "var/sparse.img", "etc/empty"}) {
    SCOPED_TRACE(path);
    const auto* entry = x.Find(path);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->sha256, Sha256::Hex(ReadFileBytes(root / path)));
  }
  ASSERT_NE(x.Find("bin/sh"), nullptr);
  EXPECT_EQ(x.Find("bin/sh")->link_target, "busybox");
  ASSERT_NE(x.Find("dev/sda"), nullptr);
  EXPECT_EQ(x.Find("dev/sda")->kind, EntryKind::kBlockDevice);
}

TEST(SquashfsFormat, DecodesLargeFilesInSegmentsWrittenInOrder) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root";
  // 4 KiB blocks make several segments per file: one file random (stored uncompressed), one
  // compressible, one with sparse holes between the data.
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root) + "; cd " + Quoted(root) +
                       "; head -c 5000001 /dev/urandom > random.bin"
                       "; for i in 1 2 3; do cat /bin/busybox; done > busy3.bin"
                       "; truncate -s 9M holes.bin; head -c 300000 /dev/urandom | dd "
                       "of=holes.bin bs=4096 seek=1000 conv=notrunc 2>/dev/null"),
            0);
  const fs::path image = scratch.path() / "image.sqfs";
  ASSERT_EQ(RunCommand("mksquashfs " + Quoted(root) + " " + Quoted(image) +
                       " -b 4096 -comp gzip -no-progress -quiet >/dev/null 2>&1"),
            0);
  const auto x = ProbeAndExtract(Squashfs(), ReadFileBytes(image), 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, root);
}

TEST(SquashfsFormat, MatchesUnsquashfsOnTheSharedSamples) {
  for (const char* name :
       {"fact_gzip.sqfs", "fact_xz.sqfs", "fact_lz4.sqfs", "fact_lzo.sqfs", "fact_lzma.sqfs",
        "fact_zstd.sqfs", "fact_avm_le.sqfs4", "binwalk_squashfs.bin"}) {
    SCOPED_TRACE(name);
    const fs::path sample = testing::SharedSamplePath(std::string("squashfs/") + name);
    if (sample.empty()) GTEST_SKIP() << "shared samples are not available";
    ScratchDir scratch;
    const fs::path reference = scratch.path() / "reference";
    ASSERT_EQ(RunCommand("unsquashfs -q -n -d " + Quoted(reference) + " " + Quoted(sample) +
                         " >/dev/null 2>&1"),
              0);
    const auto bytes = ReadFileBytes(sample);
    const auto x = ProbeAndExtract(Squashfs(), bytes, 0, scratch);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, BytesUsed(bytes));
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
    ExpectTreeMatches(x, reference);
  }
  ScratchDir scratch;
  const fs::path sample = testing::SharedSamplePath("squashfs/fact_gzip.sqfs");
  const auto x = ProbeAndExtract(Squashfs(), ReadFileBytes(sample), 0, scratch);
  ASSERT_NE(x.Find("generic folder/test file 3_.txt"), nullptr);
  EXPECT_EQ(x.Find("testfile1")->size, 62u);
}

TEST(SquashfsFormat, RejectsAnImageCutInsideItsSuperblock) {
  ScratchDir scratch;
  auto image = MakeImage(scratch, "-comp gzip");
  image.resize(60);
  EXPECT_FALSE(Squashfs().Probe(image, 0).has_value());
}

TEST(SquashfsFormat, ReportsAnImageCutInsideItsDataWithoutCrashing) {
  ScratchDir scratch;
  auto image = MakeImage(scratch, "-comp xz");
  image.resize(image.size() / 2);  // the tables, at the end, are gone
  const auto x = ProbeAndExtract(Squashfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  EXPECT_FALSE(x.status);  // nothing can be listed without the inode table
}

TEST(SquashfsFormat, ReadsWhatItCanOfAnImageCutInsideItsTables) {
  ScratchDir scratch;
  auto image = MakeImage(scratch, "-comp gzip");
  const std::uint64_t fragment_table = LoadLe<std::uint64_t>(image, 80).value();
  image.resize(fragment_table + 4);  // inode and directory tables whole, fragment table cut
  const auto x = ProbeAndExtract(Squashfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "fragment table")) << GapList(x);
  // The tree is there; small files, which live in fragment blocks, are empty and say so.
  ASSERT_NE(x.Find("a/b/c/d"), nullptr);
  ASSERT_NE(x.Find("bin/sh"), nullptr);
  ASSERT_NE(x.Find("dev/console"), nullptr);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'etc/passwd'")) << GapList(x);
  ASSERT_NE(x.Find("etc/passwd"), nullptr);
  EXPECT_EQ(x.Find("etc/passwd")->size, 0u);
  // mksquashfs keeps the tails of files over one block in their own blocks.
  ASSERT_NE(x.Find("bin/busybox"), nullptr);
  EXPECT_EQ(x.Find("bin/busybox")->sha256, Sha256::Hex(ReadFileBytes("/bin/busybox")));
}

TEST(SquashfsFormat, SurvivesCutsAtManyPoints) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-comp xz -b 4096");
  const std::uint64_t bytes_used = BytesUsed(image);
  std::vector<std::uint64_t> cuts = {100, 1000, bytes_used / 4, bytes_used / 2, bytes_used - 1};
  for (const std::size_t table : {64, 72, 80, 88, 48}) {  // inode ... id table starts
    const std::uint64_t start = LoadLe<std::uint64_t>(image, table).value();
    if (start + 10 < bytes_used) cuts.push_back(start + 10);
  }
  for (const std::uint64_t cut : cuts) {
    SCOPED_TRACE(cut);
    const std::vector<std::uint8_t> part(image.begin(),
                                         image.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir out;
    const auto x = ProbeAndExtract(Squashfs(), part, 0, out);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, cut);
    ASSERT_EQ(x.chunk->issues.size(), 1u);
    EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  }
}

TEST(SquashfsFormat, ReportsACorruptBlockAndExtractsTheOtherFiles) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root";
  // aaa.bin comes first in the data area, right after the superblock.
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root) + "; cp /bin/busybox " +
                       Quoted(root / "aaa.bin") + "; echo fine > " + Quoted(root / "zzz.txt")),
            0);
  const fs::path image = scratch.path() / "image.sqfs";
  ASSERT_EQ(RunCommand("mksquashfs " + Quoted(root) + " " + Quoted(image) +
                       " -comp gzip -no-progress -quiet >/dev/null 2>&1"),
            0);
  auto bytes = ReadFileBytes(image);
  for (std::size_t i = 300; i < 400; ++i) bytes[i] ^= 0x5a;
  const auto x = ProbeAndExtract(Squashfs(), bytes, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'aaa.bin': block 0")) << GapList(x);
  ASSERT_NE(x.Find("aaa.bin"), nullptr);
  EXPECT_EQ(x.Find("aaa.bin")->size, 0u);  // cut before the bad block
  ASSERT_NE(x.Find("zzz.txt"), nullptr);
  EXPECT_EQ(x.Find("zzz.txt")->sha256, Sha256::Hex(AsBytes("fine\n")));
}

TEST(SquashfsFormat, RejectsRandomBytesWithAPlantedMagic) {
  std::vector<std::uint8_t> blob(1 << 16);
  std::mt19937 random(11);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  std::vector<std::uint64_t> offsets;
  for (std::uint64_t offset = 0; offset + 200 < blob.size(); offset += 4093) {
    std::memcpy(&blob[offset], "hsqs", 4);
    offsets.push_back(offset);
  }
  // One with a plausible version and block size, the rest still random.
  blob[4093 + 28] = 4;
  blob[4093 + 29] = 0;
  blob[4093 + 30] = 0;
  blob[4093 + 31] = 0;
  for (const std::uint64_t offset : offsets) {
    EXPECT_FALSE(Squashfs().Probe(blob, offset).has_value()) << offset;
  }
}

TEST(SquashfsFormat, DoesNotFollowADirectoryLoop) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root";
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root / "loopdir") + " " +
                       Quoted(root / "other") + "; echo x > " + Quoted(root / "other/file")),
            0);
  const fs::path image = scratch.path() / "image.sqfs";
  // Uncompressed metadata, so the directory entry can be edited in place.
  ASSERT_EQ(RunCommand("mksquashfs " + Quoted(root) + " " + Quoted(image) +
                       " -noI -noD -noF -noX -no-progress -quiet >/dev/null 2>&1"),
            0);
  auto bytes = ReadFileBytes(image);
  const std::uint64_t root_ref = LoadLe<std::uint64_t>(bytes, 32).value();
  const std::uint64_t dir_table = LoadLe<std::uint64_t>(bytes, 72).value();
  const auto name = AsBytes("loopdir");
  const auto at = std::search(bytes.begin() + static_cast<std::ptrdiff_t>(dir_table), bytes.end(),
                              name.begin(), name.end());
  ASSERT_NE(at, bytes.end());
  // The entry header before the name: offset, inode_diff, type, size. Point it at the root.
  const auto entry = static_cast<std::size_t>(at - bytes.begin()) - 8;
  ASSERT_EQ(root_ref >> 16, 0u);
  bytes[entry] = static_cast<std::uint8_t>(root_ref & 0xff);
  bytes[entry + 1] = static_cast<std::uint8_t>((root_ref >> 8) & 0xff);
  const auto x = ProbeAndExtract(Squashfs(), bytes, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'loopdir' is a directory listed before")) << GapList(x);
  ASSERT_NE(x.Find("other/file"), nullptr);
  EXPECT_EQ(x.Find("loopdir/other"), nullptr);
}

TEST(SquashfsFormat, RefusesAFragmentTableLargerThanTheImageCouldHold) {
  ScratchDir scratch;
  auto image = MakeImage(scratch, "-comp gzip");
  image[16] = image[17] = image[18] = image[19] = 0xff;  // fragment_entry_count
  const auto x = ProbeAndExtract(Squashfs(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "fragment table")) << GapList(x);
  EXPECT_NE(x.Find("a/b/c/d/deep.txt"), nullptr);  // listed, though its content is missing
  // Files over one block keep their tails in their own blocks and are read whole.
  EXPECT_EQ(x.Find("bin/busybox")->sha256, Sha256::Hex(ReadFileBytes("/bin/busybox")));
}

TEST(SquashfsFormat, RefusesInodesClaimingHugeSizesBeforeReadingThem) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root";
  BuildTree(root);
  const fs::path image = scratch.path() / "image.sqfs";
  // Uncompressed inodes, so they can be edited in place.
  ASSERT_EQ(RunCommand("mksquashfs " + Quoted(root) + " " + Quoted(image) +
                       " -noI -no-progress -quiet -no-xattrs >/dev/null 2>&1"),
            0);
  auto bytes = ReadFileBytes(image);
  const std::uint64_t inode_table = LoadLe<std::uint64_t>(bytes, 64).value();
  const auto table_begin = bytes.begin() + static_cast<std::ptrdiff_t>(inode_table);
  // The symlink bin/sh: target_size (7) then "busybox".
  const auto link = AsBytes(std::string_view("\x07\0\0\0busybox", 11));
  const auto at_link = std::search(table_begin, bytes.end(), link.begin(), link.end());
  ASSERT_NE(at_link, bytes.end());
  at_link[3] = 0x7f;  // target_size 0x7f000007
  // bin/busybox has a hard link, so an extended inode with a 64-bit size.
  const std::uint64_t size = fs::file_size(root / "bin/busybox");
  std::uint8_t size_bytes[8];
  for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<std::uint8_t>(size >> (8 * i));
  const auto at_size = std::search(table_begin, bytes.end(), size_bytes, size_bytes + 8);
  ASSERT_NE(at_size, bytes.end());
  at_size[6] = 0x01;  // 2^48 bytes and more
  const auto x = ProbeAndExtract(Squashfs(), bytes, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "symlink 'bin/sh' claims a target of")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "file 'bin/busybox' claims")) << GapList(x);
  EXPECT_EQ(x.Find("bin/sh"), nullptr);
  EXPECT_EQ(x.Find("bin/busybox"), nullptr);
  ASSERT_NE(x.Find("usr/sbin/dropbear"), nullptr);
  EXPECT_EQ(x.Find("usr/sbin/dropbear")->sha256,
            Sha256::Hex(ReadFileBytes(root / "usr/sbin/dropbear")));
}

// Vendor images sometimes name one compressor and use another (gzip named, LZMA used); libsquashfs
// cannot read their metadata, and the chunk goes to the hand-written reader instead of being lost.
TEST(SquashfsFormat, HandsAnImageWithAMislabelledCompressorToTheHandWrittenReader) {
  ScratchDir scratch;
  auto image = MakeImage(scratch, "-comp lzma");
  ASSERT_EQ(LoadLe<std::uint16_t>(image, 20).value(), 2u);  // lzma
  image[20] = 1;                                            // says gzip
  const auto x = ProbeAndExtract(Squashfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, BytesUsed(image));
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_EQ(x.meta.count("fallback"), 1u);
  EXPECT_NE(x.meta.at("fallback").find("root inode"), std::string::npos) << x.meta.at("fallback");
  EXPECT_EQ(x.meta.at("compression"), "lzma (lzma-alone headers)");
  ExpectTreeMatches(x, scratch.path() / "root");
}

TEST(SquashfsFormat, FailsCleanlyWhenNeitherReaderCanReadTheImage) {
  ScratchDir scratch;
  auto image = MakeImage(scratch, "-comp gzip");
  const std::uint64_t inode_table = LoadLe<std::uint64_t>(image, 64).value();
  for (std::uint64_t i = inode_table; i < inode_table + 64; ++i) image[i] = 0x11;
  const auto x = ProbeAndExtract(Squashfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_FALSE(x.status);
  EXPECT_TRUE(x.entries.empty());
}

TEST(SquashfsFormat, SkipsAFileOverTheSizeLimitAndGoesOn) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-comp lz4");
  Limits limits;
  limits.max_file_bytes = 1 << 20;
  const auto x = ProbeAndExtract(Squashfs(), image, 0, scratch, limits);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "'var/sparse.img'")) << GapList(x);
  EXPECT_EQ(x.Find("var/sparse.img"), nullptr);
  ASSERT_NE(x.Find("etc/passwd"), nullptr);
  EXPECT_EQ(x.Find("etc/passwd")->kind, EntryKind::kFile);
}

}  // namespace
}  // namespace iotmark::unpack
