#include "iotmark/inventory/content_scan.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace iotmark::inventory {

namespace {

// Files are handed out to workers in batches of about this many bytes.
constexpr std::uint64_t kBatchBytes = 4ULL << 20;

struct DatabaseDeleter {
  void operator()(hs_database_t* db) const { hs_free_database(db); }
};
struct ScratchDeleter {
  void operator()(hs_scratch_t* scratch) const { hs_free_scratch(scratch); }
};
using Database = std::unique_ptr<hs_database_t, DatabaseDeleter>;
using Scratch = std::unique_ptr<hs_scratch_t, ScratchDeleter>;

unsigned FlagsFor(const PatternOptions& options) {
  unsigned flags = 0;
  if (options.caseless) flags |= HS_FLAG_CASELESS;
  if (options.dot_all) flags |= HS_FLAG_DOTALL;
  if (options.multi_line) flags |= HS_FLAG_MULTILINE;
  if (options.first_match_only) {
    flags |= HS_FLAG_SINGLEMATCH;
  } else if (options.start_offsets) {
    flags |= HS_FLAG_SOM_LEFTMOST;
  }
  return flags;
}

Result<Database> Compile(const PatternSet& set) {
  const auto& patterns = set.patterns();
  std::vector<const char*> expressions;
  std::vector<unsigned> flags;
  std::vector<unsigned> ids;
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    expressions.push_back(patterns[i].expression.c_str());
    flags.push_back(FlagsFor(patterns[i].options));
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* error = nullptr;
  const auto rc = hs_compile_multi(expressions.data(), flags.data(), ids.data(),
                                   static_cast<unsigned>(expressions.size()), HS_MODE_BLOCK,
                                   nullptr, &db, &error);
  if (rc != HS_SUCCESS) {
    std::string message =
        error != nullptr && error->message != nullptr ? error->message : "unknown";
    std::string where;
    if (error != nullptr && error->expression >= 0 &&
        static_cast<std::size_t>(error->expression) < patterns.size()) {
      const auto& bad = patterns[static_cast<std::size_t>(error->expression)];
      where = " in pattern `" + bad.expression + "` of " + bad.owner;
    }
    hs_free_compile_error(error);
    return Fail(ErrorCode::kInvalidArgument,
                "content patterns do not compile" + where + ": " + message);
  }
  return Database(db);
}

struct FileScan {
  std::uint32_t file = 0;
  std::uint32_t cap = 0;
  const std::vector<bool>* has_start = nullptr;
  std::vector<std::pair<PatternId, ContentMatch>>* out = nullptr;
  std::unordered_map<PatternId, std::uint32_t> counts;
  std::uint64_t dropped = 0;
};

int OnMatch(unsigned int id, unsigned long long from, unsigned long long to, unsigned int,
            void* context) {
  auto& scan = *static_cast<FileScan*>(context);
  auto& count = scan.counts[id];
  if (count >= scan.cap) {
    ++scan.dropped;
    return 0;
  }
  ++count;
  scan.out->push_back({id, ContentMatch{scan.file, (*scan.has_start)[id] ? from : to, to}});
  return 0;
}

}  // namespace

std::string EscapeLiteral(std::string_view literal) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : literal) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
        (byte >= '0' && byte <= '9') || byte == '_') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  return out;
}

PatternId PatternSet::AddRegex(std::string expression, PatternOptions options, std::string owner) {
  patterns_.push_back({std::move(expression), options, std::move(owner)});
  return static_cast<PatternId>(patterns_.size() - 1);
}

PatternId PatternSet::AddLiteral(std::string_view literal, PatternOptions options,
                                 std::string owner) {
  return AddRegex(EscapeLiteral(literal), options, std::move(owner));
}

