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
std::unique_ptr<const Format> MakeUbifsFormat();
}  // namespace iotmark::unpack::formats

namespace iotmark::unpack {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using model::EntryKind;
using model::GapKind;
using testing::Extraction;
using testing::ProbeAndExtract;
using testing::ReadFileBytes;
using testing::RunCommand;
using testing::ScratchDir;

constexpr std::size_t kPrefix = 4099;
constexpr std::size_t kSuffix = 3001;
constexpr std::size_t kLebSize = 126976;

const Format& Ubifs() {
  static const auto format = formats::MakeUbifsFormat();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

void PutLe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

// Recomputes the CRC of the node at `at` (UBIFS: from byte 8 to the node's end, no final
// inversion); `len` is the node's length before any damage to its length field.
void ResealNode(Bytes& image, std::size_t at, std::uint32_t len) {
  PutLe32(image, at + 4, static_cast<std::uint32_t>(~crc32_z(0, &image[at + 8], len - 8)));
}

void ResealNode(Bytes& image, std::size_t at) {
  ResealNode(image, at, LoadLe<std::uint32_t>(image, at + 16).value());
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

// Real binaries, symlinks, a hard link, an empty file, a sparse file, a file of random bytes over
// several segments, nested directories, devices and a FIFO.
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
                             "; head -c 3145745 /dev/urandom > var/random.bin"
                             "; echo deep > a/b/c/d/deep.txt"
                             "; mknod dev/console c 5 1; mknod dev/sda b 8 0; mkfifo run/fifo";
  ASSERT_EQ(RunCommand(script), 0);
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
      const model::InventoryEntry* file = entry;
      if (entry->kind == EntryKind::kHardlink) {
        EXPECT_GT(st.st_nlink, 1u);
        file = x.Find(entry->link_target);
        ASSERT_NE(file, nullptr);
      }
      ASSERT_EQ(file->kind, EntryKind::kFile);
      EXPECT_EQ(file->size, content.size());
      EXPECT_EQ(file->sha256, Sha256::Hex(content));
      EXPECT_EQ(file->mode, mode);
      EXPECT_EQ(x.Read(rel) == content, true);
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

// Builds the tree (once per scratch directory) and a UBIFS image of it.
Bytes MakeImage(const ScratchDir& scratch, const std::string& compressor) {
  const fs::path root = scratch.path() / "root";
  if (!fs::exists(root)) BuildTree(root);
  const fs::path image = scratch.path() / "image.ubifs";
  fs::remove(image);
  EXPECT_EQ(RunCommand("mkfs.ubifs -x " + compressor + " -m 2048 -e " + std::to_string(kLebSize) +
                       " -c 2048 -r " + Quoted(root) + " " + Quoted(image) + " >/dev/null 2>&1"),
            0);
  return ReadFileBytes(image);
}

// A small image: a few short files, for damage tests that run many rounds.
Bytes MakeSmallImage(const ScratchDir& scratch) {
  const fs::path root = scratch.path() / "small";
  EXPECT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root / "d/e") + "; cd " + Quoted(root) +
                       "; echo one > one.txt; head -c 20000 /usr/sbin/dropbear > d/two.bin"
                       "; ln -s one.txt link; echo three > d/e/three"),
            0);
  const fs::path image = scratch.path() / "small.ubifs";
  EXPECT_EQ(RunCommand("mkfs.ubifs -x zlib -m 512 -e 15872 -c 64 -r " + Quoted(root) + " " +
                       Quoted(image) + " >/dev/null 2>&1"),
            0);
  return ReadFileBytes(image);
}

struct NodeRef {
  std::size_t at = 0;
  std::uint8_t type = 0;
  std::uint32_t len = 0;
  std::uint32_t inode = 0;
  std::uint32_t block = 0;
};

// Every node with an intact header, found by scanning 8-byte aligned offsets.
std::vector<NodeRef> Nodes(const Bytes& image) {
  std::vector<NodeRef> nodes;
  for (std::size_t at = 0; at + 24 <= image.size(); at += 8) {
    if (LoadLe<std::uint32_t>(image, at) != 0x06101831) continue;
    NodeRef node;
    node.at = at;
    node.type = image[at + 20];
    node.len = LoadLe<std::uint32_t>(image, at + 16).value();
    if (node.len < 24 || at + node.len > image.size()) continue;
    if (node.len >= 32) {
      node.inode = LoadLe<std::uint32_t>(image, at + 24).value();
      node.block = LoadLe<std::uint32_t>(image, at + 28).value() & 0x1fffffff;
    }
    nodes.push_back(node);
  }
  return nodes;
}

// The inode number of the file of `size` bytes.
std::uint32_t InodeOfSize(const std::vector<NodeRef>& nodes, const Bytes& image,
                          std::uint64_t size) {
  for (const NodeRef& node : nodes) {
    if (node.type == 0 && LoadLe<std::uint64_t>(image, node.at + 48) == size) return node.inode;
  }
  ADD_FAILURE() << "no inode of " << size << " bytes";
  return 0;
}

