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
std::unique_ptr<const Format> MakeUbiFormat();
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

constexpr std::size_t kPrefix = 5003;
constexpr std::size_t kSuffix = 7001;
constexpr std::size_t kPeb = 128 * 1024;
constexpr std::size_t kDataOffset = 4096;
constexpr std::size_t kVidOffset = 2048;

const Format& Ubi() {
  static const auto format = formats::MakeUbiFormat();
  return *format;
}

const Format& Ubifs() {
  static const auto format = formats::MakeUbifsFormat();
  return *format;
}

std::string Quoted(const fs::path& path) { return "'" + path.string() + "'"; }

std::uint32_t UbiCrc(const std::uint8_t* data, std::size_t size) {
  return static_cast<std::uint32_t>(~crc32_z(0, data, size));
}

void PutBe32(Bytes& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

void PutBe64(Bytes& out, std::size_t at, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (56 - 8 * i));
}

// Recomputes the CRC of the 64-byte header at `at`.
void ResealHeader(Bytes& image, std::size_t at) { PutBe32(image, at + 60, UbiCrc(&image[at], 60)); }

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

// The tree in the UBIFS volume: real binaries, symlinks, a hard link, an empty file, nested
// directories.
void BuildTree(const fs::path& root) {
  const std::string script = "set -e; mkdir -p " + Quoted(root) + "; cd " + Quoted(root) +
                             "; mkdir -p bin usr/sbin etc a/b/c/d"
                             "; cp /bin/busybox bin/busybox"
                             "; cp /usr/sbin/dropbear usr/sbin/dropbear"
                             "; ln -s busybox bin/sh"
                             "; ln -s ../../bin/busybox usr/sbin/telnetd"
                             "; ln bin/busybox bin/busybox-hard"
                             "; : > etc/empty"
                             "; printf 'root:x:0:0:root:/root:/bin/sh\\n' > etc/passwd"
                             "; echo deep > a/b/c/d/deep.txt";
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
    if (S_ISLNK(st.st_mode)) {
      EXPECT_EQ(entry->kind, EntryKind::kSymlink);
      EXPECT_EQ(entry->link_target, fs::read_symlink(it->path()).string());
    } else if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(entry->kind, EntryKind::kDirectory);
      EXPECT_EQ(entry->mode, st.st_mode & 07777);
    } else {
      const auto content = ReadFileBytes(it->path());
      const model::InventoryEntry* file = entry;
      if (entry->kind == EntryKind::kHardlink) file = x.Find(entry->link_target);
      ASSERT_NE(file, nullptr);
      ASSERT_EQ(file->kind, EntryKind::kFile);
      EXPECT_EQ(file->size, content.size());
      EXPECT_EQ(file->sha256, Sha256::Hex(content));
      EXPECT_EQ(file->mode, st.st_mode & 07777);
      EXPECT_EQ(x.Read(rel), content);
    }
  }
  EXPECT_EQ(x.entries.size(), expected);
}

// A UBI image as ubinize makes it from the tree: a dynamic volume "rootfs" holding a UBIFS
// (LZO) and a static volume "kernel" holding `blob`.
struct UbiImage {
  Bytes image;
  Bytes ubifs;
  Bytes blob;
  fs::path root;
};

UbiImage MakeImage(const ScratchDir& scratch, std::size_t blob_size = 300000) {
  UbiImage out;
  out.root = scratch.path() / "root";
  BuildTree(out.root);
  const fs::path ubifs = scratch.path() / "rootfs.ubifs";
  const fs::path blob = scratch.path() / "kernel.bin";
  const fs::path ini = scratch.path() / "ubi.ini";
  const fs::path image = scratch.path() / "image.ubi";
  EXPECT_EQ(RunCommand("mkfs.ubifs -x lzo -m 2048 -e 126976 -c 2048 -r " + Quoted(out.root) + " " +
                       Quoted(ubifs) + " >/dev/null 2>&1"),
            0);
  EXPECT_EQ(RunCommand("head -c " + std::to_string(blob_size) + " /dev/urandom > " + Quoted(blob)),
            0);
  const std::string config = "[rootfs]\nmode=ubi\nimage=" + ubifs.string() +
                             "\nvol_id=0\nvol_size=20MiB\nvol_type=dynamic\nvol_name=rootfs\n"
                             "vol_flags=autoresize\n\n[kernel]\nmode=ubi\nimage=" +
                             blob.string() +
                             "\nvol_id=3\nvol_type=static\nvol_name=kernel\nvol_alignment=1\n";
  testing::WriteFileBytes(ini, AsBytes(config));
  EXPECT_EQ(RunCommand("ubinize -o " + Quoted(image) + " -m 2048 -p 128KiB -s 512 -O 2048 " +
                       Quoted(ini) + " >/dev/null 2>&1"),
            0);
  out.image = ReadFileBytes(image);
  out.ubifs = ReadFileBytes(ubifs);
  out.blob = ReadFileBytes(blob);
  return out;
}

