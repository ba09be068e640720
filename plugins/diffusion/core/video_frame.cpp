#include "video_frame.h"

#include <cstring>

namespace mirage {

namespace {

int round_up_4(int n) { return (n + 3) & ~3; }

}  // namespace

const char* to_string(PixelFormat format) {
  switch (format) {
    case PixelFormat::kRGB: return "RGB";
    case PixelFormat::kRGBA: return "RGBA";
    case PixelFormat::kBGRx: return "BGRx";
    case PixelFormat::kBGRA: return "BGRA";
    case PixelFormat::kI420: return "I420";
    case PixelFormat::kNV12: return "NV12";
  }
  return "?";
}

int FrameLayout::plane_count() const {
  switch (format) {
    case PixelFormat::kI420: return 3;
    case PixelFormat::kNV12: return 2;
    default: return 1;
  }
}

FrameLayout FrameLayout::tight(PixelFormat format, int width, int height, YuvMatrix matrix) {
  FrameLayout l;
  l.format = format;
  l.width = width;
  l.height = height;
  l.matrix = matrix;
  const int cw = l.chroma_width();
  const int ch = l.chroma_height();
  switch (format) {
    case PixelFormat::kRGB:
      l.stride[0] = round_up_4(width * 3);
      l.size = size_t(l.stride[0]) * height;
      break;
    case PixelFormat::kRGBA:
    case PixelFormat::kBGRx:
    case PixelFormat::kBGRA:
      l.stride[0] = width * 4;
      l.size = size_t(l.stride[0]) * height;
      break;
    case PixelFormat::kI420:
      // As gst_video_info_set_format(): the luma plane is padded to an even
      // number of rows.
      l.stride[0] = round_up_4(width);
      l.stride[1] = l.stride[2] = round_up_4(cw);
      l.offset[1] = size_t(l.stride[0]) * (ch * 2);
      l.offset[2] = l.offset[1] + size_t(l.stride[1]) * ch;
      l.size = l.offset[2] + size_t(l.stride[2]) * ch;
      break;
    case PixelFormat::kNV12:
      l.stride[0] = l.stride[1] = round_up_4(width);
      l.offset[1] = size_t(l.stride[0]) * (ch * 2);
      l.size = l.offset[1] + size_t(l.stride[1]) * ch;
      break;
  }
  return l;
}

Planes planes_at(const FrameLayout& layout, uint8_t* base) {
  Planes planes;
  for (int i = 0; i < layout.plane_count(); ++i) planes.data[i] = base + layout.offset[i];
  return planes;
}

void fill_neutral(const FrameLayout& layout, uint8_t* data) {
  // Mid-grey is 128 in every channel of every format: R=G=B=128, or Y=128
  // with neutral chroma (U=V=128). Alpha becomes 128 too; set it opaque.
  std::memset(data, 128, layout.size);
  if (layout.format == PixelFormat::kRGBA || layout.format == PixelFormat::kBGRA) {
    for (int y = 0; y < layout.height; ++y) {
      uint8_t* row = data + layout.offset[0] + size_t(layout.stride[0]) * y;
      for (int x = 0; x < layout.width; ++x) row[x * 4 + 3] = 255;
    }
  }
}

}  // namespace mirage
