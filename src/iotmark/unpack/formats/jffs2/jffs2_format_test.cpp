#include <gtest/gtest.h>
#include <lzma.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/unpack/format.hpp"
#include "iotmark/unpack/formats/jffs2/jffs2_extractor.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::formats {
std::unique_ptr<const Format> MakeJffs2Format();
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
using Bytes = std::vector<std::uint8_t>;

constexpr std::size_t kPrefix = 4099;
constexpr std::size_t kSuffix = 3001;

const Format& Jffs2() {
  static const auto format = formats::MakeJffs2Format();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

// Real binaries, symlinks short and long, a hard link, a setuid file, an empty file, a file of
// zeros with a little data inside, nested directories, devices and a FIFO.
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
                             "; truncate -s 300000 var/zeros.img"
                             "; printf middle | dd of=var/zeros.img bs=1 seek=150000 "
                             "conv=notrunc 2>/dev/null; echo end >> var/zeros.img"
                             "; echo deep > a/b/c/d/deep.txt; chmod 0750 a/b"
                             "; mknod dev/console c 5 1; mknod dev/sda b 8 0; mkfifo run/fifo";
  ASSERT_EQ(RunCommand(script), 0);
}

// Builds the tree (once per scratch directory) and an image of it; returns the image bytes.
Bytes MakeImage(const ScratchDir& scratch, const std::string& options,
                const std::string& tree = "root") {
  const fs::path root = scratch.path() / tree;
  if (!fs::exists(root)) BuildTree(root);
  const fs::path image = scratch.path() / "image.jffs2";
  fs::remove(image);
  EXPECT_EQ(RunCommand("mkfs.jffs2 -r " + Quoted(root) + " -o " + Quoted(image) + " " + options +
                       " >/dev/null 2>&1"),
            0);
  return ReadFileBytes(image);
}

Bytes Embed(const Bytes& image, std::uint8_t suffix_fill = 0x5a) {
  Bytes blob(kPrefix);
  std::mt19937 random(7);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random() % 0x80);  // never 0x85
  blob.insert(blob.end(), image.begin(), image.end());
  blob.insert(blob.end(), kSuffix, suffix_fill);
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

std::string Sha(const Bytes& bytes) { return Sha256::Hex(bytes); }

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
    } else if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(entry->kind, EntryKind::kDirectory);
      EXPECT_EQ(entry->mode, mode);
    } else if (S_ISREG(st.st_mode)) {
      const std::string sha = Sha(ReadFileBytes(it->path()));
      const model::InventoryEntry* file = entry;
      if (entry->kind == EntryKind::kHardlink) {
        file = x.Find(entry->link_target);
        ASSERT_NE(file, nullptr);
      }
      ASSERT_EQ(file->kind, EntryKind::kFile);
      EXPECT_EQ(file->size, static_cast<std::uint64_t>(st.st_size));
      EXPECT_EQ(file->sha256, sha);
      EXPECT_EQ(file->mode, mode);
      EXPECT_EQ(Sha(x.Read(rel)), sha);
    } else {
      const EntryKind kind = S_ISCHR(st.st_mode)    ? EntryKind::kCharDevice
                             : S_ISBLK(st.st_mode)  ? EntryKind::kBlockDevice
                             : S_ISFIFO(st.st_mode) ? EntryKind::kFifo
                                                    : EntryKind::kSocket;
      EXPECT_EQ(entry->kind, kind);
      EXPECT_EQ(entry->mode, mode);
    }
  }
  EXPECT_EQ(x.entries.size(), expected);
}

// Test-only JFFS2 node builder, little-endian: the CRCs computed independently of the reader.
std::uint32_t JffsCrc(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  return ~static_cast<std::uint32_t>(crc32_z(0xFFFFFFFFUL, data, size));
}

void Put16(Bytes& out, std::size_t at, std::uint16_t value) {
  out[at] = static_cast<std::uint8_t>(value);
  out[at + 1] = static_cast<std::uint8_t>(value >> 8);
}
void Put32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

Bytes Header(std::uint16_t type, std::size_t totlen) {
  Bytes node(totlen, 0);
  Put16(node, 0, 0x1985);
  Put16(node, 2, type);
  Put32(node, 4, static_cast<std::uint32_t>(totlen));
  Put32(node, 8, JffsCrc(node.data(), 8));
  return node;
}

