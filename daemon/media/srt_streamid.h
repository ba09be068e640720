// The SRT Access Control streamid (no libsrt here: fuzzed on its own).
#pragma once

#include <optional>
#include <string>

namespace mirage::media {

// The fields of an Access Control streamid ("#!::k=v,k=v"); nullopt when
// |streamid| does not follow the convention.
struct SrtStreamId {
  std::string resource;  // r
  std::string mode;      // m (empty: not given)
  std::string secret;    // s
  std::string user;      // u
};
// A streamid that was percent-encoded for a URL ("%23%21%3A%3Ar%3D..."),
// which ffmpeg 5 sends as written while GStreamer decodes it, is decoded
// first: the same URL works with both.
std::optional<SrtStreamId> parse_srt_streamid(const std::string& streamid);

}  // namespace mirage::media
