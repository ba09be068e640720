#include "frame_header.h"

namespace mirage::media {

namespace {

int be16(const uint8_t* p) { return (p[0] << 8) | p[1]; }

// MSB-first bit reader over a byte range; reads past the end fail.
class Bits {
 public:
  Bits(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool read(int n, uint32_t* out) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
      if (pos_ >= size_ * 8) return false;
      v = (v << 1) | ((data_[pos_ / 8] >> (7 - pos_ % 8)) & 1);
      ++pos_;
    }
    *out = v;
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<Dimensions> jpeg_dimensions(const uint8_t* data, size_t size, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Dimensions> {
    *why = reason;
    return std::nullopt;
  };
  if (size < 4 || data[0] != 0xFF || data[1] != 0xD8) return fail("no JPEG start (SOI)");
  std::optional<Dimensions> frame;
  size_t pos = 2;
  while (pos < size) {
    if (data[pos] != 0xFF) return fail("a JPEG marker was expected");
    while (pos < size && data[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= size) break;
    const uint8_t marker = data[pos++];
    if (marker == 0xD8 || marker == 0xD9 || marker == 0x00) return fail("the JPEG headers end before the image data");
    if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue;  // no length
    if (pos + 2 > size) break;
    const size_t length = size_t(be16(data + pos));
    if (length < 2 || pos + length > size) break;
    const uint8_t* segment = data + pos + 2;
    const size_t body = length - 2;
    if ((marker >= 0xC0 && marker <= 0xCF) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (frame) return fail("the JPEG has two frame headers");
      if (marker > 0xC2) return fail("the JPEG is lossless, hierarchical or arithmetic-coded, which is not decoded here");
      if (body < 6) break;
      const int precision = segment[0], height = be16(segment + 1), width = be16(segment + 3), components = segment[5];
      if (precision != 8) return fail("the JPEG is not 8 bits per sample");
      if (width == 0 || height == 0) return fail("the JPEG declares a zero width or height");
      if (components != 1 && components != 3) return fail("the JPEG has neither 1 nor 3 colour components");
      if (body < size_t(6 + 3 * components)) break;
      for (int c = 0; c < components; ++c) {
        const int sampling = segment[6 + 3 * c + 1];
        const int h = sampling >> 4, v = sampling & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) return fail("the JPEG has an invalid sampling factor");
      }
      frame = Dimensions{width, height};
    } else if (marker == 0xDA) {
      if (!frame) return fail("the JPEG's image data comes before its frame header");
      return frame;
    }
    pos += length;
  }
  return fail("the JPEG is truncated in its headers");
}

std::optional<Dimensions> vp8_keyframe_dimensions(const uint8_t* data, size_t size) {
  // 3-byte frame tag (bit 0: 0 = key frame), start code 9d 01 2a, then
  // 14 bits of width and of height, each with 2 bits of scaling above.
  if (size < 10 || (data[0] & 1) != 0) return std::nullopt;
  if (data[3] != 0x9D || data[4] != 0x01 || data[5] != 0x2A) return std::nullopt;
  const int width = (data[6] | (data[7] << 8)) & 0x3FFF;
  const int height = (data[8] | (data[9] << 8)) & 0x3FFF;
  if (width == 0 || height == 0) return std::nullopt;
  return Dimensions{width, height};
}

std::optional<Dimensions> vp9_keyframe_dimensions(const uint8_t* data, size_t size) {
  Bits b(data, size);
  uint32_t marker, low, high, v;
  if (!b.read(2, &marker) || marker != 2 || !b.read(1, &low) || !b.read(1, &high)) return std::nullopt;
  const uint32_t profile = (high << 1) | low;
  if (profile == 3 && (!b.read(1, &v) || v != 0)) return std::nullopt;
  uint32_t show_existing, frame_type;
  if (!b.read(1, &show_existing) || show_existing) return std::nullopt;
  if (!b.read(1, &frame_type) || frame_type != 0) return std::nullopt;  // 0: key frame
  if (!b.read(2, &v)) return std::nullopt;                              // show_frame, error_resilient_mode
  uint32_t sync;
  if (!b.read(24, &sync) || sync != 0x498342) return std::nullopt;
  // color_config()
  if (profile >= 2 && !b.read(1, &v)) return std::nullopt;  // ten_or_twelve_bit
  uint32_t color_space;
  if (!b.read(3, &color_space)) return std::nullopt;
  if (color_space != 7) {  // not CS_RGB
    if (!b.read(1, &v)) return std::nullopt;  // color_range
    if ((profile == 1 || profile == 3) && !b.read(3, &v)) return std::nullopt;  // subsampling x, y, reserved
  } else if ((profile == 1 || profile == 3) && !b.read(1, &v)) {
    return std::nullopt;
  }
  uint32_t w, h;
  if (!b.read(16, &w) || !b.read(16, &h)) return std::nullopt;
  return Dimensions{int(w) + 1, int(h) + 1};
}

}  // namespace mirage::media
