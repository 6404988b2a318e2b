// Per-image min-max normalization on CPU threads, pytorch-grad-cam's scale_cam_image:
// y = float32(x - min); d = float32(1e-7 + max(y)) (the sum in float64, as numpy promotes
// the scalar); out = y / d. An all-zero image stays all zero.
#include <limits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cpu_internal.h"
#include "kernels.h"
#include "simd.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {

namespace {

#if defined(__SSE2__)
// x86-64 baseline SSE: _mm_min_ps(v, m) returns m when v is NaN, which is `v < m ? v : m`.
float minOf(const float* x, size_t size) {
  const float inf = std::numeric_limits<float>::infinity();
  __m128 m0 = _mm_set1_ps(inf), m1 = m0;
  size_t p = 0;
  for (; p + 8 <= size; p += 8) {
    m0 = _mm_min_ps(_mm_loadu_ps(x + p), m0);
    m1 = _mm_min_ps(_mm_loadu_ps(x + p + 4), m1);
  }
  float lane[8];
  _mm_storeu_ps(lane, m0);
  _mm_storeu_ps(lane + 4, m1);
  float mn = inf;
  for (float v : lane)
    if (v < mn) mn = v;
  for (; p < size; p++)
    if (x[p] < mn) mn = x[p];
  return mn;
}

// out = x - mn; returns max(out), NaN skipped
float subtractMax(const float* x, size_t size, float mn, float* out) {
  const float inf = std::numeric_limits<float>::infinity();
  const __m128 vmn = _mm_set1_ps(mn);
  __m128 m0 = _mm_set1_ps(-inf), m1 = m0;
  size_t p = 0;
  for (; p + 8 <= size; p += 8) {
    const __m128 y0 = _mm_sub_ps(_mm_loadu_ps(x + p), vmn);
    const __m128 y1 = _mm_sub_ps(_mm_loadu_ps(x + p + 4), vmn);
    _mm_storeu_ps(out + p, y0);
    _mm_storeu_ps(out + p + 4, y1);
    m0 = _mm_max_ps(y0, m0);
    m1 = _mm_max_ps(y1, m1);
  }
  float lane[8];
  _mm_storeu_ps(lane, m0);
  _mm_storeu_ps(lane + 4, m1);
  float mx = -inf;
  for (float v : lane)
    if (v > mx) mx = v;
  for (; p < size; p++) {
    const float y = x[p] - mn;
    out[p] = y;
    if (y > mx) mx = y;
  }
  return mx;
}
#else
float minOf(const float* x, size_t size) {
  float mn = std::numeric_limits<float>::infinity();
  for (size_t p = 0; p < size; p++)
    if (x[p] < mn) mn = x[p];
  return mn;
}

float subtractMax(const float* x, size_t size, float mn, float* out) {
  float mx = -std::numeric_limits<float>::infinity();
  for (size_t p = 0; p < size; p++) {
    const float y = x[p] - mn;
    out[p] = y;
    if (y > mx) mx = y;
  }
  return mx;
}
#endif

}  // namespace

GRADCAM_VECTOR_CLONES
void divideBy(float* out, size_t size, float d) {
  for (size_t p = 0; p < size; p++) out[p] = out[p] / d;
}

void normalizeImage(const float* x, size_t size, float* out) {
  const float mn = minOf(x, size);
  const float mx = subtractMax(x, size, mn, out);  // reads x before writing out: x may be out
  divideBy(out, size, (float)(1e-7 + (double)mx));
}

void minMaxOf(const float* x, size_t size, float& mn, float& mx) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  size_t p = 0;
#if defined(__SSE2__)
  __m128 l0 = _mm_set1_ps(lo), h0 = _mm_set1_ps(hi);
  for (; p + 4 <= size; p += 4) {
    const __m128 v = _mm_loadu_ps(x + p);
    l0 = _mm_min_ps(v, l0);  // keeps l0 where v is NaN
    h0 = _mm_max_ps(v, h0);
  }
  float ll[4], hh[4];
  _mm_storeu_ps(ll, l0);
  _mm_storeu_ps(hh, h0);
  for (int j = 0; j < 4; j++) {
    if (ll[j] < lo) lo = ll[j];
    if (hh[j] > hi) hi = hh[j];
  }
#endif
  for (; p < size; p++) {
    if (x[p] < lo) lo = x[p];
    if (x[p] > hi) hi = x[p];
  }
  mn = lo;
  mx = hi;
}

GRADCAM_VECTOR_CLONES
void normalizeWithMinMax(const float* x, size_t size, float mn, float mx, float* out) {
  // rounding is monotonic, so max over p of float32(x[p] - mn) is float32(mx - mn)
  const float d = (float)(1e-7 + (double)(mx - mn));
  for (size_t p = 0; p < size; p++) out[p] = (x[p] - mn) / d;
}

void minMaxNormalize(const float* x, size_t n, size_t size, float* out) {
  parallelFor(n, grainFor(n, 3 * size), [&](size_t b, size_t e) {
    for (size_t img = b; img < e; img++) normalizeImage(x + img * size, size, out + img * size);
  });
}

}  // namespace cpu
}  // namespace gradcam
