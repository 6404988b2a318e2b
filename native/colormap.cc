// The colormap picture kernels on CPU threads: applyColormap, showCamOnImage (pytorch-grad-cam's
// show_cam_on_image) and greyToRgb. Numbers: lib/kernels/pictures.ts; tables: colormap_lut.h.
#include <cmath>
#include <vector>

#include "colormap_lut.h"
#include "pictures.h"
#include "simd.h"
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

namespace {

// cam = heat[lut index] + wi * img for one image (heat = wh * float32(lut / 255)); returns max(cam)
float blend(const float* __restrict__ heat, const float* __restrict__ im, const float* __restrict__ m, size_t hw,
            float wi, float* __restrict__ cam) {
  float mx = -INFINITY;
  for (size_t p = 0; p < hw; p++) {
    const float* h = heat + 3 * toUint8Index(m[p]);
    for (size_t c = 0; c < 3; c++) {
      const float v = h[c] + wi * im[3 * p + c];
      cam[3 * p + c] = v;
      if (v > mx) mx = v;
    }
  }
  return mx;
}

// np.uint8(255 * (cam / max)), branch-free so that it vectorizes (NaN -> 0, as scaledByte)
GRADCAM_VECTOR_CLONES
void scaleBytes(const float* __restrict__ cam, size_t count, float mx, uint8_t* __restrict__ out) {
  for (size_t q = 0; q < count; q++) {
    const float s = 255.0f * (cam[q] / mx);
    const float t = s > 0.0f ? (s < 255.0f ? s : 255.0f) : 0.0f;
    out[q] = (uint8_t)(int)t;
  }
}

}  // namespace

// Per image: the blend (kept as float32 in a per-thread buffer), its max, then the scaled bytes.
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
    thread_local std::vector<float> cam;  // reused: a fresh 600 KB buffer per image costs its page faults
    cam.resize(hw * 3);
    for (size_t img = b; img < e; img++) {
      const float mx = blend(heat, images + img * hw * 3, maps + img * hw, hw, wi, cam.data());
      uint8_t* o8 = out + img * hw * ch;
      if (ch == 3) {
        scaleBytes(cam.data(), hw * 3, mx, o8);
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