Bytes Embed(const Bytes& image) {
  Bytes blob(kPrefix);
  std::mt19937 random(7);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  blob.insert(blob.end(), image.begin(), image.end());
  blob.insert(blob.end(), kSuffix, 0x5a);
  return blob;
}

class UbifsCompressorTest : public ::testing::TestWithParam<std::string> {};

TEST_P(UbifsCompressorTest, ExtractsEveryEntryOfAnImageBuiltByMkfsUbifs) {
  ScratchDir scratch;
  const Bytes image = MakeImage(scratch, GetParam());
  ASSERT_EQ(image.size() % kLebSize, 0u);
  const Bytes blob = Embed(image);
  const auto x = ProbeAndExtract(Ubifs(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, kPrefix);
  EXPECT_EQ(x.chunk->length, image.size());  // leb_cnt * leb_size
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("leb_size"), std::to_string(kLebSize));
  EXPECT_EQ(x.chunk->meta.at("leb_count"), std::to_string(image.size() / kLebSize));
  EXPECT_EQ(x.chunk->meta.at("min_io_size"), "2048");
  EXPECT_EQ(x.chunk->meta.at("compression"), GetParam());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
}

INSTANTIATE_TEST_SUITE_P(EveryCompressor, UbifsCompressorTest,
                         ::testing::Values("lzo", "zlib", "zstd", "none"));

TEST(UbifsFormat, ReadsTheSharedSample) {
  const fs::path sample = testing::SharedSamplePath("ubifs/fact_test.ubifs");
  if (sample.empty()) GTEST_SKIP() << "shared sample ubifs/fact_test.ubifs is absent";
  const Bytes image = ReadFileBytes(sample);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Ubifs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_EQ(x.chunk->meta.at("leb_size"), "131072");
  EXPECT_EQ(x.chunk->meta.at("leb_count"), "13");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ASSERT_NE(x.Find("testfile1"), nullptr);
  ASSERT_NE(x.Find("generic folder/test file 3_.txt"), nullptr);
  const Bytes third = x.Read("generic folder/test file 3_.txt");
  EXPECT_NE(std::string(third.begin(), third.end()).find("The third test file!"),
            std::string::npos);
}

