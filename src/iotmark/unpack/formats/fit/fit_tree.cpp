#include "iotmark/unpack/formats/fit/fit_tree.hpp"

#include <algorithm>
#include <set>
#include <string_view>

namespace iotmark::unpack::formats::fit {

namespace {

// External data offsets count from the end of the tree, rounded up to 4 bytes (U-Boot's
// fit_get_end / mkimage -E).
std::uint64_t ExternalBase(const FdtBlob& fdt) {
  return (std::uint64_t{fdt.header().total_size} + 3) & ~std::uint64_t{3};
}

std::string TextOr(const FdtBlob& fdt, int node, const char* name) {
  return fdt.Text(node, name).value_or("");
}

std::vector<int> ChildrenNamed(const FdtBlob& fdt, int node, std::string_view prefix, bool* more) {
  std::vector<int> out;
  // Image nodes have few children; the bound keeps a crafted node with thousands cheap.
  for (const int child : fdt.Subnodes(node, kMaxChecks * 4)) {
    if (!fdt.NodeName(child).starts_with(prefix)) continue;
    if (out.size() == kMaxChecks) {
      *more = true;
      break;
    }
    out.push_back(child);
  }
  return out;
}

std::vector<FitSignature> ReadSignatures(const FdtBlob& fdt, int node, bool* more) {
  std::vector<FitSignature> out;
  for (const int child : ChildrenNamed(fdt, node, "signature", more)) {
    FitSignature signature;
    signature.algo = TextOr(fdt, child, "algo");
    signature.key_name_hint = TextOr(fdt, child, "key-name-hint");
    signature.signed_images = TextOr(fdt, child, "sign-images");
    const auto value = fdt.Property(child, "value");
    signature.has_value = value && !value->empty();
    out.push_back(std::move(signature));
  }
  return out;
}

void ReadData(const FdtBlob& fdt, int node, FitImage& image) {
  if (const auto data = fdt.Property(node, "data")) {
    image.has_data = true;
    image.data_offset = fdt.OffsetOf(*data);
    image.data_size = data->size();
    return;
  }
  const auto size = fdt.Number(node, "data-size");
  const auto position = fdt.Number(node, "data-position");
  const auto offset = fdt.Number(node, "data-offset");
  if (!size || (!position && !offset)) return;
  image.has_data = true;
  image.external = true;
  image.data_size = *size;
  // Both are 32-bit cells in practice; Number() allows 64 bits, so the sum is kept in range.
  const std::uint64_t start = position ? *position : ExternalBase(fdt) + *offset;
  image.data_offset = std::min<std::uint64_t>(start, std::uint64_t{1} << 62);
  image.data_size = std::min<std::uint64_t>(image.data_size, std::uint64_t{1} << 62);
}

FitImage ReadImage(const FdtBlob& fdt, int node) {
  FitImage image;
  image.node = PrintableText(fdt.NodeName(node), 128);
  image.description = TextOr(fdt, node, "description");
  image.type = TextOr(fdt, node, "type");
  image.arch = TextOr(fdt, node, "arch");
  image.os = TextOr(fdt, node, "os");
  image.compression = TextOr(fdt, node, "compression");
  image.load = fdt.Number(node, "load");
  image.entry = fdt.Number(node, "entry");
  ReadData(fdt, node, image);
  for (const int child : ChildrenNamed(fdt, node, "hash", &image.more_checks)) {
    FitHash hash;
    hash.algo = TextOr(fdt, child, "algo");
    if (const auto value = fdt.Property(child, "value"))
      hash.value.assign(value->begin(), value->end());
    image.hashes.push_back(std::move(hash));
  }
  image.signatures = ReadSignatures(fdt, node, &image.more_checks);
  bool more_ciphers = false;
  if (const auto ciphers = ChildrenNamed(fdt, node, "cipher", &more_ciphers); !ciphers.empty()) {
    image.cipher = fdt.Text(ciphers.front(), "algo").value_or("unknown");
  }
  return image;
}

FitConfiguration ReadConfiguration(const FdtBlob& fdt, int node) {
  FitConfiguration config;
  config.node = PrintableText(fdt.NodeName(node), 128);
  config.description = TextOr(fdt, node, "description");
  config.kernel = TextOr(fdt, node, "kernel");
  config.fdt = TextOr(fdt, node, "fdt");
  config.ramdisk = TextOr(fdt, node, "ramdisk");
  config.loadables = TextOr(fdt, node, "loadables");
  config.firmware = TextOr(fdt, node, "firmware");
  bool more = false;
  config.signatures = ReadSignatures(fdt, node, &more);
  return config;
}

void ReadPlainTree(const FdtBlob& fdt, FitTree& tree) {
  tree.model = TextOr(fdt, 0, "model");
  tree.compatible = TextOr(fdt, 0, "compatible");
  const int keys = fdt.PathOffset("/signature");
  if (keys < 0) return;
  for (const int key : fdt.Subnodes(keys, kMaxChecks)) {
    const std::string name = PrintableText(fdt.NodeName(key), 64);
    const std::string required = TextOr(fdt, key, "required");
    tree.verification_keys.push_back(name + ":" + TextOr(fdt, key, "algo") +
                                     ":required=" + (required.empty() ? "no" : required));
  }
}

}  // namespace

FitTree ReadFitTree(const FdtBlob& fdt) {
  FitTree tree;
  tree.extent = fdt.header().total_size;
  tree.description = TextOr(fdt, 0, "description");
  tree.timestamp = fdt.Number(0, "timestamp");
  const int images = fdt.PathOffset("/images");
  if (images < 0) {
    ReadPlainTree(fdt, tree);
    return tree;
  }
  tree.is_fit = true;
  for (const int node : fdt.Subnodes(images, kMaxImages, &tree.more_images)) {
    FitImage image = ReadImage(fdt, node);
    if (image.external) {
      tree.extent = std::max(tree.extent, image.data_offset + image.data_size);
    }
    tree.images.push_back(std::move(image));
  }
  if (const int configs = fdt.PathOffset("/configurations"); configs >= 0) {
    tree.default_configuration = TextOr(fdt, configs, "default");
    for (const int node : fdt.Subnodes(configs, kMaxConfigurations, &tree.more_configurations)) {
      tree.configurations.push_back(ReadConfiguration(fdt, node));
    }
  }
  return tree;
}

namespace {

std::string Hex(std::uint64_t value) { return HexOffset(value); }

void PutIf(std::map<std::string, std::string>& meta, const std::string& key,
           const std::string& value) {
  if (!value.empty()) meta[key] = value;
}

struct SignatureSummary {
  bool images = false;
  bool configurations = false;
  std::size_t unsigned_nodes = 0;
  std::set<std::string> algos;
};

void DescribeSignatures(std::map<std::string, std::string>& meta, const std::string& prefix,
                        const std::vector<FitSignature>& signatures, bool* signed_here,
                        SignatureSummary& summary) {
  if (signatures.empty()) return;
  const FitSignature& first = signatures.front();
  PutIf(meta, prefix + "signature", first.algo.empty() ? "unknown" : first.algo);
  PutIf(meta, prefix + "key_name_hint", first.key_name_hint);
  PutIf(meta, prefix + "signed_images", first.signed_images);
  bool any = false;
  for (const FitSignature& signature : signatures) {
    if (signature.has_value) {
      any = true;
      if (!signature.algo.empty()) summary.algos.insert(signature.algo);
    } else {
      ++summary.unsigned_nodes;
    }
  }
  meta[prefix + "signed"] = any ? "yes" : "no";
  *signed_here = any;
}

std::string Joined(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

void DescribeImages(const FitTree& tree, std::map<std::string, std::string>& meta,
                    SignatureSummary& summary) {
  std::vector<std::string> names;
  for (const FitImage& image : tree.images) {
    names.push_back(image.node);
    const std::string prefix = "image." + image.node + ".";
    PutIf(meta, prefix + "description", image.description);
    PutIf(meta, prefix + "type", image.type);
    PutIf(meta, prefix + "arch", image.arch);
    PutIf(meta, prefix + "os", image.os);
    PutIf(meta, prefix + "compression", image.compression);
    if (image.load) meta[prefix + "load"] = Hex(*image.load);
    if (image.entry) meta[prefix + "entry"] = Hex(*image.entry);
    meta[prefix + "data"] = !image.has_data ? "missing" : image.external ? "external" : "embedded";
    if (image.has_data) meta[prefix + "size"] = std::to_string(image.data_size);
    PutIf(meta, prefix + "cipher", image.cipher);
    if (image.hashes.empty()) {
      meta[prefix + "hash"] = "none";
    } else {
      std::vector<std::string> algos;
      for (const FitHash& hash : image.hashes) algos.push_back(hash.algo);
      meta[prefix + "hash_algos"] = Joined(algos, ",");
    }
    bool signed_here = false;
    DescribeSignatures(meta, prefix, image.signatures, &signed_here, summary);
    summary.images = summary.images || signed_here;
  }
  meta["image_count"] = std::to_string(tree.images.size()) + (tree.more_images ? "+" : "");
  PutIf(meta, "images", Joined(names, ","));
}

void DescribeConfigurations(const FitTree& tree, std::map<std::string, std::string>& meta,
                            SignatureSummary& summary) {
  std::vector<std::string> names;
  for (const FitConfiguration& config : tree.configurations) {
    names.push_back(config.node);
    const std::string prefix = "configuration." + config.node + ".";
    PutIf(meta, prefix + "description", config.description);
    PutIf(meta, prefix + "kernel", config.kernel);
    PutIf(meta, prefix + "fdt", config.fdt);
    PutIf(meta, prefix + "ramdisk", config.ramdisk);
    PutIf(meta, prefix + "loadables", config.loadables);
    PutIf(meta, prefix + "firmware", config.firmware);
    bool signed_here = false;
    DescribeSignatures(meta, prefix, config.signatures, &signed_here, summary);
    summary.configurations = summary.configurations || signed_here;
  }
  PutIf(meta, "configurations", Joined(names, ","));
  PutIf(meta, "default_configuration", tree.default_configuration);
}

}  // namespace

std::map<std::string, std::string> DescribeFitTree(const FitTree& tree) {
  std::map<std::string, std::string> meta;
  PutIf(meta, "description", tree.description);
  if (tree.timestamp) meta["timestamp"] = std::to_string(*tree.timestamp);
  if (!tree.is_fit) {
    meta["kind"] = "dtb";
    PutIf(meta, "model", tree.model);
    PutIf(meta, "compatible", tree.compatible);
    PutIf(meta, "verification_keys", Joined(tree.verification_keys, ";"));
    return meta;
  }
  meta["kind"] = "fit";
  SignatureSummary summary;
  DescribeImages(tree, meta, summary);
  DescribeConfigurations(tree, meta, summary);
  // What a later analyzer needs to say whether the update path is signed.
  if (summary.configurations && summary.images) {
    meta["signature"] = "configurations+images";
  } else if (summary.configurations) {
    meta["signature"] = "configurations";
  } else if (summary.images) {
    meta["signature"] = "images";
  } else {
    meta["signature"] = "none";
  }
  std::vector<std::string> algos(summary.algos.begin(), summary.algos.end());
  PutIf(meta, "signature_algos", Joined(algos, ","));
  if (summary.unsigned_nodes > 0) {
    meta["unsigned_signature_nodes"] = std::to_string(summary.unsigned_nodes);
  }
  return meta;
}

}  // namespace iotmark::unpack::formats::fit