void Pad4(Bytes& node) {
  while (node.size() % 4 != 0) node.push_back(0xff);
}

Bytes Dirent(std::uint32_t pino, std::uint32_t version, std::uint32_t ino, std::uint8_t type,
             const std::string& name) {
  Bytes node = Header(0xE001, 40 + name.size());
  Put32(node, 12, pino);
  Put32(node, 16, version);
  Put32(node, 20, ino);
  node[28] = static_cast<std::uint8_t>(name.size());
  node[29] = type;
  std::memcpy(node.data() + 40, name.data(), name.size());
  Put32(node, 32, JffsCrc(node.data(), 32));
  Put32(node, 36, JffsCrc(node.data() + 40, name.size()));
  Pad4(node);
  return node;
}

Bytes Inode(std::uint32_t ino, std::uint32_t version, std::uint32_t mode, std::uint32_t isize,
            std::uint32_t offset, std::uint32_t dsize, std::uint8_t compr, const Bytes& data) {
  Bytes node = Header(0xE002, 68 + data.size());
  Put32(node, 12, ino);
  Put32(node, 16, version);
  Put32(node, 20, mode);
  Put32(node, 28, isize);
  Put32(node, 44, offset);
  Put32(node, 48, static_cast<std::uint32_t>(data.size()));
  Put32(node, 52, dsize);
  node[56] = compr;
  std::copy(data.begin(), data.end(), node.begin() + 68);
  Put32(node, 60, JffsCrc(data.data(), data.size()));
  Put32(node, 64, JffsCrc(node.data(), 60));
  Pad4(node);
  return node;
}

void Append(Bytes& image, const Bytes& node) {
  image.insert(image.end(), node.begin(), node.end());
}

// Raw LZMA1 with JFFS2's fixed properties (lc 0, lp 0, pb 0, 8 KiB dictionary).
Bytes LzmaCompress(const Bytes& data) {
  lzma_options_lzma options{};
  EXPECT_FALSE(lzma_lzma_preset(&options, 6));
  options.dict_size = 0x2000;
  options.lc = 0;
  options.lp = 0;
  options.pb = 0;
  const lzma_filter filters[] = {{LZMA_FILTER_LZMA1, &options}, {LZMA_VLI_UNKNOWN, nullptr}};
  Bytes out(data.size() + 1024);
  std::size_t used = 0;
  EXPECT_EQ(lzma_raw_buffer_encode(filters, nullptr, data.data(), data.size(), out.data(), &used,
                                   out.size()),
            LZMA_OK);
  out.resize(used);
  return out;
}

struct DirentFacts {
  std::uint32_t pino = 0;
  std::uint32_t ino = 0;
  std::uint32_t version = 0;
};

// The directory entries of a little-endian image built by mkfs.jffs2, by name.
std::map<std::string, DirentFacts> ListDirents(const Bytes& image) {
  std::map<std::string, DirentFacts> out;
  for (std::size_t at = 0; at + 40 <= image.size(); at += 4) {
    if (image[at] != 0x85 || image[at + 1] != 0x19 || image[at + 2] != 0x01 ||
        image[at + 3] != 0xe0) {
      continue;
    }
    const std::size_t nsize = image[at + 28];
    const std::string name(reinterpret_cast<const char*>(&image[at + 40]), nsize);
    out[name] = DirentFacts{LoadLe<std::uint32_t>(image, at + 12).value(),
                            LoadLe<std::uint32_t>(image, at + 20).value(),
                            LoadLe<std::uint32_t>(image, at + 16).value()};
  }
  return out;
}

std::string Text(const Extraction& x, const std::string& path) {
  const Bytes bytes = x.Read(path);
  return {bytes.begin(), bytes.end()};
}

class Jffs2ImageTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Jffs2ImageTest, ExtractsEveryEntryOfAnImageBuiltByMkfsJffs2) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, GetParam());
  ASSERT_GT(image.size(), 4096u);
  const auto blob = Embed(image);
  const auto x = ProbeAndExtract(Jffs2(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, kPrefix);
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("byte_order"),
            GetParam().find("-b") != std::string::npos ? "big" : "little");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
}

