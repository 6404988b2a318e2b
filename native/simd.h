// Wider vectors without giving up portability: on x86-64 Linux/glibc, hot loops are compiled
// twice (AVX2 and the x86-64 baseline) and the loader picks one at run time (GCC/Clang
// target_clones, an ifunc). Same IEEE operations in the same order, so the same numbers; no
// FMA (fma is not in the target, and -ffp-contract=off). Elsewhere: the baseline only.
#pragma once
#include <cstddef>

#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(GRADCAM_NO_TARGET_CLONES)
#define GRADCAM_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define GRADCAM_VECTOR_CLONES
#endif
