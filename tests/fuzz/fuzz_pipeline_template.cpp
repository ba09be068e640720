// The pipeline template loader (daemon/media/pipeline_template.cpp): any
// template text, joined and filled; a filled value never adds elements
// (no unquoted '!' comes from a value).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "media/pipeline_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string joined = mirage::media::join_template_lines(text);
  std::string error;
  const std::map<std::string, std::string> values = {
      {"model", "/tmp/a model ! fakesink"}, {"style", "x\" ! filesink location=/etc/passwd"}, {"width", "640"}};
  auto filled = mirage::media::fill_template(joined, values, &error);
  if (!filled && error.empty()) std::abort();
  return 0;
}
