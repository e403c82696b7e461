#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

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
std::unique_ptr<const Format> MakeCramfsFormat();
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

constexpr std::size_t kPrefix = 5003;
constexpr std::size_t kSuffix = 2999;

const Format& Cramfs() {
  static const auto format = formats::MakeCramfsFormat();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// Real binaries, short and long symlinks, a setuid file, an empty file and an empty directory,
// a copy of a binary (cramfs shares the data of identical files), a sparse file, nested
// directories, devices and a FIFO.
void BuildTree(const fs::path& root) {
  const std::string script = "set -e; mkdir -p " + Quoted(root) + "; cd " + Quoted(root) +
                             "; mkdir -p bin usr/sbin usr/bin etc var a/b/c/d dev run empty_dir"
                             "; cp /bin/busybox bin/busybox"
                             "; cp /bin/busybox bin/busybox-copy"
                             "; cp /usr/sbin/dropbear usr/sbin/dropbear"
                             "; ln -s busybox bin/sh"
                             "; ln -s /a/long/target/that/is/longer/than/sixty/characters/for/"
                             "slow/links usr/bin/longlink"
                             "; printf '#!/bin/sh\\necho su\\n' > usr/bin/su-tool"
                             "; chmod 4755 usr/bin/su-tool"
                             "; : > etc/empty"
                             "; printf 'root:x:0:0:root:/root:/bin/sh\\n' > etc/passwd"
                             "; chmod 600 etc/passwd"
                             "; truncate -s 300K var/sparse.img"
                             "; printf middle | dd of=var/sparse.img bs=1 seek=150000 "
                             "conv=notrunc 2>/dev/null; echo end >> var/sparse.img"
                             "; echo deep > a/b/c/d/deep.txt"
                             "; mknod dev/console c 5 1; mknod dev/sda b 8 0; mkfifo run/fifo";
  ASSERT_EQ(RunCommand(script), 0);
}

std::vector<std::uint8_t> Embed(const std::vector<std::uint8_t>& image) {
  std::vector<std::uint8_t> blob(kPrefix, 0);
  std::mt19937 random(3);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random() % 0x28);  // no magic byte
  blob.insert(blob.end(), image.begin(), image.end());
  blob.insert(blob.end(), kSuffix, 0xa5);
  return blob;
}

std::uint32_t SizeField(const std::vector<std::uint8_t>& image, std::size_t base = 0) {
  const bool big = image[base] == 0x28;
  return big ? LoadBe<std::uint32_t>(image, base + 4).value()
             : LoadLe<std::uint32_t>(image, base + 4).value();
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

// Every entry of `root` came out with its kind, size, content, mode and link target, and nothing
// else came out.
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
      ASSERT_EQ(entry->kind, EntryKind::kFile);
      EXPECT_EQ(entry->size, content.size());
      EXPECT_EQ(entry->sha256, sha);
      EXPECT_EQ(entry->mode, mode);
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

// Builds the tree (once per scratch dir) and an image of it with mkfs.cramfs.
std::vector<std::uint8_t> MakeImage(const ScratchDir& scratch, const std::string& options) {
  const fs::path root = scratch.path() / "root";
  if (!fs::exists(root)) BuildTree(root);
  const fs::path image = scratch.path() / "image.cramfs";
  fs::remove(image);
  EXPECT_EQ(RunCommand("mkfs.cramfs " + options + " -n fixture " + Quoted(root) + " " +
                       Quoted(image) + " >/dev/null 2>&1"),
            0);
  return ReadFileBytes(image);
}

class CramfsEndiannessTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CramfsEndiannessTest, ExtractsEveryEntryOfAnImageBuiltByMkfsCramfs) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-N " + GetParam());
  ASSERT_GT(image.size(), 4096u);
  const auto blob = Embed(image);
  const auto x = ProbeAndExtract(Cramfs(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, kPrefix);
  EXPECT_EQ(x.chunk->length, SizeField(image));
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("endianness"), GetParam());
  EXPECT_EQ(x.chunk->meta.at("crc"), "ok");
  EXPECT_EQ(x.chunk->meta.at("name"), "fixture");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
}

