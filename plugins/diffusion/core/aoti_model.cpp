// AOTInductor packages (.pt2, the exporter's --format aoti) behind the same
// contract as a TorchScript module. Built only when the libtorch has the
// package loader (PyTorch 2.6 or newer); Debian's libtorch 1.13 has not, and
// model_runner.cpp then says so for a .pt2 file.
//
// The package holds the exporter's tensor core, Img2Img.denoise(images,
// rows, timesteps, seeds), compiled for one device, size and precision,
// batches of 1 to 8. What forward_batch() does around it in TorchScript is
// done here, the same way: style names to prompt rows (0: unknown), strength
// to timesteps, items at strength 0 returned as they are. The names, steps
// and schedule length come from the package's metadata.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "model_backend.h"

namespace mirage {

namespace {

class AotiBackend : public ModelBackend {
 public:
  AotiBackend(std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader, torch::Device device, int steps,
              int train_timesteps)
      : loader_(std::move(loader)), device_(device), steps_(steps), train_timesteps_(train_timesteps) {}

  bool batched() const override { return true; }
  int max_batch() const override { return 8; }

  at::Tensor run(const at::Tensor& images, const std::vector<std::string>& styles_in,
                 const std::vector<double>& strengths, const std::vector<int64_t>& seeds) override {
    const int64_t n = images.size(0);
    std::vector<int64_t> work, rows, schedule, item_seeds;
    for (int64_t i = 0; i < n; ++i) {
      const auto ts = timesteps(strengths[size_t(i)]);
      if (ts.empty()) continue;
      int64_t row = 0;
      for (size_t k = 0; k < styles.size(); ++k)
        if (styles[k] == styles_in[size_t(i)]) row = int64_t(k) + 1;
      work.push_back(i);
      rows.push_back(row);
      item_seeds.push_back(seeds[size_t(i)]);
      schedule.insert(schedule.end(), ts.begin(), ts.end());
    }
    if (work.empty()) return images.to(at::kFloat).clone();
    at::Tensor x = int64_t(work.size()) == n ? images : images.index_select(0, device_ints(work));
    std::vector<at::Tensor> inputs = {x.contiguous(), device_ints(rows),
                                      device_ints(schedule).view({int64_t(work.size()), steps_}),
                                      device_ints(item_seeds)};
    at::Tensor out = loader_->run(inputs).at(0).to(at::kFloat).clamp(0, 1);
    if (int64_t(work.size()) == n) return out;
    at::Tensor result = images.to(at::kFloat).clone();
    result.index_copy_(0, device_ints(work), out);
    return result;
  }

 private:
  // As Img2Img.timesteps(): t_k = round(T * s * (1 - k / steps)) - 1.
  std::vector<int64_t> timesteps(double strength) const {
    const double s = std::max(0.0, std::min(1.0, strength));
    const double span = double(train_timesteps_) * s;
    std::vector<int64_t> out;
    if (int64_t(span + 0.5) < 1) return out;
    for (int k = 0; k < steps_; ++k) {
      const int64_t t = int64_t(span * (1.0 - double(k) / double(steps_)) + 0.5) - 1;
      out.push_back(std::max<int64_t>(0, std::min<int64_t>(train_timesteps_ - 1, t)));
    }
    return out;
  }

  // Made by fill kernels on the device: a copy from pageable host memory
  // would end a CUDA graph capture.
  at::Tensor device_ints(const std::vector<int64_t>& values) const {
    std::vector<at::Tensor> parts;
    for (int64_t v : values) parts.push_back(at::full({1}, v, at::TensorOptions().dtype(at::kLong).device(device_)));
    return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
  }

  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;
  torch::Device device_;
  int steps_, train_timesteps_;
};

int int_of(const std::unordered_map<std::string, std::string>& meta, const std::string& key, int fallback) {
  auto it = meta.find(key);
  if (it == meta.end()) return fallback;
  try {
    return std::stoi(it->second);
  } catch (const std::exception&) {
    return fallback;
  }
}

}  // namespace

bool aoti_supported() { return true; }

std::unique_ptr<ModelBackend> load_aoti_package(const std::string& path, const torch::Device& device,
                                                std::string* error) {
  try {
    auto loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
    const auto meta = loader->get_metadata();
    auto has = [&](const char* key) { return meta.count(key) != 0; };
    if (!has("mirage.steps") || !has("mirage.width") || !has("mirage.height")) {
      *error = "not a Mirage package: its metadata has no mirage.steps, mirage.width and mirage.height "
               "(export it with tools/export/export.py --format aoti)";
      return nullptr;
    }
    const std::string compiled_for = has("mirage.device") ? meta.at("mirage.device") : "";
    if (!compiled_for.empty() && compiled_for != c10::DeviceTypeName(device.type(), /*lower_case=*/true)) {
      *error = "the package was compiled for " + compiled_for + ", not " + device.str() + ": export it again with --device";
      return nullptr;
    }
    auto backend = std::make_unique<AotiBackend>(std::move(loader), device, int_of(meta, "mirage.steps", 1),
                                                 int_of(meta, "mirage.train_timesteps", 1000));
    backend->width = int_of(meta, "mirage.width", 512);
    backend->height = int_of(meta, "mirage.height", 512);
    backend->dtype = has("mirage.precision") && meta.at("mirage.precision") == "fp16" ? at::kHalf : at::kFloat;
    backend->format = "aoti";
    if (has("mirage.styles")) {
      std::istringstream names(meta.at("mirage.styles"));
      for (std::string name; std::getline(names, name);)
        if (!name.empty()) backend->styles.push_back(name);
    }
    return backend;
  } catch (const std::exception& e) {
    *error = "not a loadable AOTInductor package: " + std::string(e.what()).substr(0, std::string(e.what()).find('\n'));
    return nullptr;
  }
}

}  // namespace mirage