INSTANTIATE_TEST_SUITE_P(EveryByteOrderEraseSizeAndCompressor, Jffs2ImageTest,
                         ::testing::Values("-l", "-b", "-l -e 128KiB", "-b -e 128KiB", "-l -p",
                                           "-b -p -e 128KiB", "-l -n", "-b -n -e 128KiB",
                                           "-l -x zlib", "-b -x zlib", "-l -X lzo -x zlib",
                                           "-b -X lzo", "-l -m none", "-b -m none",
                                           "-l -m size -X lzo", "-b -m size -X lzo -e 128KiB",
                                           "-l -s 8192"));

TEST(Jffs2Format, ReportsTheCompressorsAndTheEraseSize) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-l -e 128KiB -m size -X lzo");
  const auto x = ProbeAndExtract(Jffs2(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->meta.at("erase_size"), "131072");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  const std::string compression = x.meta.at("compression");
  for (const char* name : {"zlib", "lzo", "none"}) {
    EXPECT_NE(compression.find(name), std::string::npos) << compression;
  }
  const auto rtime = MakeImage(scratch, "-l -x zlib");
  ScratchDir out;
  const auto y = ProbeAndExtract(Jffs2(), rtime, 0, out);
  EXPECT_NE(y.meta.at("compression").find("rtime"), std::string::npos);
}

TEST(Jffs2Format, ReadsAnImageWithSummaryNodes) {
  ScratchDir scratch;
  const auto plain = MakeImage(scratch, "-l -e 64KiB");
  const fs::path summed = scratch.path() / "summed.jffs2";
  ASSERT_EQ(RunCommand("sumtool -l -e 65536 -i " + Quoted(scratch.path() / "image.jffs2") + " -o " +
                       Quoted(summed) + " >/dev/null 2>&1"),
            0);
  const auto image = ReadFileBytes(summed);
  ASSERT_GT(image.size(), plain.size());
  const auto x = ProbeAndExtract(Jffs2(), Embed(image), kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_EQ(x.chunk->meta.at("erase_size"), "65536");
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, scratch.path() / "root");
}

TEST(Jffs2Format, EndsAtTheFilesystemSoThatThePartitionAfterItIsCarved) {
  ScratchDir scratch;
  // Padded to the end of its last 64 KiB erase block, then a SquashFS partition.
  const auto image = MakeImage(scratch, "-b -p -e 64KiB");
  ASSERT_EQ(image.size() % 65536, 0u);
  const fs::path squashfs = scratch.path() / "next.sqfs";
  ASSERT_EQ(RunCommand("mksquashfs " + Quoted(scratch.path() / "root/etc") + " " +
                       Quoted(squashfs) + " -noappend -quiet -no-progress >/dev/null 2>&1"),
            0);
  Bytes blob(65536, 0xff);  // erased flash before it too
  blob.insert(blob.end(), image.begin(), image.end());
  const auto next = ReadFileBytes(squashfs);
  blob.insert(blob.end(), next.begin(), next.end());
  const auto x = ProbeAndExtract(Jffs2(), blob, 65536, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);

  // Unpadded, directly followed by other data: the chunk ends after the last node.
  const auto tight = MakeImage(scratch, "-l");
  Bytes tight_blob = Embed(tight, 0x00);
  tight_blob.insert(tight_blob.end(), next.begin(), next.end());
  const auto chunk = Jffs2().Probe(tight_blob, kPrefix);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->length, tight.size());  // the zeros stop short of the erase-block boundary
  const auto cut = Jffs2().Probe(Embed(tight, 0x77), kPrefix);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->length, tight.size());
}