INSTANTIATE_TEST_SUITE_P(BothByteOrders, CramfsEndiannessTest, ::testing::Values("little", "big"));

TEST(CramfsFormat, ReadsTheBigEndianImageThatCramfsswapMakes) {
  ScratchDir scratch;
  MakeImage(scratch, "-N little");
  const fs::path swapped = scratch.path() / "swapped.cramfs";
  ASSERT_EQ(RunCommand("cramfsswap " + Quoted(scratch.path() / "image.cramfs") + " " +
                       Quoted(swapped) + " >/dev/null 2>&1"),
            0);
  const auto image = ReadFileBytes(swapped);
  ASSERT_EQ(image[0], 0x28);
  const auto x = ProbeAndExtract(Cramfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->meta.at("endianness"), "big");
  EXPECT_EQ(x.chunk->meta.at("crc"), "ok");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
}

TEST(CramfsFormat, FindsTheImageStartInFrontOfABootPadding) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-p -z");  // superblock at 512; explicit holes
  ASSERT_EQ(LoadLe<std::uint32_t>(image, 512).value(), 0x28cd3d45u);
  const auto blob = Embed(image);
  // The carver finds the magic 512 bytes into the chunk and asks at the chunk's start.
  EXPECT_FALSE(Cramfs().Probe(blob, kPrefix + 512).has_value());
  const auto x = ProbeAndExtract(Cramfs(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, SizeField(image, 512));
  EXPECT_EQ(x.chunk->meta.at("boot_padding"), "512");
  EXPECT_EQ(x.chunk->meta.at("crc"), "ok");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
}

// fsck.cramfs --extract is the reference for the shared samples.
TEST(CramfsFormat, MatchesFsckCramfsOnTheSharedSamples) {
  for (const char* name : {"fact_cramfs.img", "binwalk_cramfs.bin"}) {
    SCOPED_TRACE(name);
    const fs::path sample = testing::SharedSamplePath(std::string("cramfs/") + name);
    if (sample.empty()) GTEST_SKIP() << "shared samples are not available";
    ScratchDir scratch;
    const fs::path reference = scratch.path() / "reference";
    ASSERT_EQ(RunCommand("fsck.cramfs --extract=" + Quoted(reference) + " " + Quoted(sample) +
                         " >/dev/null 2>&1"),
              0);
    const auto bytes = ReadFileBytes(sample);
    const auto x = ProbeAndExtract(Cramfs(), bytes, 0, scratch);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, 4096u);
    EXPECT_EQ(x.chunk->meta.at("crc"), "ok");
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
    ExpectTreeMatches(x, reference);
  }
  ScratchDir scratch;
  const auto fact = ProbeAndExtract(
      Cramfs(), ReadFileBytes(testing::SharedSamplePath("cramfs/fact_cramfs.img")), 0, scratch);
  ASSERT_NE(fact.Find("generic folder/test file 3_.txt"), nullptr);
  EXPECT_EQ(fact.Find("generic folder/test file 3_.txt")->sha256,
            Sha256::Hex(AsBytes("The third test file!")));
  ASSERT_NE(fact.Find("testfile1"), nullptr);
  EXPECT_EQ(fact.Find("testfile1")->size, 62u);
  EXPECT_EQ(fact.Find("testfile1")->mode, 0664u);
  EXPECT_EQ(fact.Find("testfile2")->sha256, Sha256::Hex(AsBytes("This is the second test file")));
  ScratchDir other;
  const auto binwalk = ProbeAndExtract(
      Cramfs(), ReadFileBytes(testing::SharedSamplePath("cramfs/binwalk_cramfs.bin")), 0, other);
  ASSERT_EQ(binwalk.entries.size(), 1u);
  EXPECT_EQ(binwalk.entries[0].path, "lsb-release");
  EXPECT_EQ(binwalk.entries[0].size, 104u);
  EXPECT_EQ(std::string(AsChars(binwalk.Read("lsb-release"))).substr(0, 18), "DISTRIB_ID=Ubuntu\n");
}

