// FrameLayout: how a raw video frame lies in memory, described without
// GStreamer so that the core (and its tests) need no GStreamer. The element
// fills it from a GstVideoInfo; tests build it with FrameLayout::tight().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace mirage {

enum class PixelFormat { kRGB, kRGBA, kBGRx, kBGRA, kI420, kNV12 };

const char* to_string(PixelFormat format);

// Y'CbCr <-> R'G'B' coefficients (ITU-R BT.601: kr 0.299, kb 0.114;
// BT.709: kr 0.2126, kb 0.0722) and quantisation range. Ignored for RGB.
struct YuvMatrix {
  double kr = 0.299;
  double kb = 0.114;
  bool full_range = false;
};

struct FrameLayout {
  PixelFormat format = PixelFormat::kRGB;
  int width = 0;
  int height = 0;
  std::array<size_t, 3> offset{};  // byte offset of each plane
  std::array<int, 3> stride{};     // bytes per row of each plane
  size_t size = 0;                 // bytes in the whole frame
  YuvMatrix matrix;

  int plane_count() const;
  bool is_yuv() const { return format == PixelFormat::kI420 || format == PixelFormat::kNV12; }
  // Size of the chroma planes of the YUV formats (4:2:0, rounded up).
  int chroma_width() const { return (width + 1) / 2; }
  int chroma_height() const { return (height + 1) / 2; }

  // Rows padded to 4 bytes, planes back to back: the layout GStreamer uses
  // for system memory.
  static FrameLayout tight(PixelFormat format, int width, int height, YuvMatrix matrix = {});
};

// Where each plane of one frame starts. Planes may lie in separate memory
// blocks (a GstBuffer with several GstMemory), hence pointers, not offsets.
struct Planes {
  std::array<uint8_t*, 3> data{};
};

// The planes of a frame stored contiguously at |base| as |layout| says.
Planes planes_at(const FrameLayout& layout, uint8_t* base);

// Writes a neutral mid-grey frame (what hold mode shows before the first
// processed frame: never the raw input).
void fill_neutral(const FrameLayout& layout, uint8_t* data);

}  // namespace mirage
