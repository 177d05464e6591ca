/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <zstd.h>

#include "metald/buf.h"
#include "metald/image.h"
#include "image_private.h"

/* What one artifact's pass produced. */
struct built {
        struct manifest_artifact a;
        size_t cap_chunks;
};

static void built_free(struct built *b)
{
        free(b->a.chunks);
        free(b->a.extents);
}

static int add_chunk(struct built *b, const struct manifest_chunk *c)
{
        if (b->a.n_chunks >= IMAGE_MAX_CHUNKS)
                return -E2BIG;
        if (b->a.n_chunks == b->cap_chunks) {
                size_t n = b->cap_chunks ? 2 * b->cap_chunks : 64;
                struct manifest_chunk *p = realloc(b->a.chunks, n * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                b->a.chunks = p;
                b->cap_chunks = n;
        }
        b->a.chunks[b->a.n_chunks++] = *c;
        return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
        return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

struct extent_list {
        struct manifest_extent *v;
        size_t n, cap;
};

/* Appends [off, off+len), merging with the previous extent when they touch. */
static int extent_add(struct extent_list *l, uint64_t off, uint64_t len)
{
        if (l->n && l->v[l->n - 1].offset + l->v[l->n - 1].length == off) {
                l->v[l->n - 1].length += len;
                return 0;
        }
        if (l->n >= IMAGE_MAX_EXTENTS)
                return -E2BIG;
        if (l->n == l->cap) {
                size_t n = l->cap ? 2 * l->cap : 64;
                struct manifest_extent *p = realloc(l->v, n * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                l->v = p;
                l->cap = n;
        }
        l->v[l->n++] = (struct manifest_extent){ off, len };
        return 0;
}

/* Adds the non-zero blocks of the data range [start, end) (both aligned). */
static int scan_data(int fd, uint64_t start, uint64_t end, uint8_t *buf, struct extent_list *l)
{
        for (uint64_t off = start; off < end;) {
                size_t n = (size_t)MIN((uint64_t)IMAGE_IO_BUF_BYTES, end - off);
                ssize_t got = pread(fd, buf, n, (off_t)off);

                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0)
                        return -errno;
                if ((size_t)got != n)
                        return -EIO;
                for (size_t b = 0; b < n; b += IMAGE_EXTENT_ALIGN) {
                        int r;

                        if (all_zero(buf + b, IMAGE_EXTENT_ALIGN))
                                continue;
                        r = extent_add(l, off + b, IMAGE_EXTENT_ALIGN);
                        if (r < 0)
                                return r;
                }
                off += n;
        }
        return 0;
}

int image_disk_extents(int fd, uint64_t size, struct manifest_extent **ret, size_t *ret_n)
{
        _cleanup_free_ uint8_t *buf = NULL;
        struct extent_list l = { 0 };
        uint64_t off = 0;
        int r = 0;

        if (size % IMAGE_EXTENT_ALIGN)
                return -EINVAL;
        buf = malloc(IMAGE_IO_BUF_BYTES);
        if (!buf)
                return -ENOMEM;
        while (off < size && r == 0) {
                off_t data = lseek(fd, (off_t)off, SEEK_DATA), hole;

                if (data < 0 && errno == ENXIO)
                        break;          /* only a hole is left */
                if (data < 0 && errno != EINVAL) {
                        r = -errno;
                        break;
                }
                if (data < 0)
                        data = (off_t)off, hole = (off_t)size;  /* no SEEK_DATA here: all of it is data */
                else if ((hole = lseek(fd, data, SEEK_HOLE)) < 0)
                        hole = (off_t)size;
                data = data / IMAGE_EXTENT_ALIGN * IMAGE_EXTENT_ALIGN;
                hole = (off_t)MIN(size, ((uint64_t)hole + IMAGE_EXTENT_ALIGN - 1) / IMAGE_EXTENT_ALIGN * IMAGE_EXTENT_ALIGN);
                r = scan_data(fd, (uint64_t)data, (uint64_t)hole, buf, &l);
                off = (uint64_t)hole;
        }
        if (r < 0) {
                free(l.v);
                return r;
        }
        *ret = l.v;
        *ret_n = l.n;
        return 0;
}

/* n (<= 8) little-endian bytes at off, when they lie inside len. */
static bool le_at(const uint8_t *p, size_t len, uint64_t off, unsigned n, uint64_t *ret)
{
        uint64_t v = 0;

        if (off > len || n > len - off)
                return false;
        for (unsigned i = 0; i < n; i++)
                v |= (uint64_t)p[off + i] << (8 * i);
        *ret = v;
        return true;
}

/* One candidate: a second one, a misplaced or out-of-bounds range is refused. */
static int config_candidate(uint64_t first_lba, uint64_t sectors, uint64_t raw_size, struct manifest_extent *found,
                            char *why, size_t why_len)
{
        uint64_t off = first_lba * IMAGE_SECTOR_BYTES, len = sectors * IMAGE_SECTOR_BYTES;

        if (found->length)
                return image_why(-EINVAL, why, why_len, "disk: more than one METALD-CFG partition");
        if (first_lba > IMAGE_MAX_ARTIFACT_BYTES / IMAGE_SECTOR_BYTES ||
            sectors > IMAGE_MAX_ARTIFACT_BYTES / IMAGE_SECTOR_BYTES || off + len > raw_size)
                return image_why(-EINVAL, why, why_len, "disk: the METALD-CFG partition ends past the disk's %llu bytes",
                                 (unsigned long long)raw_size);
        if (off < IMAGE_CONFIG_MIN_OFFSET || off % IMAGE_EXTENT_ALIGN || len < IMAGE_CONFIG_MIN_BYTES ||
            len % IMAGE_EXTENT_ALIGN)
                return image_why(-EINVAL, why, why_len, "disk: the METALD-CFG partition [%llu, +%llu) must start on a "
                                 "multiple of %d past the first MiB and be at least 1 MiB, a multiple of %d",
                                 (unsigned long long)off, (unsigned long long)len, IMAGE_EXTENT_ALIGN,
                                 IMAGE_EXTENT_ALIGN);
        *found = (struct manifest_extent){ off, len };
        return 0;
}

static bool gpt_name_is_cfg(const uint8_t *name)
{
        static const char want[] = IMAGE_CONFIG_PART_NAME;

        for (size_t i = 0; i < IMAGE_GPT_NAME_UNITS; i++) {
                uint16_t u = (uint16_t)(name[2 * i] | name[2 * i + 1] << 8);

                if (u != (i < sizeof(want) - 1 ? (uint8_t)want[i] : 0))
                        return false;
                if (u == 0)
                        return true;
        }
        return false;
}

static int find_gpt_config(const uint8_t *head, size_t len, uint64_t raw_size, struct manifest_extent *found,
                           char *why, size_t why_len)
{
        const uint64_t hdr = IMAGE_SECTOR_BYTES;
        uint64_t sig, hsize, lba, n, esize, first, last;

        if (!le_at(head, len, hdr, 8, &sig) || memcmp(head + hdr, "EFI PART", 8) != 0 ||
            !le_at(head, len, hdr + 12, 4, &hsize) || hsize < 92 || hsize > IMAGE_SECTOR_BYTES ||
            !le_at(head, len, hdr + 72, 8, &lba) || !le_at(head, len, hdr + 80, 4, &n) ||
            !le_at(head, len, hdr + 84, 4, &esize))
                return image_why(-EINVAL, why, why_len, "disk: a protective MBR without a GPT header at LBA 1");
        if (n > IMAGE_MAX_GPT_ENTRIES || esize < 128 || esize > IMAGE_SECTOR_BYTES || esize % 8 ||
            lba < 2 || lba > len / IMAGE_SECTOR_BYTES || n * esize > len - lba * IMAGE_SECTOR_BYTES)
                return image_why(-EINVAL, why, why_len, "disk: the GPT partition entries (%llu of %llu bytes at LBA "
                                 "%llu) are not inside the first MiB", (unsigned long long)n,
                                 (unsigned long long)esize, (unsigned long long)lba);
        for (uint64_t i = 0; i < n; i++) {
                const uint8_t *e = head + lba * IMAGE_SECTOR_BYTES + i * esize;
                int r;

                if (all_zero(e, 16) || !gpt_name_is_cfg(e + 56))
                        continue;       /* unused, or another partition */
                if (!le_at(e, esize, 32, 8, &first) || !le_at(e, esize, 40, 8, &last) || last < first)
                        return image_why(-EINVAL, why, why_len, "disk: GPT entry %llu has its last LBA before its first",
                                         (unsigned long long)i);
                if ((r = config_candidate(first, last - first + 1, raw_size, found, why, why_len)) < 0)
                        return r;
        }
        return 0;
}

int image_find_config(const uint8_t *head, size_t len, uint64_t raw_size, struct manifest_extent *ret, char *why,
                      size_t why_len)
{
        struct manifest_extent found = { 0 };
        bool gpt = false;
        int r;

        if (len < IMAGE_SECTOR_BYTES || head[510] != 0x55 || head[511] != 0xaa)
                return -ENOENT;         /* no partition table */
        for (unsigned i = 0; i < 4; i++) {
                const uint8_t *pe = head + 446 + 16 * i;
                uint64_t start, sectors;

                gpt |= pe[4] == 0xee;
                if (pe[4] != IMAGE_CONFIG_MBR_TYPE)
                        continue;
                (void)le_at(pe, 16, 8, 4, &start);
                (void)le_at(pe, 16, 12, 4, &sectors);
                if ((r = config_candidate(start, sectors, raw_size, &found, why, why_len)) < 0)
                        return r;
        }
        if (gpt && (r = find_gpt_config(head, len, raw_size, &found, why, why_len)) < 0)
                return r;
        if (!found.length)
                return -ENOENT;
        *ret = found;
        return 0;
}

/* Takes [off, off + len) out of the sorted extents; both aligned, so what is left stays aligned. */
static int extents_cut(struct manifest_extent **v, size_t *n, uint64_t off, uint64_t len)
{
        struct extent_list l = { 0 };
        uint64_t end = off + len;
        int r = 0;

        for (size_t i = 0; i < *n && r == 0; i++) {
                uint64_t a = (*v)[i].offset, b = a + (*v)[i].length;

                if (b <= off || a >= end) {
                        r = extent_add(&l, a, b - a);
                        continue;
                }
                if (a < off)
                        r = extent_add(&l, a, off - a);
                if (r == 0 && b > end)
                        r = extent_add(&l, end, b - end);
        }
        if (r < 0) {
                free(l.v);
                return r;
        }
        free(*v);
        *v = l.v;
        *n = l.n;
        return 0;
}

/* The configuration partition's range goes into the manifest, and out of the extents: it ships as zeros. */
static int disk_config(int fd, struct manifest_artifact *a, char *why, size_t why_len)
{
        size_t len = (size_t)MIN(a->raw_size, (uint64_t)IMAGE_CONFIG_MIN_OFFSET);
        _cleanup_free_ uint8_t *head = malloc(len);
        struct manifest_extent c;
        int r;

        if (!head)
                return -ENOMEM;
        for (size_t done = 0; done < len;) {
                ssize_t n = pread(fd, head + done, len - done, (off_t)done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                done += (size_t)n;
        }
        r = image_find_config(head, len, a->raw_size, &c, why, why_len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if ((r = extents_cut(&a->extents, &a->n_extents, c.offset, c.length)) < 0)
                return r;
        a->has_config = true;
        a->config_offset = c.offset;
        a->config_length = c.length;
        return 0;
}

enum manifest_fs image_detect_fs(const void *head, size_t len)
{
        static const uint8_t erofs[4] = { 0xe2, 0xe1, 0xf5, 0xe0 };     /* 0xE0F5E1E2, little-endian */
        const uint8_t *p = head;

        if (len >= 4 && memcmp(p, "hsqs", 4) == 0)
                return MANIFEST_FS_SQUASHFS;
        if (len >= 1024 + 4 && memcmp(p + 1024, erofs, 4) == 0)
                return MANIFEST_FS_EROFS;
        return MANIFEST_FS_NONE;
}

/* Where the artifact being written goes until it is complete. */
static int open_tmp(int out_fd, const char *name, char tmp[64])
{
        int fd;

        snprintf(tmp, 64, ".%s.build", name);
        (void)unlinkat(out_fd, tmp, 0);
        fd = openat(out_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        return fd < 0 ? -errno : fd;
}

static int finish_tmp(int out_fd, int fd, const char *tmp, const char *name, int r)
{
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat(out_fd, tmp, out_fd, name) < 0)
                r = -errno;
        if (r < 0)
                (void)unlinkat(out_fd, tmp, 0);
        return r;
}

/* kernel, initrd, rootfs: chunk digests and the whole file's, copied to out_fd when it is not -1. */
static int build_plain(int in_fd, int out_fd, uint64_t chunk_size, uint8_t *buf, struct built *b)
{
        struct image_sha256 *whole = NULL, *part = NULL;
        struct manifest_chunk c = { 0 };
        int r = image_sha256_new(&whole);

        if (r == 0)
                r = image_sha256_new(&part);
        while (r == 0) {
                size_t want = (size_t)MIN((uint64_t)IMAGE_IO_BUF_BYTES, chunk_size - c.size);
                ssize_t n = read(in_fd, buf, want);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n > 0) {
                        b->a.size += (uint64_t)n;
                        c.size += (uint64_t)n;
                        r = image_sha256_update(whole, buf, (size_t)n);
                        if (r == 0)
                                r = image_sha256_update(part, buf, (size_t)n);
                        if (r == 0 && out_fd >= 0)
                                r = image_write_all(out_fd, buf, (size_t)n);
                        if (b->a.size > IMAGE_MAX_ARTIFACT_BYTES)
                                r = -EFBIG;
                }
                if (r == 0 && c.size && (n == 0 || c.size == chunk_size)) {
                        c.length = c.size;
                        r = image_sha256_final(part, c.sha256);
                        if (r == 0)
                                r = add_chunk(b, &c);
                        c.offset += c.size;
                        c.size = 0;
                }
                if (n == 0)
                        break;
        }
        if (r == 0)
                r = image_sha256_final(whole, b->a.sha256);
        image_sha256_free(whole);
        image_sha256_free(part);
        if (r == 0 && b->a.size == 0)
                r = -ENODATA;
        return r;
}

struct disk_ctx {
        ZSTD_CCtx *cctx;
        int level;
        uint8_t *raw, *packed;
        size_t packed_cap;
        struct image_sha256 *whole;
};

static int disk_chunk(struct disk_ctx *d, int in_fd, int out_fd, uint64_t off, size_t len, struct built *b)
{
        struct manifest_chunk c = { .offset = off, .length = len };
        const uint8_t *bytes = d->raw;
        ssize_t got = pread(in_fd, d->raw, len, (off_t)off);
        int r;

        if (got < 0)
                return -errno;
        if ((size_t)got != len)
                return -EIO;
        c.size = len;
        if (b->a.compression == MANIFEST_COMPRESS_ZSTD) {
                size_t n = ZSTD_compressCCtx(d->cctx, d->packed, d->packed_cap, d->raw, len, d->level);

                if (ZSTD_isError(n))
                        return -EIO;
                bytes = d->packed;
                c.size = n;
        }
        r = manifest_sha256(bytes, (size_t)c.size, c.sha256);
        if (r == 0)
                r = image_sha256_update(d->whole, bytes, (size_t)c.size);
        if (r == 0)
                r = image_write_all(out_fd, bytes, (size_t)c.size);
        if (r == 0)
                r = add_chunk(b, &c);
        b->a.size += c.size;
        return r;
}

static int build_disk(int in_fd, int out_fd, const struct image_build_spec *spec, struct built *b, char *why,
                      size_t why_len)
{
        struct disk_ctx d = { .level = spec->level ? spec->level : IMAGE_ZSTD_DEFAULT_LEVEL };
        struct stat st;
        int r;

        if (fstat(in_fd, &st) < 0)
                return -errno;
        b->a.raw_size = (uint64_t)st.st_size;
        b->a.compression = spec->compression;
        if (b->a.raw_size == 0 || b->a.raw_size % IMAGE_EXTENT_ALIGN)
                return -EINVAL;
        r = image_disk_extents(in_fd, b->a.raw_size, &b->a.extents, &b->a.n_extents);
        if (r == 0)
                r = disk_config(in_fd, &b->a, why, why_len);
        if (r < 0)
                return r;
        d.packed_cap = ZSTD_compressBound((size_t)spec->chunk_size);
        d.raw = malloc((size_t)spec->chunk_size);
        d.packed = malloc(d.packed_cap);
        d.cctx = ZSTD_createCCtx();
        r = d.raw && d.packed && d.cctx ? image_sha256_new(&d.whole) : -ENOMEM;
        for (size_t i = 0; r == 0 && i < b->a.n_extents; i++) {
                const struct manifest_extent *e = &b->a.extents[i];

                for (uint64_t o = 0; r == 0 && o < e->length; o += spec->chunk_size)
                        r = disk_chunk(&d, in_fd, out_fd, e->offset + o, (size_t)MIN(spec->chunk_size, e->length - o), b);
        }
        if (r == 0)
                r = image_sha256_final(d.whole, b->a.sha256);
        image_sha256_free(d.whole);
        ZSTD_freeCCtx(d.cctx);
        free(d.raw);
        free(d.packed);
        return r;
}

static void rfc3339(int64_t t, char out[32])
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* A JSON string of printable ASCII (the builder checks that first). */
static int json_str(struct buf *j, const char *s)
{
        int r = buf_puts(j, "\"");

        for (; *s && r == 0; s++)
                r = *s == '"' || *s == '\\' ? buf_printf(j, "\\%c", *s) : buf_append(j, s, 1);
        return r ? r : buf_puts(j, "\"");
}

static int json_digest(struct buf *j, const uint8_t d[MANIFEST_SHA256_BYTES])
{
        char hex[2 * MANIFEST_SHA256_BYTES + 1];

        manifest_hex(d, MANIFEST_SHA256_BYTES, hex);
        return buf_printf(j, "\"sha256\": \"%s\"", hex);
}

static int json_artifact(struct buf *j, enum manifest_artifact_kind k, const struct manifest_artifact *a, bool last)
{
        static const char *const fs_names[] = { [MANIFEST_FS_SQUASHFS] = "squashfs", [MANIFEST_FS_EROFS] = "erofs" };
        int r = buf_printf(j, "    \"%s\": {\n      \"size\": %llu, ", manifest_artifact_name(k),
                           (unsigned long long)a->size);

        if (r == 0)
                r = json_digest(j, a->sha256);
        if (r == 0 && k == MANIFEST_DISK) {
                r = buf_printf(j, ",\n      \"compression\": \"%s\",\n      \"raw_size\": %llu,\n      \"extents\": [",
                               a->compression == MANIFEST_COMPRESS_ZSTD ? "zstd" : "none",
                               (unsigned long long)a->raw_size);
                for (size_t i = 0; r == 0 && i < a->n_extents; i++)
                        r = buf_printf(j, "%s[%llu, %llu]", i ? ", " : "", (unsigned long long)a->extents[i].offset,
                                       (unsigned long long)a->extents[i].length);
                if (r == 0)
                        r = buf_puts(j, "]");
                if (r == 0 && a->has_config)
                        r = buf_printf(j, ",\n      \"config\": { \"offset\": %llu, \"length\": %llu }",
                                       (unsigned long long)a->config_offset, (unsigned long long)a->config_length);
        }
        if (r == 0 && k == MANIFEST_ROOTFS)
                r = buf_printf(j, ",\n      \"fs\": \"%s\"", fs_names[a->fs]);
        if (r == 0)
                r = buf_puts(j, ",\n      \"chunks\": [");
        for (size_t i = 0; r == 0 && i < a->n_chunks; i++) {
                const struct manifest_chunk *c = &a->chunks[i];

                r = buf_printf(j, "%s\n        { ", i ? "," : "");
                if (r == 0 && k == MANIFEST_DISK)
                        r = buf_printf(j, "\"offset\": %llu, \"length\": %llu, ", (unsigned long long)c->offset,
                                       (unsigned long long)c->length);
                if (r == 0)
                        r = buf_printf(j, "\"size\": %llu, ", (unsigned long long)c->size);
                if (r == 0)
                        r = json_digest(j, c->sha256);
                if (r == 0)
                        r = buf_puts(j, " }");
        }
        return r ? r : buf_printf(j, "\n      ]\n    }%s\n", last ? "" : ",");
}

/* The manifest, keys in the order of docs/IMAGES.md. */
static int manifest_json(const struct image_build_spec *spec, const char *key_id, const struct built *b, struct buf *j)
{
        char created[32], expires[32];
        int last = -1, r;

        rfc3339(spec->created, created);
        rfc3339(spec->expires, expires);
        r = buf_printf(j, "{\n  \"format\": \"%s\",\n  \"name\": ", MANIFEST_FORMAT);
        if (r == 0)
                r = json_str(j, spec->name);
        if (r == 0)
                r = buf_printf(j, ",\n  \"version\": %llu,\n  \"arch\": ", (unsigned long long)spec->version);
        if (r == 0)
                r = json_str(j, spec->arch);
        if (r == 0)
                r = buf_printf(j, ",\n  \"created\": \"%s\",\n  \"expires\": \"%s\",\n  \"key_id\": \"%s\",\n"
                               "  \"chunk_size\": %llu,\n", created, expires, key_id,
                               (unsigned long long)spec->chunk_size);
        if (r == 0 && spec->cmdline && *spec->cmdline) {
                r = buf_puts(j, "  \"cmdline\": ");
                if (r == 0)
                        r = json_str(j, spec->cmdline);
                if (r == 0)
                        r = buf_puts(j, ",\n");
        }
        if (r == 0)
                r = buf_puts(j, "  \"artifacts\": {\n");
        for (int k = 0; k < _MANIFEST_ARTIFACT_MAX; k++)
                if (b[k].a.present)
                        last = k;
        for (int k = 0; r == 0 && k < _MANIFEST_ARTIFACT_MAX; k++)
                if (b[k].a.present)
                        r = json_artifact(j, (enum manifest_artifact_kind)k, &b[k].a, k == last);
        return r ? r : buf_puts(j, "  }\n}\n");
}

static int check_spec(const struct image_build_spec *spec, char *why, size_t why_len)
{
        const char *n = spec->name ? spec->name : "";
        uint64_t cs = spec->chunk_size;

        if (!image_name_valid(n))
                return image_why(-EINVAL, why, why_len, "image '%.64s': not a name of 1 to %d of a-z 0-9 . _ -", n,
                                 IMAGE_MAX_NAME);
        if (spec->version < 1 || spec->version > IMAGE_MAX_VERSION)
                return image_why(-EINVAL, why, why_len, "image %s: version must be 1 to 2^53-1", n);
        if (!spec->arch || (strcmp(spec->arch, "x86_64") != 0 && strcmp(spec->arch, "arm64") != 0))
                return image_why(-EINVAL, why, why_len, "image %s: arch must be x86_64 or arm64", n);
        if (cs < IMAGE_MIN_CHUNK_BYTES || cs > IMAGE_MAX_CHUNK_BYTES || (cs & (cs - 1)))
                return image_why(-EINVAL, why, why_len, "image %s: chunk size must be a power of two from 64K to 64M", n);
        if (spec->expires <= spec->created)
                return image_why(-EINVAL, why, why_len, "image %s: expires must be after created", n);
        if (spec->compression != MANIFEST_COMPRESS_NONE && spec->compression != MANIFEST_COMPRESS_ZSTD)
                return image_why(-EINVAL, why, why_len, "image %s: unknown compression", n);
        if (spec->level < 0 || spec->level > IMAGE_ZSTD_MAX_LEVEL)
                return image_why(-EINVAL, why, why_len, "image %s: zstd level must be 1 to %d", n, IMAGE_ZSTD_MAX_LEVEL);
        if (spec->cmdline) {
                if (strlen(spec->cmdline) > IMAGE_MAX_CMDLINE)
                        return image_why(-EINVAL, why, why_len, "image %s: cmdline is longer than %d bytes", n,
                                         IMAGE_MAX_CMDLINE);
                for (const char *p = spec->cmdline; *p; p++)
                        if (*p < 0x20 || *p > 0x7e)
                                return image_why(-EINVAL, why, why_len, "image %s: cmdline is not printable ASCII", n);
        }
        return 0;
}

struct build_dirs {
        int src, out;
        bool in_place;
};

static int open_dirs(const struct image_build_spec *spec, struct build_dirs *d, char *why, size_t why_len)
{
        struct stat a, b;

        d->src = open(spec->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d->src < 0)
                return image_why(-errno, why, why_len, "image %s: %s: %s", spec->name, spec->src, strerror(errno));
        if (spec->out && mkdir(spec->out, 0755) < 0 && errno != EEXIST)
                return image_why(-errno, why, why_len, "image %s: %s: %s", spec->name, spec->out, strerror(errno));
        d->out = spec->out ? open(spec->out, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dup(d->src);
        if (d->out < 0)
                return image_why(-errno, why, why_len, "image %s: %s: %s", spec->name, spec->out, strerror(errno));
        if (fstat(d->src, &a) < 0 || fstat(d->out, &b) < 0)
                return image_why(-errno, why, why_len, "image %s: %s", spec->name, strerror(errno));
        d->in_place = a.st_dev == b.st_dev && a.st_ino == b.st_ino;
        return 0;
}

/* kernel, initrd or rootfs; -ENOENT when the source has none. */
static int build_one_plain(const struct image_build_spec *spec, const struct build_dirs *d,
                           enum manifest_artifact_kind k, uint8_t *buf, struct built *b)
{
        const char *name = manifest_artifact_name(k);
        _cleanup_close_ int in = openat(d->src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        uint8_t head[1024 + 4] = { 0 };
        char tmp[64];
        int out = -1, r;

        if (in < 0)
                return -errno;
        if (k == MANIFEST_ROOTFS) {
                ssize_t n = pread(in, head, sizeof(head), 0);

                b->a.fs = image_detect_fs(head, n > 0 ? (size_t)n : 0);
                if (b->a.fs == MANIFEST_FS_NONE)
                        return -EMEDIUMTYPE;
        }
        if (!d->in_place && (out = open_tmp(d->out, name, tmp)) < 0)
                return out;
        r = build_plain(in, out, spec->chunk_size, buf, b);
        if (out >= 0)
                r = finish_tmp(d->out, out, tmp, name, r);
        if (r == 0)
                b->a.present = true;
        return r;
}

static int build_plain_all(const struct image_build_spec *spec, const struct build_dirs *d, struct built *b,
                           char *why, size_t why_len)
{
        static const enum manifest_artifact_kind kinds[] = { MANIFEST_KERNEL, MANIFEST_INITRD, MANIFEST_ROOTFS };
        _cleanup_free_ uint8_t *buf = malloc(IMAGE_IO_BUF_BYTES);

        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
                const char *name = manifest_artifact_name(kinds[i]);
                int r = build_one_plain(spec, d, kinds[i], buf, &b[kinds[i]]);

                if (r == -ENOENT && kinds[i] == MANIFEST_ROOTFS)
                        continue;
                if (r == -EMEDIUMTYPE)
                        return image_why(-EINVAL, why, why_len, "image %s: rootfs is neither squashfs nor erofs",
                                         spec->name);
                if (r == -ENODATA)
                        return image_why(-EINVAL, why, why_len, "image %s: %s is empty", spec->name, name);
                if (r < 0)
                        return image_why(r, why, why_len, "image %s: %s: %s", spec->name, name, strerror(-r));
        }
        return 0;
}

/* Writes the disk into .disk.build; the caller renames it once the manifest is good. */
static int build_disk_tmp(const struct image_build_spec *spec, const struct build_dirs *d, struct built *b,
                          char tmp[64], char *why, size_t why_len)
{
        _cleanup_close_ int in = openat(d->src, "disk", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        char reason[256];
        int out, r;

        if (in < 0 && errno == ENOENT)
                return 0;
        if (in < 0)
                return image_why(-errno, why, why_len, "image %s: disk: %s", spec->name, strerror(errno));
        if ((out = open_tmp(d->out, "disk", tmp)) < 0)
                return image_why(out, why, why_len, "image %s: disk: %s", spec->name, strerror(-out));
        reason[0] = '\0';
        r = build_disk(in, out, spec, b, reason, sizeof(reason));
        if (r == 0 && fsync(out) < 0)
                r = -errno;
        close(out);
        if (r < 0) {
                (void)unlinkat(d->out, tmp, 0);
                if (*reason)
                        return image_why(r, why, why_len, "image %s: %s", spec->name, reason);
                if (r == -EINVAL)
                        return image_why(r, why, why_len, "image %s: disk: its size must be a multiple of %d bytes",
                                         spec->name, IMAGE_EXTENT_ALIGN);
                return image_why(r, why, why_len, "image %s: disk: %s", spec->name,
                                 r == -E2BIG ? "too many extents or chunks" : strerror(-r));
        }
        b->a.present = true;
        return 0;
}

static int write_manifest(const struct image_build_spec *spec, const struct image_signer *s, const struct build_dirs *d,
                          const struct built *b, const char *disk_tmp, char *why, size_t why_len)
{
        struct buf j = BUF_INIT(IMAGE_MAX_MANIFEST_BYTES);
        uint8_t sig[MANIFEST_SIG_BYTES];
        struct manifest_key key;
        struct manifest check;
        char reason[256];
        int r;

        image_signer_key(s, &key);
        r = manifest_json(spec, key.id, b, &j);
        if (r < 0) {
                buf_free(&j);
                return image_why(r, why, why_len, "image %s: %s", spec->name,
                                 r == -E2BIG ? "the manifest would exceed 1 MiB: use a larger chunk size" : strerror(-r));
        }
        r = manifest_parse(j.data, j.len, &check, reason, sizeof(reason));
        if (r < 0) {
                buf_free(&j);
                return image_why(r, why, why_len, "image %s: key %s: the manifest built is invalid: %s", spec->name,
                                 key.id, reason);
        }
        manifest_free(&check);
        r = image_sign(s, j.data, j.len, sig);
        (void)unlinkat(d->out, IMAGE_SIG_FILE, 0);
        if (r == 0 && *disk_tmp && renameat(d->out, disk_tmp, d->out, "disk") < 0)
                r = -errno;
        if (r == 0)
                r = image_write_atomic(d->out, IMAGE_MANIFEST_FILE, j.data, j.len, 0644);
        if (r == 0)
                r = image_write_atomic(d->out, IMAGE_SIG_FILE, sig, sizeof(sig), 0644);
        buf_free(&j);
        if (r < 0)
                return image_why(r, why, why_len, "image %s: key %s: cannot write the manifest: %s", spec->name,
                                 key.id, strerror(-r));
        return 0;
}

int image_build(const struct image_build_spec *spec, const struct image_signer *s, char *why, size_t why_len)
{
        struct build_dirs d = { -1, -1, false };
        struct built b[_MANIFEST_ARTIFACT_MAX] = { 0 };
        char disk_tmp[64] = "";
        int r = check_spec(spec, why, why_len);

        if (r == 0)
                r = open_dirs(spec, &d, why, why_len);
        if (r == 0)
                r = build_plain_all(spec, &d, b, why, why_len);
        if (r == 0)
                r = build_disk_tmp(spec, &d, &b[MANIFEST_DISK], disk_tmp, why, why_len);
        if (r == 0 && !b[MANIFEST_DISK].a.present)
                disk_tmp[0] = '\0';
        if (r == 0 && !b[MANIFEST_DISK].a.present && !b[MANIFEST_ROOTFS].a.present)
                r = image_why(-ENOENT, why, why_len, "image %s: %s has neither disk nor rootfs", spec->name, spec->src);
        if (r == 0)
                r = write_manifest(spec, s, &d, b, disk_tmp, why, why_len);
        if (r < 0 && *disk_tmp && d.out >= 0)
                (void)unlinkat(d.out, disk_tmp, 0);
        for (int k = 0; k < _MANIFEST_ARTIFACT_MAX; k++)
                built_free(&b[k]);
        if (d.src >= 0)
                close(d.src);
        if (d.out >= 0)
                close(d.out);
        return r;
}