// Little-endian inode words.
void PutInode(std::vector<std::uint8_t>& image, std::size_t at, std::uint32_t mode,
              std::uint32_t size, std::uint32_t name_words, std::uint32_t offset) {
  const std::uint32_t words[3] = {mode, size, name_words | ((offset / 4) << 6)};
  std::memcpy(&image[at], words, sizeof(words));
}

void Put32(std::vector<std::uint8_t>& image, std::size_t at, std::uint32_t value) {
  std::memcpy(&image[at], &value, 4);
}

std::vector<std::uint8_t> Compress(const std::vector<std::uint8_t>& data) {
  uLongf size = compressBound(data.size());
  std::vector<std::uint8_t> out(size);
  EXPECT_EQ(compress(out.data(), &size, data.data(), data.size()), Z_OK);
  out.resize(size);
  return out;
}

// An image mkfs.cramfs cannot make: one file whose blocks use every kind of extended block
// pointer (direct and uncompressed, plain after direct, direct and compressed, plain and
// uncompressed), laid out by hand as the kernel reads them.
std::vector<std::uint8_t> ExtendedPointerImage(std::vector<std::uint8_t>& content) {
  constexpr std::uint32_t kDirect = 0x40000000;
  constexpr std::uint32_t kUncompressed = 0x80000000;
  std::vector<std::uint8_t> a(4096, 'a'), b(4096), c(4096), d(100, 'd');
  for (std::size_t i = 0; i < 4096; ++i) {
    b[i] = static_cast<std::uint8_t>(i * 7);
    c[i] = static_cast<std::uint8_t>(i / 13);
  }
  content.clear();
  for (const auto* part : {&a, &b, &c, &d})
    content.insert(content.end(), part->begin(), part->end());
  const auto zb = Compress(b);
  const auto zc = Compress(c);

  std::vector<std::uint8_t> image(76 + 16 + 16);
  const std::uint32_t table = 92;
  const std::uint32_t b0 = 108;
  const std::uint32_t b1 = b0 + 4096;
  const std::uint32_t b2 = (b1 + static_cast<std::uint32_t>(zb.size()) + 3) / 4 * 4;
  const std::uint32_t b3 = b2 + 2 + static_cast<std::uint32_t>(zc.size());
  image.insert(image.end(), a.begin(), a.end());
  image.insert(image.end(), zb.begin(), zb.end());
  image.resize(b2);
  image.push_back(static_cast<std::uint8_t>(zc.size() & 0xff));
  image.push_back(static_cast<std::uint8_t>(zc.size() >> 8));
  image.insert(image.end(), zc.begin(), zc.end());
  image.insert(image.end(), d.begin(), d.end());
  image.resize((image.size() + 4095) / 4096 * 4096);

  Put32(image, 0, 0x28cd3d45);
  Put32(image, 4, static_cast<std::uint32_t>(image.size()));
  Put32(image, 8, 0x1 | 0x800);  // fsid version 2, extended block pointers
  std::memcpy(&image[16], "Compressed ROMFS", 16);
  Put32(image, 44, 2);  // files
  std::memcpy(&image[48], "handmade", 8);
  PutInode(image, 64, 040755, 16, 0, 76);
  PutInode(image, 76, 0100644, static_cast<std::uint32_t>(content.size()), 1, table);
  std::memcpy(&image[88], "file", 4);
  Put32(image, table, (b0 >> 2) | kDirect | kUncompressed);
  Put32(image, table + 4, b1 + static_cast<std::uint32_t>(zb.size()));
  Put32(image, table + 8, (b2 >> 2) | kDirect);
  Put32(image, table + 12, (b3 + 100) | kUncompressed);
  Put32(image, 32, static_cast<std::uint32_t>(crc32(0, image.data(), image.size())));
  return image;
}

