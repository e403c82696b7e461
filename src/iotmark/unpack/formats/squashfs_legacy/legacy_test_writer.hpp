// Test only: a small writer of SquashFS 3.1 images in either byte order (stored, zlib, LZMA-alone
// or headerless LZMA blocks), so the reader can be tried on hard links, fragments, multi-block and
// sparse files, devices and both orders beyond what the few real 3.x samples hold (Debian ships
// no mksquashfs 3.x). Written from the on-disk description, like the reader; the real samples
// are what check that both agree with the real thing.
#pragma once

#include <lzma.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "iotmark/base/bytes.hpp"

namespace iotmark::testing::squashfs3 {

enum class Codec { kStored, kZlib, kLzmaAlone, kLzmaRaw };
enum class Kind { kDir, kFile, kSymlink, kHardlink, kCharDevice, kBlockDevice, kFifo, kSocket };

struct Node {
  std::string path;  // "a/b/file", parents listed before children
  Kind kind = Kind::kFile;
  std::string data;  // file content, symlink target, or the path a hard link names
  std::uint32_t mode = 0644;
};

struct Options {
  bool big_endian = false;
  Codec codec = Codec::kZlib;
  std::uint32_t block_log = 12;
  // Data and fragment blocks in another codec than the metadata (sqlzma mixes zlib and LZMA).
  std::optional<Codec> data_codec;
};

// Sets `count` bits at bit `pos` to `value` in the packed-bitfield convention of the byte order.
inline void PutBits(std::vector<std::uint8_t>& buf, std::size_t pos, std::size_t count,
                    std::uint64_t value, bool big_endian) {
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t bit = pos + i;
    const unsigned v = big_endian ? (value >> (count - 1 - i)) & 1U : (value >> i) & 1U;
    const unsigned shift = big_endian ? 7 - bit % 8 : bit % 8;
    buf[bit / 8] = static_cast<std::uint8_t>((buf[bit / 8] & ~(1U << shift)) | (v << shift));
  }
}

inline std::vector<std::uint8_t> RunLzma(lzma_stream& stream, ByteView in) {
  std::vector<std::uint8_t> out(in.size() * 2 + 1024);
  stream.next_in = in.data();
  stream.avail_in = in.size();
  stream.next_out = out.data();
  stream.avail_out = out.size();
  const lzma_ret ret = lzma_code(&stream, LZMA_FINISH);
  out.resize(ret == LZMA_STREAM_END ? out.size() - stream.avail_out : 0);
  lzma_end(&stream);
  return out;
}

// `in` compressed with `codec`; empty for kStored.
inline std::vector<std::uint8_t> Compress(Codec codec, ByteView in) {
  lzma_options_lzma options{};
  lzma_lzma_preset(&options, 6);
  options.dict_size = 1 << 16;
  lzma_stream stream = LZMA_STREAM_INIT;
  switch (codec) {
    case Codec::kStored:
      return {};
    case Codec::kZlib: {
      uLongf size = compressBound(static_cast<uLong>(in.size()));
      std::vector<std::uint8_t> out(size);
      if (compress2(out.data(), &size, in.data(), static_cast<uLong>(in.size()), 9) != Z_OK) {
        return {};
      }
      out.resize(size);
      return out;
    }
    case Codec::kLzmaAlone: {
      if (lzma_alone_encoder(&stream, &options) != LZMA_OK) return {};
      auto out = RunLzma(stream, in);
      // sqlzma states the real size where LZMA-alone allows "unknown".
      for (int i = 0; i < 8 && out.size() > 13; ++i) {
        out[5 + i] = static_cast<std::uint8_t>(std::uint64_t{in.size()} >> (8 * i));
      }
      return out;
    }
    case Codec::kLzmaRaw: {
      const lzma_filter filters[] = {{LZMA_FILTER_LZMA1, &options}, {LZMA_VLI_UNKNOWN, nullptr}};
      if (lzma_raw_encoder(&stream, filters) != LZMA_OK) return {};
      return RunLzma(stream, in);
    }
  }
  return {};
}

// Appends metadata blocks: 8 KiB of content each behind a 2-byte header.
class MetaWriter {
 public:
  MetaWriter(Codec codec, bool big_endian) : codec_(codec), big_endian_(big_endian) {}

