// Reading the dimensions an encoded frame declares, from its headers alone,
// before any decoder sees it: a 64 KB JPEG may declare 65535x65535 and make
// a decoder allocate gigabytes. No GStreamer here (fuzzed on its own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace mirage::media {

struct Dimensions {
  int width = 0;
  int height = 0;
};

// A JPEG's frame header, found by walking its markers from SOI to the first
// SOS. nullopt and |why| when it is no JPEG a decoder can take: truncated,
// markers out of order, no SOF before SOS, a zero size, or a kind libjpeg
// does not decode here (not 8-bit baseline, extended or progressive with 1
// or 3 components).
std::optional<Dimensions> jpeg_dimensions(const uint8_t* data, size_t size, std::string* why);

// A VP8 key frame's size (RFC 6386, 9.1); nullopt for an inter frame or a
// malformed header.
std::optional<Dimensions> vp8_keyframe_dimensions(const uint8_t* data, size_t size);

// A VP9 key frame's size (VP9 bitstream spec, 6.2 uncompressed header);
// nullopt for an inter frame or a malformed header.
std::optional<Dimensions> vp9_keyframe_dimensions(const uint8_t* data, size_t size);

}  // namespace mirage::media
