// Per-image min-max normalization on CPU threads, pytorch-grad-cam's scale_cam_image:
// y = float32(x - min); d = float32(1e-7 + max(y)) (the sum in float64, as numpy promotes
// the scalar); out = y / d. An all-zero image stays all zero.
#include <limits>

#include "kernels.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {

void normalizeImage(const float* x, size_t size, float* out) {
  float mn = std::numeric_limits<float>::infinity();
  for (size_t p = 0; p < size; p++)
    if (x[p] < mn) mn = x[p];
  float mx = -std::numeric_limits<float>::infinity();
  for (size_t p = 0; p < size; p++) {
    const float y = x[p] - mn;
    out[p] = y;
    if (y > mx) mx = y;
  }
  const float d = (float)(1e-7 + (double)mx);
  for (size_t p = 0; p < size; p++) out[p] = out[p] / d;
}

void minMaxNormalize(const float* x, size_t n, size_t size, float* out) {
  parallelFor(n, grainFor(n, 3 * size), [&](size_t b, size_t e) {
    for (size_t img = b; img < e; img++) normalizeImage(x + img * size, size, out + img * size);
  });
}

}  // namespace cpu
}  // namespace gradcam
