#ifndef CONFVAULT_CSHA256_H
#define CONFVAULT_CSHA256_H

#include <stddef.h>
#include <stdint.h>

// SHA-256's compression function over whole 64-byte blocks, with the processor's SHA extensions, on
// a state of eight words (a to h, as FIPS 180-4 names them). Swift's crypto libraries hash one message
// at a time and keep their state to themselves; `check` hashes two messages at once (see
// confvault_sha256_blocks2_hardware) and keeps states of its own at block boundaries. Where the
// extensions are missing, it uses swift-crypto instead (see SHA256Blocks).

// Whether the processor's SHA extensions are there (x86-64 with SHA, SSSE3 and SSE4.1): then the
// `_hardware` functions may be called.
int confvault_sha256_hardware_available(void);

// `blocks` blocks of `data` into `state`, with the SHA extensions.
void confvault_sha256_blocks_hardware(uint32_t state[8], const uint8_t *data, size_t blocks);

// Two messages' blocks at once, `blocks` of each, with the SHA extensions: each round's instruction
// waits for the one before it, and the other message's rounds fill the time between (on the 2-core
// AMD EPYC the benchmarks run on, 1.64 times as many bytes a second as one message).
void confvault_sha256_blocks2_hardware(
    uint32_t first[8], const uint8_t *firstData, uint32_t second[8], const uint8_t *secondData,
    size_t blocks);

#endif
