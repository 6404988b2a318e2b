// The colormap picture kernels on CPU threads: applyColormap, showCamOnImage (pytorch-grad-cam's
// show_cam_on_image) and greyToRgb. Numbers: lib/kernels/pictures.ts; tables: colormap_lut.h.
#include <cmath>
#include <vector>

#include "colormap_lut.h"
#include "pictures.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {

void applyColormap(const float* maps, size_t n, size_t H, size_t W, Colormap colormap, uint8_t* out) {
  const uint8_t* lut = kColormapLut[(int)colormap];
  const size_t count = n * H * W;
  parallelFor(count, grainFor(count, 4), [&](size_t b, size_t e) {
    for (size_t i = b; i < e; i++) {
      const uint8_t* rgb = lut + 3 * toUint8Index(maps[i]);
      out[3 * i] = rgb[0];
      out[3 * i + 1] = rgb[1];
      out[3 * i + 2] = rgb[2];
    }
  });
}

// Per image: the blend (kept as float32 in a per-image buffer), its max, then the scaled bytes.
// Images run in parallel; one image runs on one thread (n = 1 pictures are small).
void showCamOnImage(const float* images, const float* maps, size_t n, size_t H, size_t W, const OverlayOptions& o,
                    uint8_t* out) {
  const uint8_t* lut = kColormapLut[(int)o.colormap];
  const float wh = (float)(1.0 - o.imageWeight);  // numpy casts the Python-float weights to float32
  const float wi = (float)o.imageWeight;
  const size_t hw = H * W, ch = o.channels;
  // the heatmap's 256 x 3 values as float32(lut / 255), times wh: the same two float operations
  float heat[768];
  for (int i = 0; i < 768; i++) heat[i] = wh * ((float)lut[i] / 255.0f);
  parallelFor(n, 1, [&](size_t b, size_t e) {
    std::vector<float> cam(hw * 3);
    for (size_t img = b; img < e; img++) {
      const float* im = images + img * hw * 3;
      const float* m = maps + img * hw;
      float mx = -INFINITY;
      for (size_t p = 0; p < hw; p++) {
        const float* h = heat + 3 * toUint8Index(m[p]);
        for (size_t c = 0; c < 3; c++) {
          const float v = h[c] + wi * im[3 * p + c];
          cam[3 * p + c] = v;
          if (v > mx) mx = v;
        }
      }
      uint8_t* o8 = out + img * hw * ch;
      if (ch == 3) {
        for (size_t q = 0; q < hw * 3; q++) o8[q] = scaledByte(cam[q], mx);
      } else {
        for (size_t p = 0; p < hw; p++) {
          o8[4 * p] = scaledByte(cam[3 * p], mx);
          o8[4 * p + 1] = scaledByte(cam[3 * p + 1], mx);
          o8[4 * p + 2] = scaledByte(cam[3 * p + 2], mx);
          o8[4 * p + 3] = 255;
        }
      }
    }
  });
}

void greyToRgb(const uint8_t* grey, size_t n, size_t H, size_t W, uint8_t* out) {
  const size_t count = n * H * W;
  parallelFor(count, grainFor(count, 2), [&](size_t b, size_t e) {
    for (size_t i = b; i < e; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = grey[i];
  });
}

}  // namespace cpu
}  // namespace gradcam