Bytes Embed(const Bytes& image) {
  Bytes blob(kPrefix);
  std::mt19937 random(3);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  blob.insert(blob.end(), image.begin(), image.end());
  for (std::size_t i = 0; i < kSuffix; ++i) blob.push_back(static_cast<std::uint8_t>(random()));
  return blob;
}

// The PEB holding LEB `lnum` of volume `vol_id`.
std::size_t FindPeb(const Bytes& image, std::uint32_t vol_id, std::uint32_t lnum) {
  for (std::size_t at = 0; at + kPeb <= image.size(); at += kPeb) {
    const std::size_t vid = at + kVidOffset;
    const auto id = LoadBe<std::uint32_t>(image, vid + 8).value_or(~0u);
    const auto leb = LoadBe<std::uint32_t>(image, vid + 12).value_or(~0u);
    if (id == vol_id && leb == lnum) return at;
  }
  ADD_FAILURE() << "no PEB for volume " << vol_id << " LEB " << lnum;
  return 0;
}

TEST(UbiFormat, ExtractsBothVolumesOfAnImageInsideOtherBytes) {
  ScratchDir scratch;
  const UbiImage built = MakeImage(scratch);
  ASSERT_EQ(built.image.size() % kPeb, 0u);
  const Bytes blob = Embed(built.image);
  const auto x = ProbeAndExtract(Ubi(), blob, kPrefix, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->offset, kPrefix);
  EXPECT_EQ(x.chunk->length, built.image.size());  // exact, so what follows is carved
  EXPECT_TRUE(x.chunk->issues.empty());
  EXPECT_EQ(x.chunk->meta.at("peb_size"), std::to_string(kPeb));
  EXPECT_EQ(x.chunk->meta.at("vid_hdr_offset"), std::to_string(kVidOffset));
  EXPECT_EQ(x.chunk->meta.at("data_offset"), std::to_string(kDataOffset));
  EXPECT_EQ(x.chunk->meta.at("pebs"), std::to_string(built.image.size() / kPeb));
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);

  ASSERT_EQ(x.entries.size(), 2u);
  const auto* rootfs = x.Find("rootfs.ubifs");
  ASSERT_NE(rootfs, nullptr);
  EXPECT_EQ(rootfs->sha256, Sha256::Hex(built.ubifs));  // the UBIFS image, LEB for LEB
  const auto* kernel = x.Find("kernel");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(kernel->size, built.blob.size());  // a static volume: exactly its data
  EXPECT_EQ(kernel->sha256, Sha256::Hex(built.blob));

  EXPECT_EQ(x.meta.at("volumes"), "2");
  EXPECT_EQ(x.meta.at("volume.0.name"), "rootfs");
  EXPECT_EQ(x.meta.at("volume.0.id"), "0");
  EXPECT_EQ(x.meta.at("volume.0.type"), "dynamic");
  EXPECT_EQ(x.meta.at("volume.0.size"), std::to_string(built.ubifs.size()));
  EXPECT_EQ(x.meta.at("volume.0.reserved_pebs"), "166");  // 20 MiB in 124 KiB LEBs
  EXPECT_EQ(x.meta.at("volume.0.autoresize"), "yes");
  EXPECT_EQ(x.meta.at("volume.0.file"), "rootfs.ubifs");
  EXPECT_EQ(x.meta.at("volume.1.name"), "kernel");
  EXPECT_EQ(x.meta.at("volume.1.id"), "3");
  EXPECT_EQ(x.meta.at("volume.1.type"), "static");
  EXPECT_EQ(x.meta.at("volume.1.size"), std::to_string(built.blob.size()));
}

