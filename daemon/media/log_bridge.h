// What GLib (g_warning, g_critical: libsoup, libnice, GLib itself) and
// GStreamer's debug system (GST_DEBUG) print goes through log/log.h too, so
// a worker's stderr stays one structured line per event. Call once, after
// gst_init() and before anything logs.
#pragma once

namespace mirage::media {

void route_library_logs();

}  // namespace mirage::media
