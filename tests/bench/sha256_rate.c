/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 throughput of the code metald-agent verifies chunks with, on one
 * core: a buffer (default 1 GiB) hashed in 4 MiB pieces, again and again for
 * at least SECONDS, through
 *
 *   chunk      manifest_sha256() once per 4 MiB piece: what the agent does
 *              for every disk chunk (manifest_chunk_check), one EVP_Digest
 *   streaming  manifest_sha256_begin/add/end over the whole buffer, 4 MiB
 *              per add
 *
 * Prints "chunk BYTES_PER_S" and "streaming BYTES_PER_S", one line each.
 * Built and run by tests/bench/bench-image.sh, linked with libmetald-core.a.
 *
 *   sha256_rate [SECONDS [MIB]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metald/manifest.h"

#define PIECE ((size_t)4 << 20)

static volatile uint8_t keep;  /* keeps the digests live */

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* incompressible, not all zero; the digest does not care, the cache might */
static void fill(uint8_t *p, size_t len)
{
        uint64_t x = 0x9e3779b97f4a7c15ULL;

        for (size_t i = 0; i + 8 <= len; i += 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(p + i, &x, 8);
        }
}

static int pass_chunks(const uint8_t *buf, size_t len, uint8_t *sink)
{
        uint8_t md[MANIFEST_SHA256_BYTES];

        for (size_t off = 0; off < len; off += PIECE) {
                if (manifest_sha256(buf + off, len - off < PIECE ? len - off : PIECE, md) < 0)
                        return -1;
                *sink ^= md[0];
        }
        return 0;
}

static int pass_streaming(const uint8_t *buf, size_t len, uint8_t *sink)
{
        struct manifest_sha256_state *st;
        uint8_t md[MANIFEST_SHA256_BYTES];

        if (manifest_sha256_begin(&st) < 0)
                return -1;
        for (size_t off = 0; off < len; off += PIECE)
                if (manifest_sha256_add(st, buf + off, len - off < PIECE ? len - off : PIECE) < 0) {
                        manifest_sha256_free(st);
                        return -1;
                }
        if (manifest_sha256_end(st, md) < 0)
                return -1;
        *sink ^= md[0];
        return 0;
}

static int measure(const char *name, int (*pass)(const uint8_t *, size_t, uint8_t *), const uint8_t *buf,
                   size_t len, double secs)
{
        uint8_t sink = 0;
        double t0 = now_s(), t;
        uint64_t bytes = 0;

        do {
                if (pass(buf, len, &sink) < 0) {
                        fprintf(stderr, "sha256_rate: %s: the digest failed\n", name);
                        return -1;
                }
                bytes += len;
                t = now_s() - t0;
        } while (t < secs);
        keep = sink;
        printf("%s %.0f\n", name, (double)bytes / t);
        return 0;
}

int main(int argc, char **argv)
{
        double secs = argc > 1 ? atof(argv[1]) : 3.0;
        size_t mib = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1024;
        size_t len = mib << 20;
        uint8_t *buf;

        if (secs <= 0 || mib == 0 || !(buf = malloc(len))) {
                fprintf(stderr, "usage: sha256_rate [SECONDS [MIB]]\n");
                return 2;
        }
        fill(buf, len);
        if (measure("chunk", pass_chunks, buf, len, secs) < 0 ||
            measure("streaming", pass_streaming, buf, len, secs) < 0)
                return 1;
        free(buf);
        return 0;
}