TEST(Jffs2Format, ReadsTheSharedSamplesInBothByteOrders) {
  for (const char* name : {"fact_jffs2_le.img", "fact_jffs2_be.img"}) {
    SCOPED_TRACE(name);
    const fs::path sample = testing::SharedSamplePath(std::string("jffs2/") + name);
    if (sample.empty()) GTEST_SKIP() << "shared samples are not available";
    ScratchDir scratch;
    const auto bytes = ReadFileBytes(sample);
    const auto x = ProbeAndExtract(Jffs2(), bytes, 0, scratch);
    ASSERT_TRUE(x.chunk.has_value());
    // Four files in the first erase block; the second one is erased and not claimed.
    EXPECT_EQ(x.chunk->length, 4096u);
    ASSERT_TRUE(x.status) << x.status.error().ToString();
    EXPECT_TRUE(x.gaps.empty()) << GapList(x);
    ASSERT_EQ(x.entries.size(), 4u);
    ASSERT_NE(x.Find("generic folder"), nullptr);
    EXPECT_EQ(x.Find("generic folder")->kind, EntryKind::kDirectory);
    EXPECT_EQ(Text(x, "generic folder/test file 3_.txt"), "The third test file!");
    ASSERT_NE(x.Find("testfile1"), nullptr);
    EXPECT_EQ(x.Find("testfile1")->size, 62u);
    ASSERT_NE(x.Find("testfile2"), nullptr);
    EXPECT_EQ(x.Find("testfile2")->size, 28u);
    EXPECT_EQ(x.Find("testfile2")->mode, 0664u);
  }
}

TEST(Jffs2Format, NewerNodesOverwriteTruncateRenameAndDelete) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "small";
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root / "etc") + "; cd " + Quoted(root) +
                       "; head -c 20000 /bin/busybox > etc/data.bin"
                       "; echo 0123456789abcdef > etc/cut.txt; echo secret > etc/shadow"
                       "; echo old-name > etc/old.txt; echo stays > etc/stays.txt"),
            0);
  auto image = MakeImage(scratch, "-l -n", "small");
  const auto names = ListDirents(image);
  const DirentFacts data = names.at("data.bin");
  const DirentFacts cut = names.at("cut.txt");
  const DirentFacts old = names.at("old.txt");
  const std::uint32_t etc = data.pino;
  const Bytes busybox = ReadFileBytes("/bin/busybox");
  Bytes expected(busybox.begin(), busybox.begin() + 20000);

  // Bytes 100..299 of data.bin overwritten, uncompressed.
  Append(image, Inode(data.ino, 100, 0100644, 20000, 100, 200, 0, Bytes(200, 'A')));
  std::fill(expected.begin() + 100, expected.begin() + 300, 'A');
  // Bytes 5000..8999 overwritten, zlib.
  Bytes zlib_data(4000, 'Z');
  Bytes packed(compressBound(zlib_data.size()));
  uLongf packed_size = packed.size();
  ASSERT_EQ(compress2(packed.data(), &packed_size, zlib_data.data(), zlib_data.size(), 9), Z_OK);
  packed.resize(packed_size);
  Append(image, Inode(data.ino, 101, 0100644, 20000, 5000, 4000, 6, packed));
  std::fill(expected.begin() + 5000, expected.begin() + 9000, 'Z');
  // An even newer node with damaged data: dropped, the older data shows.
  Bytes damaged = Inode(data.ino, 102, 0100644, 20000, 100, 4, 0, Bytes{'B', 'A', 'D', '!'});
  damaged[68] = 'X';
  Append(image, damaged);
  // An obsolete node (accurate bit cleared in place, as the kernel does): ignored.
  Bytes obsolete = Inode(data.ino, 103, 0100644, 20000, 0, 4, 0, Bytes{'O', 'B', 'S', '!'});
  obsolete[3] = 0xc0;
  Append(image, obsolete);
  // cut.txt truncated to 4 bytes, then extended to 8 with a hole: bytes 4..7 are zeros.
  Append(image, Inode(cut.ino, 50, 0100600, 4, 0, 0, 0, {}));
  Append(image, Inode(cut.ino, 51, 0100600, 8, 4, 4, 1, {}));
  // shadow deleted; old.txt renamed to new.txt (new name, then the old one deleted).
  Append(image, Dirent(etc, 200, 0, 0, "shadow"));
  Append(image, Dirent(etc, 201, old.ino, 8, "new.txt"));
  Append(image, Dirent(etc, 202, 0, 8, "old.txt"));
  // A new file compressed with JFFS2's LZMA, one with dynrubin, one with an unknown compressor.
  const Bytes text(3000, 'L');
  Append(image, Inode(5000, 1, 0100644, 3000, 0, 3000, 8, LzmaCompress(text)));
  Append(image, Dirent(etc, 203, 5000, 8, "lzma.txt"));
  Append(image, Inode(5001, 1, 0100644, 16, 0, 16, 5, Bytes(10, 1)));
  Append(image, Dirent(etc, 204, 5001, 8, "rubin.txt"));
  Append(image, Inode(5002, 1, 0100644, 16, 0, 16, 42, Bytes(10, 1)));
  Append(image, Dirent(etc, 205, 5002, 8, "odd.txt"));

  const auto x = ProbeAndExtract(Jffs2(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_EQ(x.Read("etc/data.bin"), expected);
  EXPECT_EQ(x.Find("etc/cut.txt")->mode, 0600u);
  EXPECT_EQ(x.Read("etc/cut.txt"), (Bytes{'0', '1', '2', '3', 0, 0, 0, 0}));
  EXPECT_EQ(x.Find("etc/shadow"), nullptr);
  EXPECT_EQ(x.Find("etc/old.txt"), nullptr);
  EXPECT_EQ(Text(x, "etc/new.txt"), "old-name\n");
  EXPECT_EQ(Text(x, "etc/stays.txt"), "stays\n");
  EXPECT_EQ(x.Read("etc/lzma.txt"), text);
  EXPECT_EQ(x.meta.at("deleted_names"), "2");
  EXPECT_EQ(x.meta.at("unnamed_inodes"), "1");  // shadow's data is still on flash
  EXPECT_EQ(x.meta.at("obsolete_nodes"), "1");
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "data CRC mismatch")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsupported, "unsupported compression dynrubin")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kUnsupported, "unsupported compression unknown-42")) << GapList(x);
  EXPECT_EQ(x.Read("etc/rubin.txt"), Bytes(16, 0));  // listed, its bytes unknown
}

