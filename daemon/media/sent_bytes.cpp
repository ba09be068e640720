#include "sent_bytes.h"

#include <gst/gst.h>
#include <libsoup/soup.h>

namespace mirage::media {

namespace {

using Counter = std::shared_ptr<std::atomic<uint64_t>>;

void free_counter(gpointer data, GClosure*) { delete static_cast<Counter*>(data); }

GstPadProbeReturn count_buffers(GstPad*, GstPadProbeInfo* info, gpointer data) {
  std::atomic<uint64_t>& counter = **static_cast<Counter*>(data);
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
    counter += gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
  else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    counter += gst_buffer_list_calculate_size(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  return GST_PAD_PROBE_OK;
}

}  // namespace

std::string SentBytes::json() const {
  return "{\"hls\":" + std::to_string(hls.load()) +
         ",\"websocket\":" + std::to_string(websocket.load()) +
         ",\"whep\":" + std::to_string(whep.load()) +
         ",\"thumbnail\":" + std::to_string(thumbnail.load()) + "}";
}

void count_response_body(SoupServerMessage* msg, std::shared_ptr<std::atomic<uint64_t>> counter) {
  g_signal_connect_data(msg, "wrote-body-data",
                        G_CALLBACK(+[](SoupServerMessage*, guint chunk, gpointer data) {
                          **static_cast<Counter*>(data) += chunk;
                        }),
                        new Counter(std::move(counter)), free_counter, GConnectFlags(0));
}

void count_network_sends(GstElement* pipeline, std::shared_ptr<std::atomic<uint64_t>> counter) {
  g_signal_connect_data(
      pipeline, "deep-element-added",
      G_CALLBACK(+[](GstBin*, GstBin*, GstElement* element, gpointer data) {
        GstElementFactory* factory = gst_element_get_factory(element);
        if (!factory ||
            g_strcmp0(gst_plugin_feature_get_name(GST_PLUGIN_FEATURE(factory)), "nicesink") != 0)
          return;
        GstPad* pad = gst_element_get_static_pad(element, "sink");
        if (!pad) return;
        gst_pad_add_probe(
            pad, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
            count_buffers, new Counter(*static_cast<Counter*>(data)),
            [](gpointer p) { delete static_cast<Counter*>(p); });
        gst_object_unref(pad);
      }),
      new Counter(std::move(counter)), free_counter, GConnectFlags(0));
}

}  // namespace mirage::media
