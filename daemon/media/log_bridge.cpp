#include "log_bridge.h"

#include <glib.h>
#include <gst/gst.h>

#include <cstring>
#include <string>

#include "log/log.h"

namespace mirage::media {

namespace {

std::string field_text(const GLogField& f) {
  if (!f.value) return "";
  return f.length < 0 ? std::string(static_cast<const char*>(f.value))
                      : std::string(static_cast<const char*>(f.value), size_t(f.length));
}

GLogWriterOutput glib_writer(GLogLevelFlags flags, const GLogField* fields, gsize count, gpointer) {
  std::string message, domain;
  for (gsize i = 0; i < count; ++i) {
    if (!std::strcmp(fields[i].key, "MESSAGE")) message = field_text(fields[i]);
    else if (!std::strcmp(fields[i].key, "GLIB_DOMAIN")) domain = field_text(fields[i]);
  }
  const log::Level level = (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) ? log::Level::kError
                           : (flags & G_LOG_LEVEL_WARNING)                      ? log::Level::kWarn
                           : (flags & G_LOG_LEVEL_MESSAGE)                      ? log::Level::kInfo
                                                                                : log::Level::kDebug;
  // GLib's info and debug messages stay off unless G_MESSAGES_DEBUG names
  // their domain, as with GLib's own writer.
  if (level == log::Level::kDebug && g_log_writer_default_would_drop(flags, domain.empty() ? nullptr : domain.c_str()))
    return G_LOG_WRITER_HANDLED;
  log::write(level, message, {{"source", "glib"}, {"domain", domain.empty() ? "-" : domain}});
  return G_LOG_WRITER_HANDLED;
}

// Only what GST_DEBUG enables reaches this (by default nothing).
// ERROR and WARNING keep their level; the rest is debug.
void gst_writer(GstDebugCategory* category, GstDebugLevel level, const gchar* file, const gchar*, gint line,
                GObject* object, GstDebugMessage* message, gpointer) {
  const log::Level l = level == GST_LEVEL_ERROR                                  ? log::Level::kError
                       : (level == GST_LEVEL_WARNING || level == GST_LEVEL_FIXME) ? log::Level::kWarn
                                                                                  : log::Level::kDebug;
  if (!log::enabled(l)) return;
  const gchar* text = gst_debug_message_get(message);
  // The name without the object's lock (the default writer reads it so too).
  const char* name = object && GST_IS_OBJECT(object) ? GST_OBJECT_NAME(object) : nullptr;
  log::write(l, text ? text : "",
             {{"source", "gstreamer"}, {"category", gst_debug_category_get_name(category)},
              {"object", name ? name : "-"}, {"file", file ? file : "-"}, {"line", line}});
}

}  // namespace

void route_library_logs() {
  g_log_set_writer_func(glib_writer, nullptr, nullptr);
  gst_debug_remove_log_function(gst_debug_log_default);
  gst_debug_add_log_function(gst_writer, nullptr, nullptr);
}

}  // namespace mirage::media
