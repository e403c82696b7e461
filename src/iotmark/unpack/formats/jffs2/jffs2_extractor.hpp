// Extraction of a JFFS2 node stream into an EntrySink: index every node in one pass, keep the
// newest version of each name and each byte of data, rebuild the tree from directory entries,
// then decompress and write the files in parallel.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "iotmark/base/bytes.hpp"
#include "iotmark/base/result.hpp"
#include "iotmark/unpack/extract_context.hpp"
#include "iotmark/unpack/formats/jffs2/jffs2_nodes.hpp"

namespace iotmark::unpack::formats::jffs2 {

// What the extractor keeps of an inode node whose header and node CRC are right.
struct DataNode {
  std::uint64_t node_offset = 0;  // in the chunk
  std::uint64_t data_offset = 0;  // of the compressed bytes, in the chunk
  std::uint32_t ino = 0;
  std::uint32_t version = 0;
  std::uint32_t mode = 0;
  std::uint32_t isize = 0;   // the file's size once this node was written
  std::uint32_t offset = 0;  // where its data goes in the file
  std::uint32_t csize = 0;
  std::uint32_t dsize = 0;
  std::uint32_t data_crc = 0;
  std::uint8_t compr = 0;
  bool good = true;  // the data CRC matches
};

// A run of a file's bytes that comes from one node: `length` bytes at `start` in the file, taken
// from the node's decompressed data from `skip` on.
struct Piece {
  std::uint32_t node = 0;  // index into the node list
  std::uint32_t skip = 0;
  std::uint64_t start = 0;
  std::uint64_t length = 0;
};

// The visible pieces of one inode, sorted by start: `by_version` lists its nodes (indices into
// `nodes`) from the oldest version to the newest. A newer node hides older data where they
// overlap, and each node's isize cuts off older data beyond it (a truncation); what no piece
// covers is a hole of zeros.
std::vector<Piece> Overlay(std::span<const std::uint32_t> by_version,
                           const std::vector<DataNode>& nodes);

Status ExtractFilesystem(ByteView chunk, Endian endian, ExtractContext& ctx);

}  // namespace iotmark::unpack::formats::jffs2
