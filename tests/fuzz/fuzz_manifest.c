/* SPDX-License-Identifier: Apache-2.0 */
/* manifest.json: the parser and the key-id peek; whatever is accepted must hold every rule of docs/IMAGES.md. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metald/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_file(const struct manifest_artifact *a, uint64_t chunk_size)
{
        uint64_t off = 0;

        if (a->n_chunks == 0 || a->n_extents != 0)
                abort();
        for (size_t i = 0; i < a->n_chunks; i++) {
                const struct manifest_chunk *c = &a->chunks[i];

                if (c->file_offset != off || c->offset != off || c->length != c->size || c->size == 0 ||
                    c->size > chunk_size || (i + 1 < a->n_chunks && c->size != chunk_size))
                        abort();
                off += c->size;
        }
        if (off != a->size)
                abort();
}

static void check_disk(const struct manifest_artifact *a, uint64_t chunk_size)
{
        uint64_t mapped = 0, covered = 0, holes = 0, off = 0, end = 0;
        struct manifest_extent h;
        size_t e = 0;

        for (size_t i = 0; i < a->n_extents; i++) {
                const struct manifest_extent *x = &a->extents[i];

                if (x->length == 0 || x->offset % IMAGE_EXTENT_ALIGN || x->length % IMAGE_EXTENT_ALIGN ||
                    (i > 0 && x->offset <= end) || x->offset + x->length > a->raw_size)
                        abort();
                end = x->offset + x->length;
                mapped += x->length;
        }
        for (size_t i = 0; i < a->n_chunks; i++) {
                const struct manifest_chunk *c = &a->chunks[i];

                while (e < a->n_extents && c->offset >= a->extents[e].offset + a->extents[e].length)
                        e++;
                if (e == a->n_extents || c->offset < a->extents[e].offset ||
                    c->offset + c->length > a->extents[e].offset + a->extents[e].length || c->length == 0 ||
                    c->length > chunk_size || c->file_offset != off ||
                    (a->compression == MANIFEST_COMPRESS_NONE && c->size != c->length) ||
                    c->size > IMAGE_MAX_ZSTD_CHUNK(c->length) || c->size == 0)
                        abort();
                if (i > 0 && c->offset < a->chunks[i - 1].offset + a->chunks[i - 1].length)
                        abort();
                covered += c->length;
                off += c->size;
        }
        if (covered != mapped || off != a->size)
                abort();
        for (size_t i = 0; manifest_disk_hole(a, i, &h) == 0; i++)
                holes += h.length;
        if (holes + mapped != a->raw_size)
                abort();
}

static void check(const struct manifest *m, const uint8_t *data, size_t size)
{
        char id[MANIFEST_KEY_ID_HEX + 1];
        uint64_t cs = m->chunk_size;

        if (manifest_peek_key_id(data, size, id) != 0 || strcmp(id, m->key_id) != 0)
                abort();
        if (m->version < 1 || m->version > IMAGE_MAX_VERSION || cs < IMAGE_MIN_CHUNK_BYTES ||
            cs > IMAGE_MAX_CHUNK_BYTES || (cs & (cs - 1)) || m->expires <= m->created || !m->name[0])
                abort();
        if (!m->artifacts[MANIFEST_KERNEL].present || !m->artifacts[MANIFEST_INITRD].present ||
            (!m->artifacts[MANIFEST_DISK].present && !m->artifacts[MANIFEST_ROOTFS].present))
                abort();
        for (int k = 0; k < _MANIFEST_ARTIFACT_MAX; k++) {
                const struct manifest_artifact *a = &m->artifacts[k];

                if (!a->present)
                        continue;
                if (a->size > IMAGE_MAX_ARTIFACT_BYTES || a->n_chunks > IMAGE_MAX_CHUNKS)
                        abort();
                if (k == MANIFEST_DISK)
                        check_disk(a, cs);
                else
                        check_file(a, cs);
        }
        if (m->artifacts[MANIFEST_ROOTFS].present && m->artifacts[MANIFEST_ROOTFS].fs == MANIFEST_FS_NONE)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct manifest m = { 0 };
        char why[256] = "", id[MANIFEST_KEY_ID_HEX + 1];

        if (manifest_peek_key_id(data, size, id) == 0 && strlen(id) != MANIFEST_KEY_ID_HEX)
                abort();
        if (manifest_parse(data, size, &m, why, sizeof(why)) == 0) {
                check(&m, data, size);
                manifest_free(&m);
        } else if (!why[0] || m.artifacts[MANIFEST_KERNEL].chunks)
                abort();
        return 0;
}
