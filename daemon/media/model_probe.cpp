#include "model_probe.h"

#include <gst/gst.h>

namespace mirage::media {

std::unique_ptr<ModelProbe> ModelProbe::load(const std::string& model, const std::string& device, std::string* error) {
  GstElement* filter = gst_element_factory_make("diffusionfilter", "filter");
  if (!filter) {
    *error = "no diffusionfilter element: is the mirage plugin on GST_PLUGIN_PATH?";
    return nullptr;
  }
  GstElement* pipeline = gst_pipeline_new("model-probe");
  gst_bin_add(GST_BIN(pipeline), filter);
  g_object_set(filter, "model", model.c_str(), "device", device.c_str(), nullptr);
  std::unique_ptr<ModelProbe> probe(new ModelProbe(pipeline));
  // Nothing links to it: PAUSED loads, checks and warms up the model and
  // returns at once (no sink waits for a buffer).
  if (gst_element_set_state(pipeline, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE) {
    *error = "cannot load the model " + model + " on " + device;
    GstBus* bus = gst_element_get_bus(pipeline);
    if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
      GError* e = nullptr;
      gst_message_parse_error(m, &e, nullptr);
      if (e) *error += std::string(": ") + e->message;
      g_clear_error(&e);
      gst_message_unref(m);
    }
    gst_object_unref(bus);
    return nullptr;
  }
  gchar** names = nullptr;
  g_object_get(filter, "styles", &names, nullptr);
  for (gchar** n = names; n && *n; ++n) probe->styles_.emplace_back(*n);
  g_strfreev(names);
  return probe;
}

std::vector<uint64_t> ModelProbe::batch_sizes() const {
  std::vector<uint64_t> out;
  GstElement* filter = gst_bin_get_by_name(GST_BIN(pipeline_), "filter");
  if (!filter) return out;
  GValue sizes = G_VALUE_INIT;
  g_value_init(&sizes, GST_TYPE_ARRAY);
  g_object_get_property(G_OBJECT(filter), "batch-sizes", &sizes);
  for (guint i = 0; i < gst_value_array_get_size(&sizes); ++i)
    out.push_back(g_value_get_uint64(gst_value_array_get_value(&sizes, i)));
  g_value_unset(&sizes);
  gst_object_unref(filter);
  return out;
}

ModelProbe::~ModelProbe() {
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_object_unref(pipeline_);
}

}  // namespace mirage::media