TEST(UbiFormat, TheUbifsVolumeItWritesExtractsToTheOriginalTree) {
  ScratchDir scratch;
  const UbiImage built = MakeImage(scratch);
  const auto ubi = ProbeAndExtract(Ubi(), built.image, 0, scratch);
  ASSERT_TRUE(ubi.status) << ubi.status.error().ToString();
  const Bytes volume = ubi.Read("rootfs.ubifs");
  ASSERT_FALSE(volume.empty());
  ScratchDir inner;
  const auto x = ProbeAndExtract(Ubifs(), volume, 0, inner);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, volume.size());
  EXPECT_TRUE(x.chunk->issues.empty());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  ExpectTreeMatches(x, built.root);
}

TEST(UbiFormat, ReadsTheSharedSampleWhoseStaticVolumeHoldsAUbifs) {
  const fs::path sample = testing::SharedSamplePath("ubi/fact_ubi.img");
  if (sample.empty()) GTEST_SKIP() << "shared sample ubi/fact_ubi.img is absent";
  const Bytes image = ReadFileBytes(sample);
  ScratchDir scratch;
  const auto x = ProbeAndExtract(Ubi(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, image.size());
  EXPECT_EQ(x.chunk->meta.at("peb_size"), "1024");  // a small NOR part
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  EXPECT_EQ(x.meta.at("volume.0.name"), "rootfs");
  EXPECT_EQ(x.meta.at("volume.0.id"), "1");
  EXPECT_EQ(x.meta.at("volume.0.type"), "static");
  ASSERT_EQ(x.entries.size(), 1u);
  EXPECT_EQ(x.entries[0].path, "rootfs.ubifs");
  const fs::path ubifs = testing::SharedSamplePath("ubifs/fact_test.ubifs");
  if (!ubifs.empty()) {
    EXPECT_EQ(x.Read("rootfs.ubifs"), ReadFileBytes(ubifs));
  }
}

TEST(UbiFormat, NamesVolumesByIdWhenTheVolumeTableIsDamaged) {
  ScratchDir scratch;
  UbiImage built = MakeImage(scratch);
  // Both copies of the table: break the CRC of record 0 and record 3.
  for (std::uint32_t lnum = 0; lnum < 2; ++lnum) {
    const std::size_t table = FindPeb(built.image, 0x7fffefff, lnum) + kDataOffset;
    built.image[table + 16] ^= 0x20;
    built.image[table + 3 * 172 + 16] ^= 0x20;
  }
  const auto x = ProbeAndExtract(Ubi(), built.image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "records 0, 3 are damaged")) << GapList(x);
  ASSERT_NE(x.Find("vol0.ubifs"), nullptr);
  EXPECT_EQ(x.Find("vol0.ubifs")->sha256, Sha256::Hex(built.ubifs));
  ASSERT_NE(x.Find("vol3"), nullptr);
  EXPECT_EQ(x.Find("vol3")->sha256, Sha256::Hex(built.blob));
}

TEST(UbiFormat, UsesTheIntactCopyOfTheVolumeTable) {
  ScratchDir scratch;
  UbiImage built = MakeImage(scratch);
  const std::size_t peb = FindPeb(built.image, 0x7fffefff, 0);
  built.image[peb + kDataOffset + 16] ^= 0x20;  // record 0's name
  const auto x = ProbeAndExtract(Ubi(), built.image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(
      HasGap(x, GapKind::kCorrupt,
             "a copy of the volume table (PEB " + std::to_string(peb / kPeb) + ") is damaged"))
      << GapList(x);
  EXPECT_EQ(x.gaps.size(), 1u) << GapList(x);
  EXPECT_NE(x.Find("rootfs.ubifs"), nullptr);
  EXPECT_NE(x.Find("kernel"), nullptr);
}

TEST(UbiFormat, FillsALebWithADamagedVidHeaderWithErasedBytesAndSaysSo) {
  ScratchDir scratch;
  UbiImage built = MakeImage(scratch);
  const std::size_t peb = FindPeb(built.image, 3, 1);
  built.image[peb + kVidOffset + 20] ^= 0x01;  // data_size, without fixing the CRC
  const auto x = ProbeAndExtract(Ubi(), built.image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "volume identifier header is damaged")) << GapList(x);
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "lacks 1 of its 3 LEBs")) << GapList(x);
  const Bytes kernel = x.Read("kernel");
  ASSERT_EQ(kernel.size(), built.blob.size());
  const std::size_t leb = kPeb - kDataOffset;
  EXPECT_TRUE(std::equal(built.blob.begin(), built.blob.begin() + leb, kernel.begin()));
  EXPECT_TRUE(std::all_of(kernel.begin() + leb, kernel.begin() + 2 * leb,
                          [](std::uint8_t b) { return b == 0xff; }));
  EXPECT_TRUE(std::equal(built.blob.begin() + 2 * leb, built.blob.end(), kernel.begin() + 2 * leb));
  // The other volume is whole.
  EXPECT_EQ(x.Find("rootfs.ubifs")->sha256, Sha256::Hex(built.ubifs));
}