TEST(UbifsFormat, ZeroFillsADamagedDataBlockAndReadsTheRest) {
  ScratchDir scratch;
  Bytes image = MakeImage(scratch, "lzo");
  const Bytes busybox = ReadFileBytes("/bin/busybox");
  const auto nodes = Nodes(image);
  const std::uint32_t inode = InodeOfSize(nodes, image, busybox.size());
  const auto data = std::find_if(nodes.begin(), nodes.end(), [&](const NodeRef& node) {
    return node.type == 1 && node.inode == inode && node.block == 5;
  });
  ASSERT_NE(data, nodes.end());
  image[data->at + data->len - 3] ^= 0x55;  // payload, without fixing the CRC
  const auto x = ProbeAndExtract(Ubifs(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'bin/busybox': 1 data block(s)")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "block 5 at")) << GapList(x);
  const Bytes out = x.Read("bin/busybox");
  ASSERT_EQ(out.size(), busybox.size());
  Bytes expected = busybox;
  std::fill(expected.begin() + 5 * 4096, expected.begin() + 6 * 4096, 0);
  EXPECT_TRUE(out == expected);
  EXPECT_EQ(x.Find("usr/sbin/dropbear")->sha256, Sha256::Hex(ReadFileBytes("/usr/sbin/dropbear")));
}

// The master node's root reference: (lnum, offs, len) at bytes 48..59 of the node.
struct RootRef {
  std::uint32_t lnum, offs, len;
};

RootRef RootOf(const Bytes& image) {
  const std::size_t master = kLebSize;
  EXPECT_EQ(image[master + 20], 7);
  return {LoadLe<std::uint32_t>(image, master + 48).value(),
          LoadLe<std::uint32_t>(image, master + 52).value(),
          LoadLe<std::uint32_t>(image, master + 56).value()};
}

TEST(UbifsFormat, DoesNotFollowAnIndexBranchThatLoopsBackToTheRoot) {
  ScratchDir scratch;
  Bytes image = MakeImage(scratch, "lzo");
  const RootRef root = RootOf(image);
  const std::size_t at = std::size_t{root.lnum} * kLebSize + root.offs;
  ASSERT_EQ(image[at + 20], 9);
  ASSERT_GT(LoadLe<std::uint16_t>(image, at + 26).value(), 0);  // an inner node
  // The last branch now points at the root itself.
  const std::uint16_t count = LoadLe<std::uint16_t>(image, at + 24).value();
  const std::size_t branch = at + 28 + (count - 1) * ((root.len - 28) / count);
  PutLe32(image, branch, root.lnum);
  PutLe32(image, branch + 4, root.offs);
  PutLe32(image, branch + 8, root.len);
  ResealNode(image, at);
  const auto x = ProbeAndExtract(Ubifs(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "is referenced twice")) << GapList(x);
  // Entries under the first branches are still there.
  EXPECT_NE(x.Find("a"), nullptr);
}

TEST(UbifsFormat, ReportsAnIndexBranchPointingAtGarbage) {
  ScratchDir scratch;
  Bytes image = MakeImage(scratch, "zstd");
  const RootRef root = RootOf(image);
  const std::size_t at = std::size_t{root.lnum} * kLebSize + root.offs;
  PutLe32(image, at + 28 + 4, 8);  // the first branch's offset: inside some other node
  ResealNode(image, at);
  const auto x = ProbeAndExtract(Ubifs(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "the entries below it are missing")) << GapList(x);
}

TEST(UbifsFormat, UsesTheOtherMasterCopyWhenOneIsDamaged) {
  ScratchDir scratch;
  Bytes image = MakeImage(scratch, "zlib");
  for (std::size_t at = kLebSize; at < 2 * kLebSize; at += 8) {
    if (LoadLe<std::uint32_t>(image, at) == 0x06101831) image[at + 100] ^= 1;
  }
  const auto x = ProbeAndExtract(Ubifs(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
}

TEST(UbifsFormat, FailsWithoutAnyIntactMasterNode) {
  ScratchDir scratch;
  Bytes image = MakeImage(scratch, "zlib");
  for (std::size_t at = kLebSize; at < 3 * kLebSize; at += 8) {
    if (LoadLe<std::uint32_t>(image, at) == 0x06101831) image[at + 100] ^= 1;
  }
  const auto x = ProbeAndExtract(Ubifs(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_FALSE(x.status);
}

TEST(UbifsFormat, ReportsACutImageAndExtractsWhatItCan) {
  ScratchDir scratch;
  const Bytes image = MakeImage(scratch, "lzo");
  const Bytes cut(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(image.size() / 2));
  const auto x = ProbeAndExtract(Ubifs(), cut, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, cut.size());
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kTruncated, "past the end of the image")) << GapList(x);
}

TEST(UbifsFormat, SurvivesCutsAtManyPoints) {
  ScratchDir scratch;
  const Bytes image = MakeSmallImage(scratch);
  ASSERT_FALSE(image.empty());
  for (std::size_t cut = 100; cut < image.size(); cut += image.size() / 29 + 7) {
    SCOPED_TRACE(cut);
    const Bytes part(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir out;
    const auto x = ProbeAndExtract(Ubifs(), part, 0, out);
    if (cut < 4096) {
      EXPECT_FALSE(x.chunk.has_value());
      continue;
    }
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_EQ(x.chunk->length, cut);
  }
}

TEST(UbifsFormat, SurvivesRandomDamageToItsNodes) {
  ScratchDir scratch;
  const Bytes seed = MakeSmallImage(scratch);
  const auto nodes = Nodes(seed);
  ASSERT_GT(nodes.size(), 10u);
  std::mt19937 random(17);
  for (int round = 0; round < 200; ++round) {
    Bytes image = seed;
    for (int i = 0; i < 4; ++i) {
      const NodeRef& node = nodes[1 + random() % (nodes.size() - 1)];  // not the superblock
      image[node.at + 8 + random() % (node.len - 8)] = static_cast<std::uint8_t>(random());
      if (random() % 4 != 0)
        ResealNode(image, node.at, node.len);  // past the CRC, into the parsers
    }
    ScratchDir out;
    const auto x = ProbeAndExtract(Ubifs(), image, 0, out);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_LE(x.entries.size(), 10u) << round;
  }
}

TEST(UbifsFormat, RejectsRandomBytesWithPlantedSuperblockHeaders) {
  Bytes blob(1 << 18);
  std::mt19937 random(11);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  std::vector<std::size_t> offsets;
  for (std::size_t at = 0; at + 4096 < blob.size(); at += 8192) {
    std::memcpy(&blob[at], "\x31\x18\x10\x06", 4);
    PutLe32(blob, at + 16, 4096);
    blob[at + 20] = 6;
    offsets.push_back(at);
  }
  for (const std::size_t at : offsets) EXPECT_FALSE(Ubifs().Probe(blob, at).has_value()) << at;
}

TEST(UbifsFormat, SkipsAFileOverTheSizeLimitAndGoesOn) {
  ScratchDir scratch;
  const Bytes image = MakeImage(scratch, "lzo");
  Limits limits;
  limits.max_file_bytes = 1 << 20;
  const auto x = ProbeAndExtract(Ubifs(), image, 0, scratch, limits);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "'var/random.bin'")) << GapList(x);
  EXPECT_EQ(x.Find("var/random.bin"), nullptr);
  ASSERT_NE(x.Find("etc/passwd"), nullptr);
  EXPECT_EQ(x.Find("etc/passwd")->kind, EntryKind::kFile);
}

}  // namespace
}  // namespace iotmark::unpack
