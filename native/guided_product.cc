// Guided Grad-CAM's product on CPU threads: out = G * cam, cam [n,H,W] broadcast over the
// c channels of G (nchw [n,c,H,W] or nhwc [n,H,W,c]). Memory-bound: contiguous runs only.
#include "kernels.h"
#include "simd.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {
namespace {

GRADCAM_VECTOR_CLONES
void multiply(const float* __restrict__ g, const float* __restrict__ m, float* __restrict__ o, size_t count) {
  for (size_t p = 0; p < count; p++) o[p] = g[p] * m[p];
}

}  // namespace

void guidedProduct(const float* guided, const float* cam, size_t n, size_t c, size_t H, size_t W, Layout layout,
                   float* out) {
  const size_t hw = H * W;
  if (layout == Layout::NCHW) {
    const size_t planes = n * c;
    parallelFor(planes, grainFor(planes, hw), [&](size_t b, size_t e) {
      for (size_t pl = b; pl < e; pl++) multiply(guided + pl * hw, cam + (pl / c) * hw, out + pl * hw, hw);
    });
    return;
  }
  const size_t pixels = n * hw;
  parallelFor(pixels, grainFor(pixels, c), [&](size_t b, size_t e) {
    const float* __restrict__ g = guided;
    const float* __restrict__ m = cam;
    float* __restrict__ o = out;
    if (c == 3) {
      for (size_t q = b; q < e; q++) {
        const float v = m[q];
        o[3 * q] = g[3 * q] * v;
        o[3 * q + 1] = g[3 * q + 1] * v;
        o[3 * q + 2] = g[3 * q + 2] * v;
      }
    } else {
      for (size_t q = b; q < e; q++) {
        const float v = m[q];
        for (size_t ch = 0; ch < c; ch++) o[q * c + ch] = g[q * c + ch] * v;
      }
    }
  });
}

}  // namespace cpu
}  // namespace gradcam