// Appends a copy of the PEB at `peb` holding different data with sequence number `sqnum`; with
// `good_crc` false its data CRC does not match.
void AppendNewerCopy(Bytes& image, std::size_t peb, std::uint64_t sqnum, std::uint8_t fill,
                     bool good_crc) {
  Bytes copy(image.begin() + static_cast<std::ptrdiff_t>(peb),
             image.begin() + static_cast<std::ptrdiff_t>(peb + kPeb));
  const std::uint32_t data_size = LoadBe<std::uint32_t>(copy, kVidOffset + 20).value();
  // Dynamic volumes (data_size 0) get new bytes at the start of the LEB.
  const std::size_t changed = data_size != 0 ? data_size : 1000;
  std::fill(copy.begin() + kDataOffset, copy.begin() + kDataOffset + changed, fill);
  PutBe64(copy, kVidOffset + 40, sqnum);
  PutBe32(copy, kVidOffset + 32, UbiCrc(&copy[kDataOffset], data_size) ^ (good_crc ? 0 : 1));
  ResealHeader(copy, kVidOffset);
  image.insert(image.end(), copy.begin(), copy.end());
}

TEST(UbiFormat, TakesTheNewestCopyOfAnLebWhoseDataChecksOut) {
  ScratchDir scratch;
  UbiImage built = MakeImage(scratch);
  AppendNewerCopy(built.image, FindPeb(built.image, 3, 0), 7, 0xab, true);
  const auto x = ProbeAndExtract(Ubi(), built.image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_EQ(x.chunk->length, built.image.size());
  EXPECT_TRUE(x.gaps.empty()) << GapList(x);
  const Bytes kernel = x.Read("kernel");
  ASSERT_EQ(kernel.size(), built.blob.size());
  EXPECT_EQ(kernel[0], 0xab);
  EXPECT_EQ(kernel[kPeb - kDataOffset - 1], 0xab);
  EXPECT_EQ(kernel[kPeb - kDataOffset], built.blob[kPeb - kDataOffset]);
}

TEST(UbiFormat, FallsBackToTheOlderCopyWhenTheNewestIsDamaged) {
  ScratchDir scratch;
  UbiImage built = MakeImage(scratch);
  AppendNewerCopy(built.image, FindPeb(built.image, 3, 0), 7, 0xab, false);
  const auto x = ProbeAndExtract(Ubi(), built.image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "the newest copy is damaged")) << GapList(x);
  EXPECT_EQ(x.Find("kernel")->sha256, Sha256::Hex(built.blob));
}

TEST(UbiFormat, ReportsTwoDifferentCopiesWithTheSameSequenceNumber) {
  ScratchDir scratch;
  UbiImage built = MakeImage(scratch);
  AppendNewerCopy(built.image, FindPeb(built.image, 0, 5), 0, 0x11, true);
  const auto x = ProbeAndExtract(Ubi(), built.image, 0, scratch);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "same sequence number")) << GapList(x);
}

TEST(UbiFormat, KeepsGoingPastADamagedEraseCounterHeader) {
  ScratchDir scratch;
  UbiImage built = MakeImage(scratch);
  const std::size_t peb = FindPeb(built.image, 0, 3);
  built.image[peb + 8] ^= 0x40;  // erase counter, without fixing the CRC
  const auto x = ProbeAndExtract(Ubi(), built.image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, built.image.size());
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kCorrupt, "erase counter header is damaged")) << GapList(x);
  // UBI keeps the data of a PEB whose VID header is intact.
  EXPECT_EQ(x.Find("rootfs.ubifs")->sha256, Sha256::Hex(built.ubifs));
}