  // Where the next byte goes: the start of its block in the table, and the offset in the block.
  [[nodiscard]] std::uint64_t Ref() const { return (out_.size() << 16) | pending_.size(); }
  void Append(ByteView bytes) {
    for (const std::uint8_t byte : bytes) {
      pending_.push_back(byte);
      if (pending_.size() == 8192) Flush();
    }
  }
  std::vector<std::uint8_t> Finish() {
    Flush();
    return out_;
  }
  [[nodiscard]] const std::vector<std::uint64_t>& block_starts() const { return starts_; }

 private:
  void Flush() {
    if (pending_.empty()) return;
    const auto packed = Compress(codec_, pending_);
    const bool stored = packed.empty() || packed.size() >= pending_.size();
    const auto& body = stored ? pending_ : packed;
    const auto header = static_cast<std::uint16_t>(body.size() | (stored ? 0x8000 : 0));
    starts_.push_back(out_.size());
    out_.push_back(static_cast<std::uint8_t>(big_endian_ ? header >> 8 : header & 0xff));
    out_.push_back(static_cast<std::uint8_t>(big_endian_ ? header & 0xff : header >> 8));
    out_.insert(out_.end(), body.begin(), body.end());
    pending_.clear();
  }

  Codec codec_;
  bool big_endian_;
  std::vector<std::uint8_t> pending_;
  std::vector<std::uint8_t> out_;
  std::vector<std::uint64_t> starts_;
};

class ImageWriter {
 public:
  ImageWriter(std::vector<Node> nodes, Options options)
      : nodes_(std::move(nodes)),
        options_(options),
        block_size_(std::uint32_t{1} << options.block_log),
        inodes_(options.codec, options.big_endian),
        listings_(options.codec, options.big_endian),
        image_(119, 0) {}

