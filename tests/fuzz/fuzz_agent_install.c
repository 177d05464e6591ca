/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the network and the disk control in an install: a chunk's bytes
 * (decoded against a chunk whose digest they match, so the frame checks and
 * the decompressor run on them), a Content-Range value, and a configuration
 * record read back from a disk. Invariants abort.
 *
 * Input: 1 byte of mode (0 chunk, 1 Content-Range, 2 record); for a chunk, 1
 * byte of flags (bit 0: zstd) and 4 bytes (LE) of the length the manifest
 * claims, then the chunk's bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "metald/agent_install.h"
#include "metald/buf.h"

#define FUZZ_MAX_LENGTH (1024 * 1024)

static void require(bool ok)
{
        if (!ok)
                abort();
}

static void check_chunk(const uint8_t *data, size_t size)
{
        struct manifest_chunk c = { 0 };
        enum manifest_compression comp;
        uint8_t *raw;
        int r;

        if (size < 5)
                return;
        comp = data[0] & 1 ? MANIFEST_COMPRESS_ZSTD : MANIFEST_COMPRESS_NONE;
        c.length = (uint64_t)(data[1] | data[2] << 8 | data[3] << 16 | (uint32_t)data[4] << 24) % (FUZZ_MAX_LENGTH + 1);
        data += 5;
        size -= 5;
        c.size = size;
        if (manifest_sha256(data, size, c.sha256) < 0)
                return;
        raw = malloc(c.length ? c.length : 1);
        if (!raw)
                return;
        r = agent_chunk_decode(&c, comp, data, size, raw, c.length, NULL);
        require(r == 0 || r == -EPROTO || r == -ENOMEM);
        if (r == 0 && comp == MANIFEST_COMPRESS_NONE)
                require(c.length == size && memcmp(raw, data, size) == 0);
        /* one byte off in the digest: refused before anything is decoded */
        c.sha256[0] ^= 1;
        require(agent_chunk_decode(&c, comp, data, size, raw, c.length, NULL) == -EBADMSG);
        free(raw);
}

static void check_range(const uint8_t *data, size_t size)
{
        uint64_t first, last, total;

        if (agent_content_range_parse((const char *)data, size, &first, &last, &total) == 0)
                require(first <= last && last < total);
}

static void check_record(const uint8_t *data, size_t size)
{
        struct buf again = BUF_INIT(2 * AGENT_CONFIG_MAX_JSON);
        const char *json;
        size_t n;

        if (agent_config_record_parse(data, size, &json, &n) < 0)
                return;
        require(n >= 1 && n <= AGENT_CONFIG_MAX_JSON && json >= (const char *)data &&
                json + n <= (const char *)data + size);
        /* what parses is what the builder writes */
        require(agent_config_record_build(json, n, &again) == 0 && again.len <= size &&
                memcmp(again.data, data, again.len) == 0);
        buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0:
                check_chunk(data + 1, size - 1);
                break;
        case 1:
                check_range(data + 1, size - 1);
                break;
        default:
                check_record(data + 1, size - 1);
                break;
        }
        return 0;
}