TEST(Jffs2Format, OverlayKeepsTheNewestBytesAndCutsAtEachTruncation) {
  using formats::jffs2::DataNode;
  std::vector<DataNode> nodes;
  const auto add = [&](std::uint32_t version, std::uint32_t offset, std::uint32_t dsize,
                       std::uint32_t isize) {
    DataNode node;
    node.version = version;
    node.offset = offset;
    node.dsize = dsize;
    node.isize = isize;
    nodes.push_back(node);
  };
  add(1, 0, 4096, 4096);
  add(2, 4096, 4096, 8192);
  add(3, 1000, 100, 8192);  // overwrite inside node 1
  add(4, 0, 0, 6000);       // truncate into node 2
  add(5, 7000, 500, 7500);  // write past the end: 6000..6999 stays a hole
  const std::vector<std::uint32_t> order = {0, 1, 2, 3, 4};
  const auto pieces = formats::jffs2::Overlay(order, nodes);
  ASSERT_EQ(pieces.size(), 5u);
  const auto expect = [&](std::size_t i, std::uint32_t node, std::uint64_t start,
                          std::uint64_t length, std::uint32_t skip) {
    SCOPED_TRACE(i);
    EXPECT_EQ(pieces[i].node, node);
    EXPECT_EQ(pieces[i].start, start);
    EXPECT_EQ(pieces[i].length, length);
    EXPECT_EQ(pieces[i].skip, skip);
  };
  expect(0, 0, 0, 1000, 0);
  expect(1, 2, 1000, 100, 0);
  expect(2, 0, 1100, 2996, 1100);
  expect(3, 1, 4096, 6000 - 4096, 0);
  expect(4, 4, 7000, 500, 0);
}