TEST(CramfsFormat, ReadsTheExtendedBlockPointersOfNewerKernels) {
  std::vector<std::uint8_t> content;
  const auto image = ExtendedPointerImage(content);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Cramfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->meta.at("crc"), "ok");
  EXPECT_EQ(x.chunk->meta.at("block_pointers"), "extended");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_NE(x.Find("file"), nullptr);
  EXPECT_EQ(x.Find("file")->size, content.size());
  EXPECT_EQ(x.Read("file"), content);
}

TEST(CramfsFormat, ReportsACrcMismatchAndADamagedBlockAndExtractsTheRest) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root";
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root) + "; cp /bin/busybox " +
                       Quoted(root / "aaa.bin") + "; echo fine > " + Quoted(root / "zzz.txt")),
            0);
  const fs::path path = scratch.path() / "image.cramfs";
  ASSERT_EQ(RunCommand("mkfs.cramfs " + Quoted(root) + " " + Quoted(path) + " >/dev/null 2>&1"), 0);
  auto image = ReadFileBytes(path);
  // The data of aaa.bin follows the listing and its block table; damage its second block.
  const std::uint32_t w2 = LoadLe<std::uint32_t>(image, 76 + 8).value();
  const std::uint32_t table = (w2 >> 6) * 4;
  const std::uint32_t second = LoadLe<std::uint32_t>(image, table).value();
  for (std::size_t i = second + 10; i < second + 60; ++i) image[i] ^= 0x5a;
  const auto x = ProbeAndExtract(Cramfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->meta.at("crc"), "mismatch");
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kCorrupt);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'aaa.bin': block 1 is damaged")) << GapList(x);
  ASSERT_NE(x.Find("aaa.bin"), nullptr);
  EXPECT_EQ(x.Find("aaa.bin")->size, 4096u);  // cut before the bad block
  const auto busybox = ReadFileBytes("/bin/busybox");
  EXPECT_EQ(x.Read("aaa.bin"), std::vector<std::uint8_t>(busybox.begin(), busybox.begin() + 4096));
  EXPECT_EQ(x.Find("zzz.txt")->sha256, Sha256::Hex(AsBytes("fine\n")));
}

TEST(CramfsFormat, ReadsWhatItCanOfAnImageCutShort) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "");
  for (const std::size_t cut : {std::size_t{80}, std::size_t{400}, std::size_t{5000},
                                image.size() / 3, image.size() / 2, image.size() - 1}) {
    SCOPED_TRACE(cut);
    const std::vector<std::uint8_t> part(image.begin(),
                                         image.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir out;
    const auto x = ProbeAndExtract(Cramfs(), part, 0, out);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, cut);
    EXPECT_EQ(x.chunk->meta.at("crc"), "unchecked");
    ASSERT_EQ(x.chunk->issues.size(), 1u);
    EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    if (cut == image.size() / 2) {
      // The listings come first; the tree is there even if file data is missing. (A cut in the
      // final padding loses nothing: the probe's issue is all there is to say.)
      EXPECT_NE(x.Find("a/b/c/d/deep.txt"), nullptr);
      EXPECT_TRUE(HasGap(x, GapKind::kTruncated, "past the end of the image")) << GapList(x);
    }
  }
  EXPECT_FALSE(Cramfs().Probe(std::vector<std::uint8_t>(image.begin(), image.begin() + 60), 0));
}

