// The ingest admission checks (daemon/media/frame_header.cpp): the sizes
// JPEG, VP8 and VP9 frames declare, read from their headers before any
// decoder sees them. Any bytes: no crash, no read past the end (ASan).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "media/frame_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string why;
  auto jpeg = mirage::media::jpeg_dimensions(data, size, &why);
  if (jpeg && (jpeg->width <= 0 || jpeg->height <= 0 || jpeg->width > 65535 || jpeg->height > 65535)) std::abort();
  if (!jpeg && why.empty()) std::abort();  // a refusal says why
  auto vp8 = mirage::media::vp8_keyframe_dimensions(data, size);
  if (vp8 && (vp8->width <= 0 || vp8->width > 16383)) std::abort();
  auto vp9 = mirage::media::vp9_keyframe_dimensions(data, size);
  if (vp9 && (vp9->width <= 0 || vp9->width > 65536)) std::abort();
  return 0;
}