TEST(Jffs2Format, PutsDirectoriesCutOffFromTheRootUnderLostAndFound) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "small";
  ASSERT_EQ(
      RunCommand("set -e; mkdir -p " + Quoted(root / "top/inner") + " " + Quoted(root / "gone") +
                 " " + Quoted(root / "other") + "; echo a > " + Quoted(root / "top/inner/a.txt") +
                 "; echo b > " + Quoted(root / "gone/b.txt")),
      0);
  auto image = MakeImage(scratch, "-l", "small");
  const auto names = ListDirents(image);
  const DirentFacts top = names.at("top");
  const DirentFacts inner = names.at("inner");
  const DirentFacts gone = names.at("gone");
  const DirentFacts other = names.at("other");
  // top moves into its own child (a loop); gone loses its name but keeps its entries.
  Append(image, Dirent(inner.ino, 300, top.ino, 4, "loop"));
  Append(image, Dirent(1, 301, 0, 4, "top"));
  Append(image, Dirent(1, 302, 0, 4, "gone"));
  // A name for an inode that does not exist, a name with a slash, and a second name for a
  // directory.
  Append(image, Dirent(1, 303, 7777, 8, "ghost"));
  Append(image, Dirent(1, 304, other.ino, 4, "a/b"));
  Append(image, Dirent(1, 305, other.ino, 4, "other-again"));

  const auto x = ProbeAndExtract(Jffs2(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "its own ancestor")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "not named by any live directory entry")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "'ghost' names inode 7777")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "invalid name")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "second name")) << GapList(x);
  const std::string loop_root = "lost+found/" + std::to_string(top.ino);
  const std::string gone_root = "lost+found/" + std::to_string(gone.ino);
  // Which member of the loop becomes the root depends on the walk; both files must be there.
  const bool via_top = x.Find(loop_root + "/inner/a.txt") != nullptr;
  const bool via_inner = x.Find("lost+found/" + std::to_string(inner.ino) + "/a.txt") != nullptr;
  EXPECT_TRUE(via_top || via_inner) << GapList(x);
  EXPECT_EQ(Text(x, gone_root + "/b.txt"), "b\n");
  EXPECT_EQ(x.Find("top"), nullptr);
  EXPECT_EQ(x.Find("gone"), nullptr);
  ASSERT_NE(x.Find("other"), nullptr);
  EXPECT_EQ(x.Find("other-again"), nullptr);
}

TEST(Jffs2Format, SkipsDamagedNodesAndReadsTheRest) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "small";
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root) + "; cd " + Quoted(root) +
                       "; cp /usr/sbin/dropbear aaa.bin; echo fine > zzz.txt"),
            0);
  const auto clean = MakeImage(scratch, "-l -e 64KiB", "small");
  // A header CRC broken in the middle of aaa.bin's nodes, and a data byte flipped elsewhere.
  auto image = clean;
  std::size_t header_at = 0;
  std::size_t data_at = 0;
  std::size_t seen = 0;
  for (std::size_t at = 0; at + 68 < image.size(); at += 4) {
    if (image[at] == 0x85 && image[at + 1] == 0x19 && image[at + 2] == 0x02 &&
        image[at + 3] == 0xe0) {
      ++seen;
      if (seen == 10) header_at = at;
      if (seen == 20) data_at = at;
    }
  }
  ASSERT_GT(data_at, 0u);
  image[header_at + 8] ^= 0xff;
  image[data_at + 80] ^= 0xff;
  const auto x = ProbeAndExtract(Jffs2(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "CRC does not match; skipped")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "data CRC mismatch")) << GapList(x);
  ASSERT_NE(x.Find("aaa.bin"), nullptr);
  EXPECT_EQ(x.Find("aaa.bin")->size, fs::file_size(root / "aaa.bin"));  // with two holes
  EXPECT_NE(x.Find("aaa.bin")->sha256, Sha(ReadFileBytes(root / "aaa.bin")));
  EXPECT_EQ(Text(x, "zzz.txt"), "fine\n");
}

TEST(Jffs2Format, SurvivesCutsAtManyPoints) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-b -e 64KiB");
  for (const std::size_t cut : {13ul, 100ul, 1000ul, 65536ul, 65540ul, image.size() / 3,
                                image.size() / 2 + 1, image.size() - 3}) {
    SCOPED_TRACE(cut);
    const Bytes part(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir out;
    const auto x = ProbeAndExtract(Jffs2(), part, 0, out);
    ASSERT_TRUE(x.chunk.has_value());
    EXPECT_LE(x.chunk->length, cut);
    EXPECT_TRUE(x.status) << x.status.error().ToString();
  }
  // Cut inside a node: the chunk runs to the end and says it is truncated.
  const Bytes part(image.begin(), image.begin() + 1000);
  const auto chunk = Jffs2().Probe(part, 0);
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->length, 1000u);
  ASSERT_EQ(chunk->issues.size(), 1u);
  EXPECT_EQ(chunk->issues[0].kind, GapKind::kTruncated);
}