TEST(CramfsFormat, DoesNotFollowADirectoryLoop) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "root";
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root / "loopdir/inner") + " " +
                       Quoted(root / "other") + "; echo x > " + Quoted(root / "other/file")),
            0);
  const fs::path path = scratch.path() / "image.cramfs";
  ASSERT_EQ(RunCommand("mkfs.cramfs " + Quoted(root) + " " + Quoted(path) + " >/dev/null 2>&1"), 0);
  auto image = ReadFileBytes(path);
  // "loopdir" is the root's first entry; point its listing at the root listing.
  ASSERT_EQ(std::string(reinterpret_cast<const char*>(&image[76 + 12]), 7), "loopdir");
  const std::uint32_t w2 = LoadLe<std::uint32_t>(image, 76 + 8).value();
  const std::uint32_t loop = (w2 & 0x3f) | ((76 / 4) << 6);
  std::memcpy(&image[76 + 8], &loop, 4);
  const std::uint32_t w1 = LoadLe<std::uint32_t>(image, 64 + 4).value();  // root listing size
  std::memcpy(&image[76 + 4], &w1, 4);
  const auto x = ProbeAndExtract(Cramfs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->meta.at("crc"), "mismatch");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "directory loop")) << GapList(x);
  EXPECT_NE(x.Find("other/file"), nullptr);
  EXPECT_NE(x.Find("loopdir"), nullptr);
  EXPECT_EQ(x.Find("loopdir/other"), nullptr);
}

TEST(CramfsFormat, SurvivesCorruptedFieldsWithoutCrashing) {
  ScratchDir scratch;
  // A small tree, so that each of the many damaged copies is quick to extract.
  const fs::path root = scratch.path() / "root";
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root / "a/b/c") + " " + Quoted(root / "e") +
                       "; cd " + Quoted(root) +
                       "; head -c 20000 /bin/busybox > a/part; echo x > a/b/c/x; ln -s a/part l"
                       "; mknod e/null c 1 3; : > e/empty; truncate -s 9000 a/b/holes"),
            0);
  const fs::path path = scratch.path() / "small.cramfs";
  ASSERT_EQ(RunCommand("mkfs.cramfs -z " + Quoted(root) + " " + Quoted(path) + " >/dev/null 2>&1"),
            0);
  const auto image = ReadFileBytes(path);
  std::mt19937 random(5);
  // Every inode word of the first listings, and random bytes elsewhere, one at a time.
  std::vector<std::size_t> offsets;
  for (std::size_t at = 64; at < 400; at += 4) offsets.push_back(at);
  for (int i = 0; i < 40; ++i) offsets.push_back(random() % image.size());
  for (const std::size_t at : offsets) {
    SCOPED_TRACE(at);
    auto bad = image;
    for (std::size_t i = at; i < std::min(at + 4, bad.size()); ++i) {
      bad[i] = static_cast<std::uint8_t>(random());
    }
    ScratchDir out;
    Limits limits;
    limits.max_total_bytes = 64 << 20;
    const auto x = ProbeAndExtract(Cramfs(), bad, 0, out, limits);
    if (x.chunk) {
      EXPECT_LE(x.chunk->length, bad.size());
    }
  }
}

TEST(CramfsFormat, RejectsRandomBytesWithAPlantedMagic) {
  std::vector<std::uint8_t> blob(1 << 16);
  std::mt19937 random(11);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  std::vector<std::uint64_t> offsets;
  for (std::uint64_t offset = 0; offset + 700 < blob.size(); offset += 4093) {
    std::memcpy(&blob[offset], "\x45\x3d\xcd\x28", 4);
    offsets.push_back(offset);
  }
  // One with the signature too, the rest of its superblock random.
  std::memcpy(&blob[4093 + 16], "Compressed ROMFS", 16);
  for (const std::uint64_t offset : offsets) {
    EXPECT_FALSE(Cramfs().Probe(blob, offset).has_value()) << offset;
    if (offset >= 512) {
      EXPECT_FALSE(Cramfs().Probe(blob, offset - 512).has_value()) << offset;
    }
  }
}

TEST(CramfsFormat, ExtractsAHandMadeImageWhoseListingIsFullOfRandomBytes) {
  std::vector<std::uint8_t> content;
  auto image = ExtendedPointerImage(content);
  std::mt19937 random(17);
  for (int round = 0; round < 50; ++round) {
    auto bad = image;
    for (std::size_t i = 76; i < 108; ++i) bad[i] = static_cast<std::uint8_t>(random());
    ScratchDir out;
    const auto x = ProbeAndExtract(Cramfs(), bad, 0, out);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->meta.at("crc"), "mismatch");
  }
}

}  // namespace
}  // namespace iotmark::unpack
