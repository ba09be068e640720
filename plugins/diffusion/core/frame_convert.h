// Raw video planes <-> the model's [N,3,H,W] RGB in [0,1], in libtorch
// operations, so the same code runs on the CPU (the planes wrapped where
// GStreamer keeps them) and on the GPU (the planes uploaded as they are:
// conversion and scaling happen there). Included by the core's libtorch
// translation units only (model_runner.cpp, cuda_frame_path.cpp).
#pragma once

#include <torch/script.h>

#include <array>

#include "video_frame.h"

namespace mirage::convert {

// One plane as a [rows, cols, channels] uint8 tensor over |base| (no copy),
// on the device of |like|'s options.
inline at::Tensor plane(uint8_t* base, int rows, int cols, int channels, int stride,
                        const at::TensorOptions& options = at::TensorOptions().dtype(at::kByte)) {
  return torch::from_blob(base, {rows, cols, channels}, {stride, channels, 1}, options.dtype(at::kByte));
}

// The planes of a frame held contiguously in |raw| (a uint8 tensor of
// layout.size bytes, on any device), as |layout| places them.
inline std::array<at::Tensor, 3> planes_of(const at::Tensor& raw, const FrameLayout& l) {
  std::array<at::Tensor, 3> p;
  auto view = [&](int i, int rows, int cols, int channels) {
    return raw.as_strided({rows, cols, channels}, {l.stride[i], channels, 1}, int64_t(l.offset[i]));
  };
  switch (l.format) {
    case PixelFormat::kRGB: p[0] = view(0, l.height, l.width, 3); break;
    case PixelFormat::kRGBA:
    case PixelFormat::kBGRx:
    case PixelFormat::kBGRA: p[0] = view(0, l.height, l.width, 4); break;
    case PixelFormat::kI420:
      p[0] = view(0, l.height, l.width, 1);
      p[1] = view(1, l.chroma_height(), l.chroma_width(), 1);
      p[2] = view(2, l.chroma_height(), l.chroma_width(), 1);
      break;
    case PixelFormat::kNV12:
      p[0] = view(0, l.height, l.width, 1);
      p[1] = view(1, l.chroma_height(), l.chroma_width(), 2);
      break;
  }
  return p;
}

// Resizes a float NCHW tensor with bilinear filtering, antialiased when
// shrinking so that downscaled camera frames do not alias.
inline at::Tensor resize(const at::Tensor& x, int height, int width) {
  if (x.size(2) == height && x.size(3) == width) return x;
  const bool shrinking = height < x.size(2) || width < x.size(3);
  if (shrinking) return at::_upsample_bilinear2d_aa(x, {height, width}, false);
  return at::upsample_bilinear2d(x, {height, width}, false);
}

struct YuvScale {
  double y_offset, y_scale, c_scale;
};

inline YuvScale yuv_scale(const YuvMatrix& m) {
  return m.full_range ? YuvScale{0.0, 255.0, 255.0} : YuvScale{16.0, 219.0, 224.0};
}

inline at::Tensor to_byte(const at::Tensor& x) { return x.round().clamp(0, 255).to(torch::kUInt8); }

// Planes (uint8, on the device they are to be converted on) -> [1,3,height,
// width] float RGB in [0,1] on that device.
inline at::Tensor to_model(const FrameLayout& l, const std::array<at::Tensor, 3>& p, int height, int width) {
  switch (l.format) {
    case PixelFormat::kRGB:
    case PixelFormat::kRGBA:
    case PixelFormat::kBGRx:
    case PixelFormat::kBGRA: {
      at::Tensor t = p[0].narrow(2, 0, 3);
      if (l.format == PixelFormat::kBGRx || l.format == PixelFormat::kBGRA) t = t.flip(2);
      t = t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat).div_(255.0);
      return resize(t, height, width).clamp(0, 1);
    }
    case PixelFormat::kI420:
    case PixelFormat::kNV12: {
      at::Tensor uv = l.format == PixelFormat::kI420 ? torch::cat({p[1], p[2]}, 2) : p[1];
      // Scale the planes to the model's size first, then convert: the
      // colour maths then runs once per model pixel, not per camera pixel.
      const YuvScale s = yuv_scale(l.matrix);
      at::Tensor yf = p[0].permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat);
      at::Tensor cf = uv.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat);
      yf = resize(yf, height, width).sub_(s.y_offset).div_(s.y_scale);
      cf = resize(cf, height, width).sub_(128.0).div_(s.c_scale);
      at::Tensor pb = cf.narrow(1, 0, 1);
      at::Tensor pr = cf.narrow(1, 1, 1);
      const double kr = l.matrix.kr, kb = l.matrix.kb, kg = 1.0 - kr - kb;
      at::Tensor r = yf + pr * (2.0 * (1.0 - kr));
      at::Tensor b = yf + pb * (2.0 * (1.0 - kb));
      at::Tensor g = (yf - r * kr - b * kb) / kg;
      return torch::cat({r, g, b}, 1).clamp(0, 1);
    }
  }
  return {};
}

