// The picture kernels (CAMs and guided outputs to bytes), twice: on CPU threads (colormap.cc,
// deprocess.cc) and on CUDA (colormap.cu, deprocess.cu), with the numbers of their TypeScript
// twins in lib/kernels/pictures.ts: numpy's float32 arithmetic, one float operation per step (no
// FMA), so every device writes the same bytes. The helpers below are that arithmetic, shared by
// the C++ and the CUDA kernels. Pointers are host memory, already checked (native/check.h).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "resize_index.h"  // GRADCAM_HD
#include "shape.h"

namespace gradcam {

enum class Colormap { Jet = 0, Turbo = 1, Viridis = 2 };

struct OverlayOptions {
  Colormap colormap;   // default jet
  double imageWeight;  // weight of the image, 0..1 (default 0.5)
  unsigned channels;   // 3 (RGB) or 4 (RGBA, alpha 255)
};

/** np.uint8(255 * v): float32 product, truncated toward zero, clamped; NaN -> 0. */
GRADCAM_HD inline unsigned toUint8Index(float v) {
  const float s = 255.0f * v;
  if (!(s > 0.0f)) return 0;
  return s >= 255.0f ? 255u : (unsigned)s;
}

/** np.uint8(255 * (x / max)) of show_cam_on_image's last step (x / 0 -> inf -> 255, 0 / 0 -> 0). */
GRADCAM_HD inline uint8_t scaledByte(float x, float max) {
  const float s = 255.0f * (x / max);
  return s > 0.0f ? (s >= 255.0f ? (uint8_t)255 : (uint8_t)(unsigned)s) : (uint8_t)0;
}

/** deprocess_image's per-element steps: v = f(f(f(x - mean) / denom) * tenth) + 0.5, clipped, *255, truncated. */
GRADCAM_HD inline uint8_t deprocessByte(float x, float mean, float denom) {
  const float tenth = 0.1f;  // float32(0.1): np.float32 array * Python 0.1 casts the scalar
  float v = ((x - mean) / denom) * tenth;
  v = v + 0.5f;
  v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
  return (uint8_t)(unsigned)(v * 255.0f);
}

// numpy's pairwise summation in float32 (loops_utils.h: below 8 a plain loop; up to 128 eight
// accumulators; above, split at a multiple of 8 and recurse). get(i) is the i-th value summed.
template <typename Get>
GRADCAM_HD float pairwiseSum(const Get& get, size_t start, size_t n) {
  if (n < 8) {
    float res = 0.0f;
    for (size_t i = 0; i < n; i++) res = res + get(start + i);
    return res;
  }
  if (n <= 128) {
    float r[8];
    for (int j = 0; j < 8; j++) r[j] = get(start + j);
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++) r[j] = r[j] + get(start + i + j);
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res = res + get(start + i);
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwiseSum(get, start, n2) + pairwiseSum(get, start + n2, n - n2);
}

/** numpy's buffer size: np.sum adds blocks of at most this many elements, each pairwise. */
constexpr size_t kNumpyBlock = 8192;

/** np.mean's last step for float32: float32(sum / count), the division in double. */
GRADCAM_HD inline float meanOf(float sum, size_t count) { return (float)((double)sum / (double)count); }

/** float32(std + 1e-5) from the float32 sum of squared deviations. */
GRADCAM_HD inline float deprocessDenominator(float sumSq, size_t count) {
  const float variance = (float)((double)sumSq / (double)count);
  const float stdev = (float)sqrt((double)variance);
  return (float)((double)stdev + 1e-5);
}

#define GRADCAM_PICTURE_DECLARATIONS                                                                   \
  /* out [n,H,W,3]: the colormap's RGB of np.uint8(255 * map) for maps [n,H,W] */                     \
  void applyColormap(const float* maps, size_t n, size_t H, size_t W, Colormap colormap, uint8_t* out); \
  /* out [n,H,W,o.channels]: show_cam_on_image per image; images [n,H,W,3] float RGB */              \
  void showCamOnImage(const float* images, const float* maps, size_t n, size_t H, size_t W,           \
                      const OverlayOptions& o, uint8_t* out);                                          \
  /* out [n,H,W,c]: deprocess_image per image of data in `layout` */                                  \
  void deprocessImage(const float* data, size_t n, size_t c, size_t H, size_t W, Layout layout,       \
                      uint8_t* out);                                                                   \
  /* out [n,H,W,3]: grey [n,H,W] in three channels */                                                 \
  void greyToRgb(const uint8_t* grey, size_t n, size_t H, size_t W, uint8_t* out);

namespace cpu {
GRADCAM_PICTURE_DECLARATIONS
}  // namespace cpu
namespace cuda {
GRADCAM_PICTURE_DECLARATIONS
}  // namespace cuda

#undef GRADCAM_PICTURE_DECLARATIONS

}  // namespace gradcam