  std::vector<std::uint8_t> Write() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const std::string& path = nodes_[i].path;
      const auto slash = path.rfind('/');
      children_[slash == std::string::npos ? "" : path.substr(0, slash)].push_back(i);
      by_path_[path] = i;
      if (nodes_[i].kind == Kind::kHardlink) ++links_[Target(i)];
    }
    WriteData();
    const std::uint64_t root = WriteDirectory("", 0755);
    const auto inode_table = inodes_.Finish();
    const auto directory_table = listings_.Finish();
    const std::uint64_t inode_start = image_.size();
    Append(inode_table);
    const std::uint64_t directory_start = image_.size();
    Append(directory_table);
    MetaWriter fragments(options_.codec, options_.big_endian);
    for (const auto& [start, size] : fragment_entries_) {
      std::vector<std::uint8_t> entry(16, 0);
      PutBits(entry, 0, 64, start, options_.big_endian);
      PutBits(entry, 64, 32, size, options_.big_endian);
      fragments.Append(entry);
    }
    const std::uint64_t fragment_blocks = image_.size();
    Append(fragments.Finish());
    const std::uint64_t fragment_table = image_.size();
    for (const std::uint64_t start : fragments.block_starts()) Int(fragment_blocks + start, 8);
    const std::uint64_t uid_table = image_.size();
    Int(0, 4);
    const bool be = options_.big_endian;
    const auto put = [&](std::size_t byte, std::size_t bits, std::uint64_t value) {
      PutBits(image_, byte * 8, bits, value, be);
    };
    put(0, 32, 0x73717368);  // "hsqs" little-endian, "sqsh" big-endian
    put(4, 32, next_number_ - 1);
    put(28, 16, 3);
    put(30, 16, 1);
    put(34, 16, options_.block_log);
    put(36, 8, 0x40);  // duplicates removed; no check bytes, not exportable
    put(37, 8, 1);     // one uid, no gids: every inode's gid is its uid
    put(39, 32, 1136073600);
    put(43, 64, root);
    put(51, 32, block_size_);
    put(55, 32, fragment_entries_.size());
    put(63, 64, image_.size());
    put(71, 64, uid_table);
    put(87, 64, inode_start);
    put(95, 64, directory_start);
    put(103, 64, fragment_table);
    return image_;
  }

 private:
  struct FileData {
    std::uint64_t start = 0;
    std::vector<std::uint32_t> blocks;
    std::uint32_t fragment = 0xFFFFFFFF;
    std::uint32_t offset = 0;
  };

  void Append(const std::vector<std::uint8_t>& bytes) {
    image_.insert(image_.end(), bytes.begin(), bytes.end());
  }
  void Int(std::uint64_t value, std::size_t size) {
    std::vector<std::uint8_t> bytes(size, 0);
    PutBits(bytes, 0, size * 8, value, options_.big_endian);
    Append(bytes);
  }
  [[nodiscard]] std::size_t Target(std::size_t i) const {
    return nodes_[i].kind == Kind::kHardlink ? by_path_.at(nodes_[i].data) : i;
  }

  // A stored or compressed data block; its size word for the block list.
  std::uint32_t Block(ByteView data) {
    if (std::all_of(data.begin(), data.end(), [](std::uint8_t b) { return b == 0; }) &&
        data.size() == block_size_) {
      return 0;  // sparse
    }
    const auto packed = Compress(options_.data_codec.value_or(options_.codec), data);
    if (packed.empty() || packed.size() >= data.size()) {
      image_.insert(image_.end(), data.begin(), data.end());
      return static_cast<std::uint32_t>(data.size()) | (1U << 24);
    }
    Append(packed);
    return static_cast<std::uint32_t>(packed.size());
  }

  void FlushFragment() {
    if (fragment_.empty()) return;
    const std::uint64_t start = image_.size();
    fragment_entries_.emplace_back(start, Block(fragment_));
    fragment_.clear();
  }

  void WriteData() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].kind != Kind::kFile) continue;
      const ByteView content = AsBytes(nodes_[i].data);
      FileData& file = files_[i];
      file.start = image_.size();
      const std::size_t full = content.size() / block_size_;
      for (std::size_t b = 0; b < full; ++b) {
        file.blocks.push_back(Block(content.subspan(b * block_size_, block_size_)));
      }
      const ByteView tail = content.subspan(full * block_size_);
      if (tail.empty()) continue;
      if (fragment_.size() + tail.size() > block_size_) FlushFragment();
      file.fragment = static_cast<std::uint32_t>(fragment_entries_.size());
      file.offset = static_cast<std::uint32_t>(fragment_.size());
      fragment_.insert(fragment_.end(), tail.begin(), tail.end());
    }
    FlushFragment();
  }

  std::vector<std::uint8_t> Base(unsigned type, std::uint32_t mode, std::uint32_t number,
                                 std::size_t size) {
    std::vector<std::uint8_t> inode(size, 0);
    const bool be = options_.big_endian;
    PutBits(inode, 0, 4, type, be);
    PutBits(inode, 4, 12, mode, be);
    PutBits(inode, 24, 8, 255, be);  // gid = uid
    PutBits(inode, 32, 32, 1136073600, be);
    PutBits(inode, 64, 32, number, be);
    return inode;
  }

  struct Written {
    std::uint64_t ref;
    std::uint32_t number;
    unsigned type;  // as listed in a directory
  };

  Written WriteLeaf(std::size_t index) {
    const std::size_t i = Target(index);
    if (const auto found = written_.find(i); found != written_.end()) return found->second;
    const Node& node = nodes_[i];
    const bool be = options_.big_endian;
    const std::uint32_t number = next_number_++;
    const std::uint32_t nlink = 1 + links_[i];
    std::vector<std::uint8_t> inode;
    unsigned listed = 2;
    switch (node.kind) {
      case Kind::kFile: {
        const FileData& file = files_[i];
        const bool long_form = nlink > 1;
        inode = Base(long_form ? 9 : 2, node.mode, number, long_form ? 40 : 32);
        const std::size_t at = long_form ? 128 : 96;
        if (long_form) PutBits(inode, 96, 32, nlink, be);
        PutBits(inode, at, 64, file.start, be);
        PutBits(inode, at + 64, 32, file.fragment, be);
        PutBits(inode, at + 96, 32, file.offset, be);
        PutBits(inode, at + 128, long_form ? 64 : 32, node.data.size(), be);
        for (const std::uint32_t block : file.blocks) {
          std::vector<std::uint8_t> word(4, 0);
          PutBits(word, 0, 32, block, be);
          inode.insert(inode.end(), word.begin(), word.end());
        }
        break;
      }
      case Kind::kSymlink:
        listed = 3;
        inode = Base(3, 0777, number, 18);
        PutBits(inode, 96, 32, nlink, be);
        PutBits(inode, 128, 16, node.data.size(), be);
        inode.insert(inode.end(), node.data.begin(), node.data.end());
        break;
      case Kind::kBlockDevice:
      case Kind::kCharDevice:
        listed = node.kind == Kind::kBlockDevice ? 4 : 5;
        inode = Base(listed, node.mode, number, 18);
        PutBits(inode, 96, 32, nlink, be);
        PutBits(inode, 128, 16, 0x0501, be);
        break;
      default:
        listed = node.kind == Kind::kFifo ? 6 : 7;
        inode = Base(listed, node.mode, number, 16);
        PutBits(inode, 96, 32, nlink, be);
        break;
    }
    const Written written{inodes_.Ref(), number, listed};
    inodes_.Append(inode);
    return written_.emplace(i, written).first->second;
  }

  // Writes the directory at `path` after everything below it; returns its inode reference.
  std::uint64_t WriteDirectory(const std::string& path, std::uint32_t mode) {
    std::vector<std::pair<std::string, Written>> entries;
    for (const std::size_t i : children_[path]) {
      const Node& node = nodes_[i];
      const std::string name = node.path.substr(path.empty() ? 0 : path.size() + 1);
      if (node.kind == Kind::kDir) {
        const std::uint64_t ref = WriteDirectory(node.path, node.mode);
        entries.emplace_back(name, Written{ref, dir_numbers_[node.path], 1});
      } else {
        entries.emplace_back(name, WriteLeaf(i));
      }
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const std::uint64_t listing = listings_.Ref();
    std::size_t listing_bytes = 0;
    const bool be = options_.big_endian;
    for (std::size_t first = 0; first < entries.size();) {
      std::size_t last = first;
      while (last + 1 < entries.size() && last + 1 - first < 256 &&
             entries[last + 1].second.ref >> 16 == entries[first].second.ref >> 16) {
        ++last;
      }
      std::vector<std::uint8_t> header(9, 0);
      PutBits(header, 0, 8, last - first, be);
      PutBits(header, 8, 32, entries[first].second.ref >> 16, be);
      PutBits(header, 40, 32, entries[first].second.number, be);
      listings_.Append(header);
      listing_bytes += header.size();
      for (std::size_t e = first; e <= last; ++e) {
        const auto& [name, written] = entries[e];
        std::vector<std::uint8_t> entry(5, 0);
        PutBits(entry, 0, 13, written.ref & 0xFFFF, be);
        PutBits(entry, 13, 3, written.type, be);
        PutBits(entry, 16, 8, name.size() - 1, be);
        const auto delta = static_cast<std::int64_t>(written.number) -
                           static_cast<std::int64_t>(entries[first].second.number);
        PutBits(entry, 24, 16, static_cast<std::uint64_t>(delta) & 0xFFFF, be);
        listings_.Append(entry);
        listings_.Append(AsBytes(name));
        listing_bytes += entry.size() + name.size();
      }
      first = last + 1;
    }
    const std::uint32_t number = next_number_++;
    dir_numbers_[path] = number;
    std::vector<std::uint8_t> inode = Base(1, mode, number, 28);
    PutBits(inode, 96, 32, 2, be);
    PutBits(inode, 128, 19, listing_bytes + 3, be);
    PutBits(inode, 147, 13, listing & 0xFFFF, be);
    PutBits(inode, 160, 32, listing >> 16, be);
    PutBits(inode, 192, 32, number + 1, be);
    const std::uint64_t ref = inodes_.Ref();
    inodes_.Append(inode);
    return ref;
  }

  std::vector<Node> nodes_;
  Options options_;
  std::uint32_t block_size_;
  MetaWriter inodes_;
  MetaWriter listings_;
  std::vector<std::uint8_t> image_;
  std::map<std::string, std::vector<std::size_t>> children_;
  std::map<std::string, std::size_t> by_path_;
  std::map<std::size_t, std::uint32_t> links_;
  std::map<std::size_t, FileData> files_;
  std::map<std::size_t, Written> written_;
  std::map<std::string, std::uint32_t> dir_numbers_;
  std::vector<std::uint8_t> fragment_;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> fragment_entries_;
  std::uint32_t next_number_ = 1;
};

inline std::vector<std::uint8_t> WriteImage(std::vector<Node> nodes, Options options) {
  return ImageWriter(std::move(nodes), options).Write();
}

}  // namespace iotmark::testing::squashfs3