// [1,3,h,w] float RGB in [0,1] -> the planes |dst| (uint8 views on the
// same device) laid out as |l|.
inline void from_model(const at::Tensor& image, const FrameLayout& l, const std::array<at::Tensor, 3>& dst) {
  switch (l.format) {
    case PixelFormat::kRGB:
    case PixelFormat::kRGBA:
    case PixelFormat::kBGRx:
    case PixelFormat::kBGRA: {
      at::Tensor rgb = to_byte(resize(image, l.height, l.width).mul(255.0));
      rgb = rgb.squeeze(0).permute({1, 2, 0});  // HWC
      if (l.format == PixelFormat::kBGRx || l.format == PixelFormat::kBGRA) rgb = rgb.flip(2);
      dst[0].narrow(2, 0, 3).copy_(rgb);
      if (l.format != PixelFormat::kRGB) dst[0].select(2, 3).fill_(255);
      return;
    }
    case PixelFormat::kI420:
    case PixelFormat::kNV12: {
      const YuvScale s = yuv_scale(l.matrix);
      const double kr = l.matrix.kr, kb = l.matrix.kb, kg = 1.0 - kr - kb;
      auto luma = [&](const at::Tensor& x) {
        return x.narrow(1, 0, 1) * kr + x.narrow(1, 1, 1) * kg + x.narrow(1, 2, 1) * kb;
      };
      at::Tensor full = resize(image, l.height, l.width);
      at::Tensor y = to_byte(luma(full).mul_(s.y_scale).add_(s.y_offset));
      at::Tensor half = resize(image, l.chroma_height(), l.chroma_width());
      at::Tensor yc = luma(half);
      at::Tensor u = to_byte((half.narrow(1, 2, 1) - yc).div_(2.0 * (1.0 - kb)).mul_(s.c_scale).add_(128.0));
      at::Tensor v = to_byte((half.narrow(1, 0, 1) - yc).div_(2.0 * (1.0 - kr)).mul_(s.c_scale).add_(128.0));
      dst[0].copy_(y.squeeze(0).permute({1, 2, 0}));
      if (l.format == PixelFormat::kI420) {
        dst[1].copy_(u.squeeze(0).permute({1, 2, 0}));
        dst[2].copy_(v.squeeze(0).permute({1, 2, 0}));
      } else {
        dst[1].copy_(torch::cat({u, v}, 1).squeeze(0).permute({1, 2, 0}));
      }
      return;
    }
  }
}

// The planes GStreamer holds for a frame (CPU memory), as tensors.
inline std::array<at::Tensor, 3> host_planes(const FrameLayout& l, const Planes& in) {
  std::array<at::Tensor, 3> p;
  switch (l.format) {
    case PixelFormat::kRGB: p[0] = plane(in.data[0], l.height, l.width, 3, l.stride[0]); break;
    case PixelFormat::kRGBA:
    case PixelFormat::kBGRx:
    case PixelFormat::kBGRA: p[0] = plane(in.data[0], l.height, l.width, 4, l.stride[0]); break;
    case PixelFormat::kI420:
      p[0] = plane(in.data[0], l.height, l.width, 1, l.stride[0]);
      p[1] = plane(in.data[1], l.chroma_height(), l.chroma_width(), 1, l.stride[1]);
      p[2] = plane(in.data[2], l.chroma_height(), l.chroma_width(), 1, l.stride[2]);
      break;
    case PixelFormat::kNV12:
      p[0] = plane(in.data[0], l.height, l.width, 1, l.stride[0]);
      p[1] = plane(in.data[1], l.chroma_height(), l.chroma_width(), 2, l.stride[1]);
      break;
  }
  return p;
}

}  // namespace mirage::convert
