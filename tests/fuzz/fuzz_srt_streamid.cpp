// The SRT Access Control streamid parser (daemon/media/srt_streamid.cpp),
// raw and percent-encoded.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "media/srt_streamid.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto id = mirage::media::parse_srt_streamid(text);
  // A parsed id never names more than the text held.
  if (id && id->resource.size() + id->secret.size() + id->mode.size() + id->user.size() > text.size()) std::abort();
  return 0;
}
