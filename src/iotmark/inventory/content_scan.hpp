// One pass of a multi-pattern engine (Hyperscan/Vectorscan) over every file of the tree: each
// analyzer registers the patterns it wants, the scan runs once for all of them in parallel, and
// analyzers then read the matches of their own patterns. Matches only say "here"; analyzers
// look at the bytes around a match to extract and confirm what they need.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotmark/base/result.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/inventory/file_tree.hpp"
#include "iotmark/model/gap.hpp"

namespace iotmark::inventory {

using PatternId = std::uint32_t;

struct PatternOptions {
  bool caseless = false;
  bool dot_all = false;           // '.' matches newlines too
  bool multi_line = false;        // '^' and '$' match at line boundaries
  bool start_offsets = false;     // report where a match starts (costs speed; only if needed)
  bool first_match_only = false;  // one match per file is enough (presence checks: fastest)
};

class PatternSet {
 public:
  // `owner` names who asked ("credentials"), so a pattern that does not compile can be blamed.
  PatternId AddRegex(std::string expression, PatternOptions options, std::string owner);
  // Matches `literal` byte for byte.
  PatternId AddLiteral(std::string_view literal, PatternOptions options, std::string owner);

  struct Pattern {
    std::string expression;
    PatternOptions options;
    std::string owner;
  };
  [[nodiscard]] const std::vector<Pattern>& patterns() const { return patterns_; }

 private:
  std::vector<Pattern> patterns_;
};

struct ContentMatch {
  std::uint32_t file = 0;  // index into FileTree::files()
  std::uint64_t from = 0;  // start of the match if start_offsets was asked, else == to
  std::uint64_t to = 0;    // one past the last byte of the match
};

struct ScanOptions {
  std::uint32_t max_matches_per_file = 1000;  // per pattern; more are counted, not kept
  std::uint64_t max_file_size = 1ULL << 32;   // larger files are scanned up to this size
};

struct ScanStats {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
  std::uint64_t matches = 0;
  std::uint64_t dropped_matches = 0;  // beyond max_matches_per_file
};

class ContentIndex {
 public:
  // Compiles `patterns` and scans every regular file of `tree` that was not itself unpacked.
  static Result<ContentIndex> Scan(const PatternSet& patterns, const FileTree& tree,
                                   ThreadPool& pool, const ScanOptions& options = {});

  // The matches of `pattern`, sorted by file then end offset.
  [[nodiscard]] std::span<const ContentMatch> Matches(PatternId pattern) const;
  [[nodiscard]] const ScanStats& stats() const { return stats_; }
  // Files that could not be read.
  [[nodiscard]] const std::vector<model::Gap>& gaps() const { return gaps_; }

 private:
  std::vector<std::vector<ContentMatch>> by_pattern_;
  ScanStats stats_;
  std::vector<model::Gap> gaps_;
};

// Escapes `literal` so that Hyperscan reads it as the same bytes.
std::string EscapeLiteral(std::string_view literal);

}  // namespace iotmark::inventory
