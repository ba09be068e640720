// diffusionfilter: runs a TorchScript img2img model on live video through a
// leaky single-buffer queue. See docs/element.md.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_DIFFUSION_FILTER (gst_diffusion_filter_get_type())
G_DECLARE_FINAL_TYPE(GstDiffusionFilter, gst_diffusion_filter, GST, DIFFUSION_FILTER, GstElement)

#define GST_TYPE_DIFFUSION_FILTER_OUTPUT_MODE (gst_diffusion_filter_output_mode_get_type())
GType gst_diffusion_filter_output_mode_get_type(void);

typedef enum {
  GST_DIFFUSION_FILTER_OUTPUT_HOLD,
  GST_DIFFUSION_FILTER_OUTPUT_PROCESSED,
} GstDiffusionFilterOutputMode;

G_END_DECLS
