#include "CSHA256.h"

#include <stdlib.h>

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

int confvault_sha256_hardware_available(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return ssse3 && sse41 && ((b >> 29) & 1);
}

#define HARDWARE __attribute__((target("sha,sse4.1,ssse3")))

// The rounds take the state as two vectors, (a, b, e, f) and (c, d, g, h), as Intel's SHA extensions
// document it.
HARDWARE static inline void load(const uint32_t *state, __m128i *abef, __m128i *cdgh) {
  __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);
  __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);
  *abef = _mm_alignr_epi8(dcba, efgh, 8);
  *cdgh = _mm_blend_epi16(efgh, dcba, 0xF0);
}

HARDWARE static inline void store(uint32_t *state, __m128i abef, __m128i cdgh) {
  __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(dchg, feba, 8));
}

// The message words of rounds 4j to 4j + 3: the block's own for j < 4, then from the four before.
#define BIG_ENDIAN_WORDS _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)
#define SCHEDULE(m, j)                                                                                    \
  ((j) < 4 ? _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data##m + 16 * (j))), BIG_ENDIAN_WORDS) \
           : _mm_sha256msg2_epu32(                                                                     \
                 _mm_add_epi32(_mm_sha256msg1_epu32(m[(j) - 4], m[(j) - 3]),                           \
                     _mm_alignr_epi8(m[(j) - 1], m[(j) - 2], 4)),                                      \
                 m[(j) - 1]))

HARDWARE void confvault_sha256_blocks_hardware(uint32_t state[8], const uint8_t *data, size_t blocks) {
  __m128i abef, cdgh;
  load(state, &abef, &cdgh);
  const uint8_t *dataM = data;
  for (; blocks > 0; blocks--, dataM += 64) {
    __m128i savedABEF = abef, savedCDGH = cdgh, M[16];
#pragma clang loop unroll(full)
    for (int j = 0; j < 16; j++) {
      M[j] = SCHEDULE(M, j);
      __m128i words = _mm_add_epi32(M[j], _mm_loadu_si128((const __m128i *)&K[4 * j]));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, words);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(words, 0x0E));
    }
    abef = _mm_add_epi32(abef, savedABEF);
    cdgh = _mm_add_epi32(cdgh, savedCDGH);
  }
  store(state, abef, cdgh);
}

HARDWARE void confvault_sha256_blocks2_hardware(
    uint32_t first[8], const uint8_t *firstData, uint32_t second[8], const uint8_t *secondData,
    size_t blocks) {
  __m128i abef, cdgh, abef2, cdgh2;
  load(first, &abef, &cdgh);
  load(second, &abef2, &cdgh2);
  const uint8_t *dataM = firstData, *dataN = secondData;
  for (; blocks > 0; blocks--, dataM += 64, dataN += 64) {
    __m128i savedABEF = abef, savedCDGH = cdgh, savedABEF2 = abef2, savedCDGH2 = cdgh2, M[16], N[16];
#pragma clang loop unroll(full)
    for (int j = 0; j < 16; j++) {
      __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * j]);
      M[j] = SCHEDULE(M, j);
      N[j] = SCHEDULE(N, j);
      __m128i words = _mm_add_epi32(M[j], k), words2 = _mm_add_epi32(N[j], k);
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, words);
      cdgh2 = _mm_sha256rnds2_epu32(cdgh2, abef2, words2);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(words, 0x0E));
      abef2 = _mm_sha256rnds2_epu32(abef2, cdgh2, _mm_shuffle_epi32(words2, 0x0E));
    }
    abef = _mm_add_epi32(abef, savedABEF);
    cdgh = _mm_add_epi32(cdgh, savedCDGH);
    abef2 = _mm_add_epi32(abef2, savedABEF2);
    cdgh2 = _mm_add_epi32(cdgh2, savedCDGH2);
  }
  store(first, abef, cdgh);
  store(second, abef2, cdgh2);
}

#else

int confvault_sha256_hardware_available(void) { return 0; }

// Never called: there are no SHA extensions to use here (see confvault_sha256_hardware_available).
void confvault_sha256_blocks_hardware(uint32_t state[8], const uint8_t *data, size_t blocks) { abort(); }

void confvault_sha256_blocks2_hardware(
    uint32_t first[8], const uint8_t *firstData, uint32_t second[8], const uint8_t *secondData,
    size_t blocks) {
  abort();
}

#endif
