// The "mirage" GStreamer plugin: live video through diffusion models.
#include <gst/gst.h>

#include "gstdiffusionfilter.h"

static gboolean plugin_init(GstPlugin* plugin) {
  return gst_element_register(plugin, "diffusionfilter", GST_RANK_NONE,
                              GST_TYPE_DIFFUSION_FILTER);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, mirage,
                  "Live video transformed by diffusion models (TorchScript, libtorch)",
                  plugin_init, VERSION, "LGPL", "Mirage", "https://github.com/mirage-live/mirage")