TEST(Jffs2Format, RejectsRandomBytesWithPlantedMagics) {
  Bytes blob(1 << 16);
  std::mt19937 random(11);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  std::vector<std::uint64_t> offsets;
  const std::uint8_t magics[][4] = {
      {0x85, 0x19, 0x03, 0x20}, {0x19, 0x85, 0xe0, 0x02}, {0x85, 0x19, 0x01, 0xe0}};
  for (std::uint64_t offset = 0; offset + 200 < blob.size(); offset += 4093) {
    std::memcpy(&blob[offset], magics[offsets.size() % 3], 4);
    offsets.push_back(offset);
  }
  // A right header CRC on a directory entry whose node CRC is wrong is still refused.
  Bytes fake = Dirent(1, 1, 2, 8, "x");
  fake[33] ^= 1;
  std::copy(fake.begin(), fake.end(), blob.begin() + 40000);
  offsets.push_back(40000);
  for (const std::uint64_t offset : offsets) {
    EXPECT_FALSE(Jffs2().Probe(blob, offset).has_value()) << offset;
  }
  EXPECT_FALSE(Jffs2().Probe(blob, blob.size() - 3).has_value());
}

TEST(Jffs2Format, DecodesLargeFilesInSegmentsWrittenInOrder) {
  ScratchDir scratch;
  const fs::path root = scratch.path() / "big";
  ASSERT_EQ(RunCommand("set -e; mkdir -p " + Quoted(root) + "; cd " + Quoted(root) +
                       "; for i in 1 2 3; do cat /bin/busybox; done > busy3.bin"
                       "; head -c 3000001 /dev/urandom > random.bin"
                       "; truncate -s 5M holes.bin; head -c 300000 /dev/urandom | dd "
                       "of=holes.bin bs=4096 seek=600 conv=notrunc 2>/dev/null"),
            0);
  const auto image = MakeImage(scratch, "-l -e 128KiB", "big");
  const auto x = ProbeAndExtract(Jffs2(), image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, root);
}

TEST(Jffs2Format, SkipsAFileOverTheSizeLimitAndGoesOn) {
  ScratchDir scratch;
  const auto image = MakeImage(scratch, "-l");
  Limits limits;
  limits.max_file_bytes = 1 << 20;
  const auto x = ProbeAndExtract(Jffs2(), image, 0, scratch, limits);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kLimit, "'bin/busybox'")) << GapList(x);
  EXPECT_EQ(x.Find("bin/busybox"), nullptr);
  EXPECT_EQ(x.Find("bin/busybox-hard"), nullptr);
  ASSERT_NE(x.Find("etc/passwd"), nullptr);
  EXPECT_EQ(x.Find("etc/passwd")->kind, EntryKind::kFile);
}

TEST(Jffs2Format, ReplaysItsFuzzCorpusWithoutCrashing) {
  const fs::path corpus = fs::path(IOTMARK_SOURCE_DIR) / "fuzz/corpus/jffs2";
  if (!fs::exists(corpus)) GTEST_SKIP() << "no corpus";
  std::size_t seeds = 0;
  for (const auto& file : fs::directory_iterator(corpus)) {
    SCOPED_TRACE(file.path().string());
    ++seeds;
    const auto bytes = ReadFileBytes(file.path());
    {
      ScratchDir out;
      EXPECT_TRUE(ProbeAndExtract(Jffs2(), bytes, 0, out).chunk.has_value());
    }
    // As the carver would: at every magic, the seed cut short and with bytes flipped.
    Bytes damaged = bytes;
    for (std::size_t i = 97; i < damaged.size(); i += 211) damaged[i] ^= 0x5a;
    for (const Bytes& blob :
         {bytes, damaged, Bytes(bytes.begin(), bytes.begin() + bytes.size() / 3)}) {
      for (const Magic& magic : Jffs2().magics()) {
        const auto pattern = AsBytes(magic.bytes);
        for (auto at = std::search(blob.begin(), blob.end(), pattern.begin(), pattern.end());
             at != blob.end();
             at = std::search(at + 1, blob.end(), pattern.begin(), pattern.end())) {
          ScratchDir out;
          (void)ProbeAndExtract(Jffs2(), blob, static_cast<std::uint64_t>(at - blob.begin()), out);
        }
      }
    }
  }
  EXPECT_GE(seeds, 2u);
}

}  // namespace
}  // namespace iotmark::unpack
