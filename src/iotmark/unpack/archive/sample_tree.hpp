// Test inputs shared by the archive formats' tests: a small firmware-like tree of real Debian
// binaries (a setuid busybox, dropbear, a symlink) to archive with the real tools, foreign bytes
// to embed an archive between, and a file-by-file check of what came out. Header-only: test
// support outside a testing/ folder is not part of any library.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "iotmark/base/sha256.hpp"
#include "iotmark/model/extraction.hpp"
#include "iotmark/unpack/testing/format_harness.hpp"

namespace iotmark::unpack::archive::testing {

struct SampleFile {
  std::string path;  // relative to the tree's root
  std::uint64_t size = 0;
  std::string sha256;
  std::uint32_t mode = 0;
};

struct SampleTree {
  std::filesystem::path root;  // the directory to archive
  std::vector<SampleFile> files;
  std::string link = "bin/sh";  // a symlink to "busybox", beside it
  std::string link_target = "busybox";
};

inline bool HaveSampleBinaries() {
  return std::filesystem::exists("/bin/busybox") && std::filesystem::exists("/usr/sbin/dropbear");
}

// Builds <dir>/root with bin/busybox (setuid), usr/sbin/dropbear and bin/sh -> busybox.
inline SampleTree MakeSampleTree(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  SampleTree tree;
  tree.root = dir / "root";
  fs::create_directories(tree.root / "bin");
  fs::create_directories(tree.root / "usr/sbin");
  const struct {
    const char* source;
    const char* path;
    std::uint32_t mode;
  } kFiles[] = {{"/bin/busybox", "bin/busybox", 04755},
                {"/usr/sbin/dropbear", "usr/sbin/dropbear", 0755}};
  for (const auto& file : kFiles) {
    const auto bytes = iotmark::testing::ReadFileBytes(file.source);
    iotmark::testing::WriteFileBytes(tree.root / file.path, bytes);
    fs::permissions(tree.root / file.path, static_cast<fs::perms>(file.mode),
                    fs::perm_options::replace);
    tree.files.push_back({file.path, bytes.size(), Sha256::Hex(bytes), file.mode});
  }
  fs::create_symlink(tree.link_target, tree.root / tree.link);
  return tree;
}

// `archive` between `before` and `after` bytes of deterministic noise.
inline std::vector<std::uint8_t> Embed(const std::vector<std::uint8_t>& archive, std::size_t before,
                                       std::size_t after) {
  std::mt19937 noise(0x10ba);
  std::vector<std::uint8_t> blob;
  blob.reserve(before + archive.size() + after);
  for (std::size_t i = 0; i < before; ++i) blob.push_back(static_cast<std::uint8_t>(noise()));
  blob.insert(blob.end(), archive.begin(), archive.end());
  for (std::size_t i = 0; i < after; ++i) blob.push_back(static_cast<std::uint8_t>(noise()));
  return blob;
}

struct Expect {
  bool modes = true;       // the format keeps Unix modes (incl. setuid)
  bool symlink = true;     // the format stores symlinks
  bool basenames = false;  // the format keeps only file names (ar)
};

// Checks the sample tree's files (names, sizes, SHA-256 of the inventory and of the bytes on
// disk, modes) and its symlink (recorded and created as a link, never followed).
inline void ExpectSampleTree(const iotmark::testing::Extraction& x, const SampleTree& tree,
                             Expect expect = {}) {
  namespace fs = std::filesystem;
  for (const SampleFile& file : tree.files) {
    const std::string path = expect.basenames ? fs::path(file.path).filename().string() : file.path;
    SCOPED_TRACE(path);
    const model::InventoryEntry* entry = x.Find(path);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->kind, model::EntryKind::kFile);
    EXPECT_EQ(entry->size, file.size);
    EXPECT_EQ(entry->sha256, file.sha256);
    EXPECT_EQ(entry->type, "elf");
    if (expect.modes) {
      EXPECT_EQ(entry->mode, file.mode);
    }
    const auto bytes = x.Read(path);
    EXPECT_EQ(bytes.size(), file.size);
    EXPECT_EQ(Sha256::Hex(bytes), file.sha256);
    // setuid never reaches the disk.
    EXPECT_EQ(static_cast<unsigned>(fs::status(x.root / path).permissions()) & 07000, 0u);
  }
  if (expect.symlink) {
    const model::InventoryEntry* link = x.Find(tree.link);
    ASSERT_NE(link, nullptr);
    EXPECT_EQ(link->kind, model::EntryKind::kSymlink);
    EXPECT_EQ(link->link_target, tree.link_target);
    EXPECT_TRUE(fs::is_symlink(x.root / tree.link));
    EXPECT_EQ(fs::read_symlink(x.root / tree.link).string(), tree.link_target);
  }
}

inline bool HasGap(const iotmark::testing::Extraction& x, model::GapKind kind,
                   const std::string& words = "") {
  for (const model::Gap& gap : x.gaps) {
    if (gap.kind == kind && gap.reason.find(words) != std::string::npos) return true;
  }
  return false;
}

inline std::string GapList(const iotmark::testing::Extraction& x) {
  std::string out;
  for (const model::Gap& gap : x.gaps) {
    out += std::string(model::ToString(gap.kind)) + ": " + gap.reason + "\n";
  }
  return out;
}

}  // namespace iotmark::unpack::archive::testing