Result<ContentIndex> ContentIndex::Scan(const PatternSet& patterns, const FileTree& tree,
                                        ThreadPool& pool, const ScanOptions& options) {
  ContentIndex index;
  index.by_pattern_.resize(patterns.patterns().size());
  if (patterns.patterns().empty()) return index;
  auto compiled = Compile(patterns);
  if (!compiled) return tl::unexpected(compiled.error());
  Database db = std::move(*compiled);
  hs_scratch_t* prototype = nullptr;
  if (hs_alloc_scratch(db.get(), &prototype) != HS_SUCCESS) {
    return Fail(ErrorCode::kInternal, "cannot allocate Hyperscan scratch space");
  }
  Scratch base(prototype);

  // Batches of files of about kBatchBytes each, big files alone.
  std::vector<std::vector<std::uint32_t>> batches(1);
  std::uint64_t batch_bytes = 0;
  const auto& files = tree.files();
  for (std::uint32_t i = 0; i < files.size(); ++i) {
    const auto& file = files[i];
    if (!file.is_file() || !file.entry->materialized || file.unpacked || file.entry->size == 0) {
      continue;
    }
    if (batch_bytes >= kBatchBytes) {
      batches.emplace_back();
      batch_bytes = 0;
    }
    batches.back().push_back(i);
    batch_bytes += file.entry->size;
  }

  std::vector<bool> has_start;
  for (const auto& pattern : patterns.patterns()) {
    has_start.push_back(pattern.options.start_offsets && !pattern.options.first_match_only);
  }
  std::mutex mutex;
  std::vector<Scratch> spare;
  std::vector<std::pair<PatternId, ContentMatch>> all;
  Status failure;
  {
    TaskGroup group(pool);
    for (const auto& batch : batches) {
      group.Run([&, batch_ptr = &batch] {
        Scratch scratch;
        {
          std::lock_guard lock(mutex);
          if (!spare.empty()) {
            scratch = std::move(spare.back());
            spare.pop_back();
          }
        }
        if (!scratch) {
          hs_scratch_t* clone = nullptr;
          if (hs_clone_scratch(base.get(), &clone) != HS_SUCCESS) {
            std::lock_guard lock(mutex);
            failure = Fail(ErrorCode::kInternal, "cannot clone Hyperscan scratch space");
            return;
          }
          scratch.reset(clone);
        }
        std::vector<std::pair<PatternId, ContentMatch>> found;
        std::vector<model::Gap> gaps;
        ScanStats stats;
        for (const auto file_index : *batch_ptr) {
          const auto& file = files[file_index];
          auto mapped = tree.Map(file);
          if (!mapped) {
            gaps.push_back({model::GapKind::kIo, file.path(), 0, "",
                            "cannot read for content checks: " + mapped.error().message});
            continue;
          }
          auto bytes = mapped->bytes();
          if (bytes.size() > options.max_file_size) bytes = bytes.first(options.max_file_size);
          FileScan scan;
          scan.file = file_index;
          scan.cap = options.max_matches_per_file;
          scan.out = &found;
          scan.has_start = &has_start;
          // Hyperscan's block mode takes an unsigned int length.
          if (bytes.size() > 0xffffffffULL) bytes = bytes.first(0xffffffffULL);
          hs_scan(db.get(), reinterpret_cast<const char*>(bytes.data()),
                  static_cast<unsigned>(bytes.size()), 0, scratch.get(), OnMatch, &scan);
          stats.files += 1;
          stats.bytes += bytes.size();
          stats.dropped_matches += scan.dropped;
        }
        std::lock_guard lock(mutex);
        spare.push_back(std::move(scratch));
        all.insert(all.end(), found.begin(), found.end());
        index.gaps_.insert(index.gaps_.end(), gaps.begin(), gaps.end());
        index.stats_.files += stats.files;
        index.stats_.bytes += stats.bytes;
        index.stats_.dropped_matches += stats.dropped_matches;
      });
    }
    group.Wait();
  }
  if (!failure.has_value()) return tl::unexpected(failure.error());
  index.stats_.matches = all.size();
  for (const auto& [pattern, match] : all) index.by_pattern_[pattern].push_back(match);
  for (auto& list : index.by_pattern_) {
    std::sort(list.begin(), list.end(), [](const ContentMatch& a, const ContentMatch& b) {
      return std::tie(a.file, a.to, a.from) < std::tie(b.file, b.to, b.from);
    });
  }
  std::sort(index.gaps_.begin(), index.gaps_.end(),
            [](const model::Gap& a, const model::Gap& b) { return a.blob < b.blob; });
  return index;
}

std::span<const ContentMatch> ContentIndex::Matches(PatternId pattern) const {
  if (pattern >= by_pattern_.size()) return {};
  return by_pattern_[pattern];
}

}  // namespace iotmark::inventory
