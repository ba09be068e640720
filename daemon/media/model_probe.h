// The worker's model, loaded once at start the way every stream's
// diffusionfilter loads it (same file and device, default size): a broken
// model fails the start with the element's own error, the styles it offers
// are read off the element, and the loaded model stays in the process's
// shared model cache, so the first stream starts warm.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

typedef struct _GstElement GstElement;

namespace mirage::media {

class ModelProbe {
 public:
  static std::unique_ptr<ModelProbe> load(const std::string& model, const std::string& device, std::string* error);
  ~ModelProbe();
  const std::vector<std::string>& styles() const { return styles_; }
  // The loaded model's calls by batch size, [i]: calls that ran i + 1 frames
  // (diffusionfilter's batch-sizes). The model is the one every stream's
  // element shares (same file, device and size; pipelines/process.pipeline
  // sets no other), so these are the worker's, read once for all streams.
  // Any thread.
  std::vector<uint64_t> batch_sizes() const;

 private:
  explicit ModelProbe(GstElement* pipeline) : pipeline_(pipeline) {}
  GstElement* pipeline_;  // a pipeline of one diffusionfilter, PAUSED
  std::vector<std::string> styles_;
};

}  // namespace mirage::media
