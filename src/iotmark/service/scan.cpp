#include "iotmark/service/scan.hpp"

#include <chrono>

#include "iotmark/base/data_store.hpp"
#include "iotmark/base/thread_pool.hpp"
#include "iotmark/inventory/file_tree.hpp"

namespace iotmark::service {

namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<ScanResult> RunScan(const ScanJob& job) {
  ScanResult result;
  auto unpacker = unpack::Unpacker::Create(job.unpack);
  if (!unpacker) return tl::unexpected(unpacker.error());
  const auto unpack_start = std::chrono::steady_clock::now();
  auto unpacked = unpacker->Run(job.image, job.work_dir);
  if (!unpacked) return tl::unexpected(unpacked.error());
  result.unpack = std::move(*unpacked);
  result.timings.unpack_seconds = SecondsSince(unpack_start);
  if (!job.run_analyzers) return result;

  const auto analyze_start = std::chrono::steady_clock::now();
  auto tree = inventory::FileTree::Open(job.work_dir, result.unpack);
  if (!tree) return tl::unexpected(tree.error());
  const DataStore data(job.data_dir);
  ThreadPool pool(job.unpack.threads);
  auto analysis = analyzers::Analyze(*tree, data, pool, job.analyze);
  if (!analysis) return tl::unexpected(analysis.error());
  result.analysis = std::move(*analysis);
  result.data_files = data.Loaded();
  result.timings.analyze_seconds = SecondsSince(analyze_start);
  return result;
}

nlohmann::json ToJson(const ScanResult& result) {
  auto json = model::ToJson(result.unpack);
  json["schema"] = "iotmark.scan/1";
  json["analysis"] = model::ToJson(result.analysis);
  json["data_files"] = result.data_files;
  return json;
}

}  // namespace iotmark::service