TEST(UbiFormat, ClipsATruncatedImageAndSaysWhatIsMissing) {
  ScratchDir scratch;
  UbiImage built = MakeImage(scratch);
  // Cut inside the static volume's last PEB.
  const std::size_t cut = FindPeb(built.image, 3, 2) + kDataOffset + 1000;
  ASSERT_LT(cut, built.image.size());
  const Bytes image(built.image.begin(), built.image.begin() + static_cast<std::ptrdiff_t>(cut));
  const auto x = ProbeAndExtract(Ubi(), image, 0, scratch);
  ASSERT_TRUE(x.chunk.has_value());
  EXPECT_EQ(x.chunk->length, cut);
  ASSERT_EQ(x.chunk->issues.size(), 1u);
  EXPECT_EQ(x.chunk->issues[0].kind, GapKind::kTruncated);
  ASSERT_TRUE(x.status) << x.status.error().ToString();
  EXPECT_TRUE(HasGap(x, GapKind::kTruncated, "cut off")) << GapList(x);
  ASSERT_NE(x.Find("kernel"), nullptr);
  EXPECT_EQ(x.Find("kernel")->size, built.blob.size());
}

TEST(UbiFormat, SurvivesCutsAtManyPoints) {
  ScratchDir scratch;
  const UbiImage built = MakeImage(scratch, 5000);
  for (std::size_t cut = 10; cut < built.image.size(); cut += built.image.size() / 23 + 4093) {
    SCOPED_TRACE(cut);
    const Bytes image(built.image.begin(), built.image.begin() + static_cast<std::ptrdiff_t>(cut));
    ScratchDir out;
    const auto x = ProbeAndExtract(Ubi(), image, 0, out);
    if (!x.chunk) continue;  // fewer than two PEBs: not recognisable
    EXPECT_LE(x.chunk->length, cut);
    EXPECT_TRUE(x.status) << x.status.error().ToString();
  }
}

TEST(UbiFormat, RejectsRandomBytesWithPlantedMagics) {
  Bytes blob(1 << 20);
  std::mt19937 random(5);
  for (auto& byte : blob) byte = static_cast<std::uint8_t>(random());
  std::vector<std::size_t> offsets;
  for (std::size_t at = 0; at + 64 < blob.size(); at += 65536) {
    std::memcpy(&blob[at], "UBI#\x01", 5);
    offsets.push_back(at);
  }
  for (const std::size_t at : offsets) EXPECT_FALSE(Ubi().Probe(blob, at).has_value()) << at;
}

TEST(UbiFormat, RejectsASingleValidEraseCounterHeader) {
  ScratchDir scratch;
  const UbiImage built = MakeImage(scratch, 5000);
  Bytes image(built.image.begin(), built.image.begin() + kPeb);
  EXPECT_FALSE(Ubi().Probe(image, 0).has_value());
  // Followed by random bytes instead of a second PEB.
  std::mt19937 random(9);
  for (std::size_t i = 0; i < 4 * kPeb; ++i) image.push_back(static_cast<std::uint8_t>(random()));
  EXPECT_FALSE(Ubi().Probe(image, 0).has_value());
}

TEST(UbiFormat, SurvivesRandomDamageToItsHeaders) {
  ScratchDir scratch;
  const UbiImage built = MakeImage(scratch, 5000);
  std::mt19937 random(13);
  for (int round = 0; round < 60; ++round) {
    Bytes image = built.image;
    for (int i = 0; i < 6; ++i) {
      const std::size_t peb = random() % (image.size() / kPeb);
      const std::size_t at = peb * kPeb + (random() % 2 == 0 ? 0 : kVidOffset) + random() % 64;
      image[at] = static_cast<std::uint8_t>(random());
      if (random() % 2 == 0) ResealHeader(image, at - at % 64);
    }
    ScratchDir out;
    const auto x = ProbeAndExtract(Ubi(), image, 0, out);
    if (!x.chunk) continue;
    EXPECT_LE(x.chunk->length, image.size());
    EXPECT_TRUE(x.status) << round;
  }
}

}  // namespace
}  // namespace iotmark::unpack
