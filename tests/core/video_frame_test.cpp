#include "video_frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace mirage {
namespace {

TEST(FrameLayout, TightLayoutsMatchGStreamer) {
  // Values from gst_video_info_set_format() for the same sizes.
  FrameLayout rgb = FrameLayout::tight(PixelFormat::kRGB, 33, 10);
  EXPECT_EQ(rgb.stride[0], 100);  // 99 rounded up to 4
  EXPECT_EQ(rgb.size, 1000u);

  FrameLayout i420 = FrameLayout::tight(PixelFormat::kI420, 33, 11);
  EXPECT_EQ(i420.plane_count(), 3);
  EXPECT_EQ(i420.stride[0], 36);
  EXPECT_EQ(i420.stride[1], 20);  // 17 rounded up
  EXPECT_EQ(i420.offset[1], 36u * 12);  // rows padded to an even count
  EXPECT_EQ(i420.offset[2], 36u * 12 + 20 * 6);
  EXPECT_EQ(i420.size, 36u * 12 + 2 * 20 * 6);

  FrameLayout nv12 = FrameLayout::tight(PixelFormat::kNV12, 32, 10);
  EXPECT_EQ(nv12.plane_count(), 2);
  EXPECT_EQ(nv12.stride[1], 32);
  EXPECT_EQ(nv12.size, 32u * 10 + 32 * 5);
}

TEST(FrameLayout, NeutralFillIsGreyAndOpaque) {
  for (PixelFormat f : {PixelFormat::kRGB, PixelFormat::kRGBA, PixelFormat::kBGRA, PixelFormat::kI420}) {
    FrameLayout l = FrameLayout::tight(f, 8, 4);
    std::vector<uint8_t> data(l.size, 0);
    fill_neutral(l, data.data());
    EXPECT_EQ(data[0], 128) << to_string(f);
    if (f == PixelFormat::kRGBA || f == PixelFormat::kBGRA) {
      EXPECT_EQ(data[3], 255) << to_string(f);
    }
    if (f == PixelFormat::kI420) {
      EXPECT_EQ(data[l.offset[1]], 128);
      EXPECT_EQ(data[l.offset[2]], 128);
    }
  }
}

}  // namespace
}  // namespace mirage
