/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an image archive controls: every entry header. Input byte 0 picks the
 * path: even, the rest is an archive (tar, tar.gz, tar.zst) whose headers go
 * through the importer's per-entry decision without anything being written;
 * odd, the rest is a list of (type byte, size byte, NUL-terminated path)
 * records fed to that decision directly. Whatever is accepted must be a file
 * name an image holds, at most once, within its size limit. Invariants abort.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "metald/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
        if (!ok)
                abort();
}

static void check_records(const uint8_t *p, size_t n)
{
        struct image_entry_state st = { 0 };
        unsigned accepted = 0;
        char path[512], why[256];

        while (n >= 3) {
                enum image_entry_type type = (enum image_entry_type)(p[0] % 3);
                bool hardlink = p[0] & 0x80;
                int64_t sz = p[1] == 0xff ? -1 : (int64_t)1 << (p[1] % 63);     /* sizes up to 2^62 */
                const uint8_t *end = memchr(p + 2, 0, n - 2);
                size_t len = end ? (size_t)(end - (p + 2)) : n - 2;
                int r;

                if (len >= sizeof(path))
                        len = sizeof(path) - 1;
                memcpy(path, p + 2, len);
                path[len] = '\0';
                r = image_entry_check(&st, path, type, hardlink, sz, why, sizeof(why));
                require(r == IMAGE_ENTRY_SKIP || r == -EINVAL || r == -EFBIG || (r >= 0 && r < IMAGE_N_FILES));
                if (r >= 0) {
                        require(type == IMAGE_ENTRY_FILE && !hardlink && path[0] != '/' && !strstr(path, ".."));
                        require(!(accepted & (1u << r)));
                        require(sz < 0 || (uint64_t)sz <= image_file_max_bytes((unsigned)r));
                        accepted |= 1u << r;
                }
                if (r < 0)
                        require(why[0] != '\0');
                if (!end)
                        break;
                n -= (size_t)(end - p) + 1;
                p = end + 1;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char why[256];
        int r;

        if (size < 1)
                return 0;
        if (data[0] & 1) {
                check_records(data + 1, size - 1);
                return 0;
        }
        why[0] = '\0';
        r = image_archive_check_memory(data + 1, size - 1, why, sizeof(why));
        require(r == 0 || r == -EINVAL || r == -EFBIG || r == -ENOMEM);
        require(r == 0 || why[0] != '\0');
        return 0;
}
