/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <zstd.h>

#include "metald/agent_install.h"
#include "metald/fs.h"
#include "metald/log.h"
#include "metald/util.h"

#define STATE_MAGIC "metald-install/1"
#define ZSTD_WINDOW_LOG_MAX 27          /* 128 MiB: a frame of at most IMAGE_MAX_CHUNK_BYTES needs less */

struct install {
        const struct agent_install_options *o;
        struct agent_install_result *res;
        struct manifest m;
        bool parsed;
        const struct manifest_artifact *disk;
        char sha_hex[2 * MANIFEST_SHA256_BYTES + 1];
        int fd;
        bool blockdev;
        uint64_t target_size;
        size_t held_len;                /* the part of the first MiB the target has */
        uint8_t *held;                  /* what goes there, written last */
        uint8_t *wire, *raw, *zeros;
        size_t wire_cap, raw_cap;
        ZSTD_DCtx *dctx;
        struct buf record;              /* the configuration record */
        uint64_t config_offset, config_length;  /* where it goes */
        size_t resume_next;             /* chunks before this one are on the target from an earlier run */
        uint64_t done_bytes, start_usec, last_report_usec;
};

static int fail(struct install *in, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(struct install *in, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(in->res->why, sizeof(in->res->why), fmt, ap);
        va_end(ap);
        return r;
}

static void sleep_usec(uint64_t usec)
{
        struct timespec ts = { .tv_sec = (time_t)(usec / USEC_PER_SEC), .tv_nsec = (long)(usec % USEC_PER_SEC) * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int agent_arch_from_machine(const char *machine, const char **ret)
{
        if (strcmp(machine, "x86_64") == 0)
                *ret = "x86_64";
        else if (strcmp(machine, "aarch64") == 0 || strcmp(machine, "arm64") == 0)
                *ret = "arm64";
        else
                return -EXDEV;
        return 0;
}

static int pick_pub(const struct dirent *e)
{
        size_t n = strlen(e->d_name);

        return e->d_name[0] != '.' && n > 4 && strcmp(e->d_name + n - 4, ".pub") == 0;
}

int agent_keys_load(const char *dir, struct manifest_key *keys, size_t cap, size_t *ret_n)
{
        struct dirent **names = NULL;
        char path[CONFIG_MAX_PATH_BYTES];
        int n = scandir(dir, &names, pick_pub, alphasort), r = 0;
        size_t k = 0;

        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                if (r == 0 && k == cap)
                        r = -E2BIG;
                if (r == 0 && (size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >= sizeof(path))
                        r = -ENAMETOOLONG;
                if (r == 0)
                        r = manifest_key_load(path, &keys[k++]);
                free(names[i]);
        }
        free(names);
        if (r < 0)
                return r;
        if (k == 0)
                return -ENOKEY;
        *ret_n = k;
        return 0;
}

int agent_chunk_decode(const struct manifest_chunk *chunk, enum manifest_compression comp, const uint8_t *wire,
                       size_t wire_len, uint8_t *raw, size_t raw_cap, struct ZSTD_DCtx_s *dctx)
{
        unsigned long long content;
        ZSTD_DCtx *own = NULL;
        size_t n;

        if (manifest_chunk_check(chunk, wire, wire_len) < 0)
                return -EBADMSG;
        if (chunk->length > raw_cap)
                return -ENOBUFS;
        if (comp == MANIFEST_COMPRESS_NONE) {
                if (wire_len != chunk->length)
                        return -EPROTO;
                if (raw != wire)
                        memcpy(raw, wire, wire_len);
                return 0;
        }
        /* one frame that says how large it is, that size exactly, and nothing after it */
        content = ZSTD_getFrameContentSize(wire, wire_len);
        if (content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR || content != chunk->length)
                return -EPROTO;
        n = ZSTD_findFrameCompressedSize(wire, wire_len);
        if (ZSTD_isError(n) || n != wire_len)
                return -EPROTO;
        if (!dctx) {
                own = dctx = ZSTD_createDCtx();
                if (!dctx)
                        return -ENOMEM;
        }
        if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX)))
                n = (size_t)-1;
        else
                n = ZSTD_decompressDCtx(dctx, raw, (size_t)chunk->length, wire, wire_len);
        ZSTD_freeDCtx(own);
        return ZSTD_isError(n) || n != chunk->length ? -EPROTO : 0;
}

/* Step 1: the signature, before anything else of the manifest is believed. */
static int check_signature(struct install *in)
{
        const struct agent_install_options *o = in->o;
        char id[MANIFEST_KEY_ID_HEX + 1] = "", esc[4 * MANIFEST_KEY_ID_HEX + 1];
        size_t key;
        int r;

        if (o->manifest_len == 0 || o->manifest_len > IMAGE_MAX_MANIFEST_BYTES)
                return fail(in, -EFBIG, "manifest: %zu bytes, refused unread (at most %d)", o->manifest_len,
                            IMAGE_MAX_MANIFEST_BYTES);
        if (o->sig_len != MANIFEST_SIG_BYTES)
                return fail(in, -EBADMSG, "signature: %zu bytes, not %d", o->sig_len, MANIFEST_SIG_BYTES);
        /* the key id only picks the key; a manifest naming no readable one fails in manifest_verify */
        (void)manifest_peek_key_id(o->manifest, o->manifest_len, id);
        log_escape(esc, sizeof(esc), id, strnlen(id, sizeof(id)));
        r = manifest_verify(o->keys, o->n_keys, o->manifest, o->manifest_len, o->sig, o->sig_len, &key);
        if (r == -ENOKEY)
                return fail(in, r, "signature: key %s is not one of the %zu trusted keys", esc, o->n_keys);
        if (r == -EBADMSG)
                return fail(in, r, "signature: does not verify with trusted key %s", esc);
        if (r < 0)
                return fail(in, -EBADMSG, "signature: cannot be checked: no key_id in the manifest");
        return 0;
}

/* Step 2: the manifest metald announced for this machine, not another validly signed one (replay). */
static int check_digest(struct install *in)
{
        char want[2 * MANIFEST_SHA256_BYTES + 1];
        uint8_t got[MANIFEST_SHA256_BYTES];

        if (manifest_sha256(in->o->manifest, in->o->manifest_len, got) < 0)
                return fail(in, -EIO, "manifest: cannot compute its digest");
        format_hex(in->sha_hex, got, sizeof(got));
        format_hex(want, in->o->manifest_sha256, MANIFEST_SHA256_BYTES);
        if (memcmp(got, in->o->manifest_sha256, sizeof(got)) != 0)
                return fail(in, -EKEYREJECTED, "manifest: digest %s is not the %s metald announced", in->sha_hex,
                            want);
        return 0;
}

/* The geometry the writer relies on, checked here as well: chunks in order, inside the disk, sized for their buffers. */
static int check_chunks(struct install *in)
{
        const struct manifest_artifact *d = in->disk;
        uint64_t end = 0;

        if (d->raw_size == 0 || d->raw_size > AGENT_MAX_IMAGE_BYTES || (d->n_chunks && !d->chunks))
                return fail(in, -EBADMSG, "manifest: disk of %" PRIu64 " bytes in %zu chunks", d->raw_size,
                            d->n_chunks);
        for (size_t i = 0; i < d->n_chunks; i++) {
                const struct manifest_chunk *c = &d->chunks[i];
                bool sized = d->compression == MANIFEST_COMPRESS_NONE ? c->size == c->length
                                                                       : c->size <= IMAGE_MAX_ZSTD_CHUNK(c->length);

                if (c->length == 0 || c->length > IMAGE_MAX_CHUNK_BYTES || c->length > in->m.chunk_size ||
                    c->offset < end || c->offset > d->raw_size || c->length > d->raw_size - c->offset ||
                    c->size == 0 || !sized)
                        return fail(in, -EBADMSG, "manifest: disk chunk %zu does not fit the disk", i);
                end = c->offset + c->length;
                in->wire_cap = MAX(in->wire_cap, (size_t)c->size);
                in->raw_cap = MAX(in->raw_cap, (size_t)c->length);
        }
        return 0;
}

/* Step 3: what the manifest says, against this machine and the clock. */
static int check_manifest(struct install *in)
{
        const struct agent_install_options *o = in->o;
        char why[256], esc[64];
        const char *arch = o->arch;
        struct utsname u;
        int r;

        r = manifest_parse(o->manifest, o->manifest_len, &in->m, why, sizeof(why));
        if (r < 0)
                return fail(in, -EBADMSG, "manifest: %s", why);
        in->parsed = true;
        /* a machine whose clock is behind accepts an expired manifest; one ahead refuses a valid one */
        if (manifest_expired(&in->m, o->now))
                return fail(in, -EKEYEXPIRED, "manifest: %s version %" PRIu64 " expired at %" PRId64
                            " (the clock says %" PRId64 ")", in->m.name, in->m.version, in->m.expires, o->now);
        if (!arch) {
                if (uname(&u) < 0)
                        return fail(in, -errno, "uname: %s", strerror(errno));
                if (agent_arch_from_machine(u.machine, &arch) < 0)
                        return fail(in, -EXDEV, "this machine's architecture %s is not one images are built for",
                                    log_escape(esc, sizeof(esc), u.machine, strlen(u.machine)));
        }
        if (strcmp(in->m.arch, arch) != 0)
                return fail(in, -EXDEV, "manifest: image for %s, this machine is %s", in->m.arch, arch);
        in->disk = &in->m.artifacts[MANIFEST_DISK];
        if (!in->disk->present)
                return fail(in, -ENOMEDIUM, "manifest: %s has no disk to install", in->m.name);
        return check_chunks(in);
}

static int open_target(struct install *in)
{
        const char *t = in->o->target;
        struct stat st;
        uint64_t size;

        in->fd = open(t, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (in->fd < 0)
                return fail(in, -errno, "target %s: %s", t, strerror(errno));
        if (fstat(in->fd, &st) < 0)
                return fail(in, -errno, "target %s: %s", t, strerror(errno));
        if (S_ISBLK(st.st_mode)) {
                /* exclusive: refused while the device is mounted or in use */
                close(in->fd);
                in->fd = open(t, O_RDWR | O_CLOEXEC | O_NOCTTY | O_EXCL);
                if (in->fd < 0 || ioctl(in->fd, BLKGETSIZE64, &size) < 0)
                        return fail(in, -errno, "target %s: %s", t, strerror(errno));
                in->blockdev = true;
        } else if (S_ISREG(st.st_mode)) {
                size = (uint64_t)st.st_size;
                if (size < in->disk->raw_size && ftruncate(in->fd, (off_t)in->disk->raw_size) < 0)
                        return fail(in, -errno, "target %s: cannot grow it: %s", t, strerror(errno));
                size = MAX(size, in->disk->raw_size);
        } else {
                return fail(in, -ENOTBLK, "target %s: neither a block device nor a regular file", t);
        }
        if (in->disk->raw_size > size)
                return fail(in, -ENOSPC, "target %s: %" PRIu64 " bytes, the image needs %" PRIu64, t, size,
                            in->disk->raw_size);
        in->target_size = size;
        in->held_len = (size_t)MIN(size, (uint64_t)AGENT_INSTALL_BOOT_AREA_BYTES);
        return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
        while (len > 0) {
                ssize_t n = pwrite(fd, p, MIN(len, (size_t)1 << 30), (off_t)off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

static int write_zeros(struct install *in, uint64_t off, uint64_t len)
{
        int r;

        if (!in->zeros && !(in->zeros = calloc(1, AGENT_INSTALL_ZERO_BYTES)))
                return -ENOMEM;
        while (len > 0) {
                size_t n = (size_t)MIN(len, (uint64_t)AGENT_INSTALL_ZERO_BYTES);

                if ((r = pwrite_all(in->fd, in->zeros, n, off)) < 0)
                        return r;
                off += n;
                len -= n;
        }
        return 0;
}

static int sync_target(struct install *in, const char *step)
{
        if (fsync(in->fd) < 0)
                return fail(in, -errno, "%s: fsync %s: %s", step, in->o->target, strerror(errno));
        return 0;
}

/* Step 4: the boot areas go first, so that from here on the disk boots nothing old and nothing half written. */
static int wipe_boot_areas(struct install *in)
{
        uint64_t n = in->held_len;
        int r;

        if ((r = write_zeros(in, 0, n)) < 0 || (r = write_zeros(in, in->target_size - n, n)) < 0)
                return fail(in, r, "wiping the boot areas of %s: %s", in->o->target, strerror(-r));
        return sync_target(in, "wiping the boot areas");
}

/* Bytes for [off, off + len) of the target: the first MiB into the held buffer, the rest to the disk. */
static int place(struct install *in, uint64_t off, const uint8_t *p, uint64_t len)
{
        if (off < in->held_len) {
                size_t n = (size_t)MIN(len, in->held_len - off);

                memcpy(in->held + off, p, n);
                off += n;
                p += n;
                len -= n;
        }
        return len ? pwrite_all(in->fd, p, (size_t)len, off) : 0;
}

/* Zeroes a range the image does not map: discard where the target can, zeros written where not. */
static int zero_range(struct install *in, uint64_t off, uint64_t len)
{
        if (off < in->held_len) {
                size_t n = (size_t)MIN(len, in->held_len - off);

                memset(in->held + off, 0, n);
                off += n;
                len -= n;
        }
        if (len == 0)
                return 0;
        if (in->blockdev) {
                uint64_t range[2] = { off, len };

                if (ioctl(in->fd, BLKZEROOUT, range) == 0)
                        return 0;
        } else if (fallocate(in->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0) {
                return 0;
        }
        return write_zeros(in, off, len);
}

/* Step 6: every byte of [0, raw_size) no chunk wrote reads as zero afterwards, whoever had the disk before. */
static int zero_unmapped(struct install *in)
{
        const struct manifest_artifact *d = in->disk;
        uint64_t pos = 0;
        int r = 0;

        for (size_t i = 0; i < d->n_chunks && r == 0; i++) {
                if (d->chunks[i].offset > pos)
                        r = zero_range(in, pos, d->chunks[i].offset - pos);
                pos = d->chunks[i].offset + d->chunks[i].length;
        }
        if (r == 0 && pos < d->raw_size)
                r = zero_range(in, pos, d->raw_size - pos);
        if (r < 0)
                return fail(in, r, "zeroing the unmapped ranges of %s: %s", in->o->target, strerror(-r));
        return sync_target(in, "zeroing the unmapped ranges");
}

/* The resume state: "metald-install/1 SHA TARGET NEXT\n" on tmpfs; it names the manifest and target it is for. */
static void state_prefix(const struct install *in, char *buf, size_t cap)
{
        snprintf(buf, cap, STATE_MAGIC " %s %s ", in->sha_hex, in->o->target);
}

static size_t state_load(const struct install *in)
{
        char prefix[AGENT_INSTALL_MAX_STATE_BYTES], text[AGENT_INSTALL_MAX_STATE_BYTES + 1];
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0, plen;
        uint64_t next;

        if (!in->o->state_file || fs_read_file(in->o->state_file, AGENT_INSTALL_MAX_STATE_BYTES, NULL, &data, &len) < 0)
                return 0;
        state_prefix(in, prefix, sizeof(prefix));
        plen = strlen(prefix);
        if (len <= plen + 1 || memcmp(data, prefix, plen) != 0 || data[len - 1] != '\n')
                return 0;
        memcpy(text, data + plen, len - plen - 1);
        text[len - plen - 1] = '\0';
        if (parse_u64(text, 1, in->disk->n_chunks, &next) < 0)
                return 0;
        return (size_t)next;
}

static void state_save(const struct install *in, size_t next)
{
        char text[AGENT_INSTALL_MAX_STATE_BYTES], tmp[CONFIG_MAX_PATH_BYTES];
        _cleanup_close_ int fd = -1;
        int n;

        if (!in->o->state_file)
                return;
        state_prefix(in, text, sizeof(text));
        n = snprintf(text + strlen(text), sizeof(text) - strlen(text), "%zu\n", next);
        if (n < 0 || (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", in->o->state_file) >= sizeof(tmp))
                return;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        /* best effort: without it a restart begins again at chunk 0 */
        if (fd < 0 || pwrite_all(fd, (const uint8_t *)text, strlen(text), 0) < 0 || rename(tmp, in->o->state_file) < 0)
                unlink(tmp);
}

static void report(struct install *in, size_t next, bool force)
{
        uint64_t now = now_monotonic_usec(), elapsed = now - in->start_usec, run = in->res->wire_bytes;
        const struct agent_install_options *o = in->o;
        struct agent_install_progress p = {
                .done_bytes = in->done_bytes, .total_bytes = in->disk->size, .eta_s = UINT64_MAX,
                .next_chunk = next, .n_chunks = in->disk->n_chunks,
        };
        uint64_t every = o->progress_interval_usec ? o->progress_interval_usec : AGENT_INSTALL_PROGRESS_S * USEC_PER_SEC;

        if (!o->progress || (!force && now - in->last_report_usec < every))
                return;
        in->last_report_usec = now;
        if (elapsed > 0 && run > 0) {
                p.rate_bytes_per_s = (uint64_t)((double)run * USEC_PER_SEC / (double)elapsed);
                if (p.rate_bytes_per_s > 0)
                        p.eta_s = (p.total_bytes - MIN(p.done_bytes, p.total_bytes)) / p.rate_bytes_per_s;
        }
        o->progress(o->progress_userdata, &p);
}

/* One chunk's bytes, retried from its start after a transient failure; nothing partial is ever used. */
static int fetch_chunk(struct install *in, size_t i, const struct manifest_chunk *c)
{
        const struct agent_install_options *o = in->o;
        unsigned max = o->max_attempts ? o->max_attempts : AGENT_INSTALL_FETCH_ATTEMPTS;
        uint64_t delay = o->backoff_min_usec ? o->backoff_min_usec : AGENT_INSTALL_BACKOFF_MIN_USEC;
        char why[256];

        for (unsigned attempt = 1;; attempt++) {
                size_t got = 0;
                int r;

                why[0] = '\0';
                r = o->fetch(o->fetch_userdata, c->file_offset, (size_t)c->size, in->wire, &got, why, sizeof(why));
                if (r == 0 && got == c->size)
                        return 0;
                if (r == 0 && got > c->size)
                        return fail(in, -EBADMSG, "chunk %zu: the fetcher returned %zu bytes for %" PRIu64, i, got,
                                    c->size);
                if (r == 0) {
                        r = -EAGAIN;
                        snprintf(why, sizeof(why), "short reply, %zu of %" PRIu64 " bytes", got, c->size);
                }
                if (r != -EAGAIN)
                        return fail(in, r, "chunk %zu: %s", i, why[0] ? why : strerror(-r));
                if (attempt >= max)
                        return fail(in, -EIO, "chunk %zu: %s (gave up after %u tries)", i, why, attempt);
                if (o->cancel && atomic_load(o->cancel))
                        return fail(in, -ECANCELED, "chunk %zu: %s; the install was stopped", i, why);
                in->res->retries++;
                log_warning("Chunk %zu: %s; fetching it again from its start in %" PRIu64 " ms", i, why,
                            (uint64_t)(delay / USEC_PER_MSEC));
                sleep_usec(delay);
                delay = MIN(delay * 2, AGENT_INSTALL_BACKOFF_MAX_USEC);
        }
}

static int install_chunk(struct install *in, size_t i)
{
        const struct manifest_chunk *c = &in->disk->chunks[i];
        bool plain = in->disk->compression == MANIFEST_COMPRESS_NONE;
        uint8_t *raw = plain ? in->wire : in->raw;
        int r;

        if ((r = fetch_chunk(in, i, c)) < 0)
                return r;
        r = agent_chunk_decode(c, in->disk->compression, in->wire, (size_t)c->size, raw,
                               plain ? in->wire_cap : in->raw_cap, in->dctx);
        if (r == -EBADMSG)
                return fail(in, r, "chunk %zu (disk file bytes %" PRIu64 "+%" PRIu64 "): digest mismatch, not written",
                            i, c->file_offset, c->size);
        if (r < 0)
                return fail(in, r, "chunk %zu: verified, but not one zstd frame of %" PRIu64 " bytes", i, c->length);
        if ((r = place(in, c->offset, raw, c->length)) < 0)
                return fail(in, r, "chunk %zu: writing %" PRIu64 " bytes at %" PRIu64 " of %s: %s", i, c->length,
                            c->offset, in->o->target, strerror(-r));
        in->res->chunks_written++;
        in->res->wire_bytes += c->size;
        return 0;
}

/* An earlier run's chunk is still on the target unless a boot-area wipe of this run covered it. */
static bool chunk_survived(const struct install *in, size_t i)
{
        const struct manifest_chunk *c = &in->disk->chunks[i];

        return i < in->resume_next && c->offset >= in->held_len &&
               c->offset + c->length <= in->target_size - in->held_len;
}

/* Step 5. */
static int write_chunks(struct install *in)
{
        const struct manifest_artifact *d = in->disk;
        int r;

        for (size_t i = 0; i < d->n_chunks; i++) {
                in->res->failed_chunk = (long)i;
                if (in->o->cancel && atomic_load(in->o->cancel))
                        return fail(in, -ECANCELED, "chunk %zu: the install was stopped", i);
                if (!chunk_survived(in, i) && (r = install_chunk(in, i)) < 0)
                        return r;
                in->done_bytes += d->chunks[i].size;
                state_save(in, i + 1);
                report(in, i + 1, false);
        }
        in->res->failed_chunk = -1;
        return 0;
}

/* Steps 8 and 9: the configuration, then the first MiB; each synced. */
static int write_config_and_boot_area(struct install *in)
{
        int r;

        if (in->record.len) {
                r = place(in, in->config_offset, (const uint8_t *)in->record.data, in->record.len);
                if (r < 0)
                        return fail(in, r, "writing the configuration record at %" PRIu64 ": %s",
                                    in->config_offset, strerror(-r));
                if ((r = sync_target(in, "writing the configuration record")) < 0)
                        return r;
        }
        r = pwrite_all(in->fd, in->held, in->held_len, 0);
        if (r == 0 && fsync(in->fd) < 0)
                r = -errno;
        if (r < 0) {
                /* a half-written boot area must not boot either */
                (void)write_zeros(in, 0, in->held_len);
                (void)fsync(in->fd);
                return fail(in, r, "writing the first MiB of %s: %s", in->o->target, strerror(-r));
        }
        return 0;
}

static int prepare(struct install *in)
{
        static const uint8_t zeros_4k[AGENT_CONFIG_ALIGN];
        const struct agent_install_options *o = in->o;
        int r;

        in->config_offset = o->config_offset;
        in->config_length = o->config_length;
        if (o->config_from_manifest) {
                in->config_offset = in->disk->has_config ? in->disk->config_offset : 0;
                in->config_length = in->disk->has_config ? in->disk->config_length : 0;
        }
        /* an image without a configuration partition reads no configuration */
        if (o->config_json && !(o->config_from_manifest && !in->disk->has_config)) {
                r = agent_config_record_build(o->config_json, strlen(o->config_json), &in->record);
                if (r < 0)
                        return fail(in, r, "configuration record: %s", strerror(-r));
                /* the first 64 KiB of the range are rewritten: the record, then zeros over anything stale */
                while (r == 0 && in->record.len < AGENT_CONFIG_MAX_RECORD)
                        r = buf_append(&in->record, zeros_4k, sizeof(zeros_4k));
                if (r < 0 || in->config_offset % AGENT_CONFIG_ALIGN || in->config_offset < AGENT_INSTALL_BOOT_AREA_BYTES ||
                    in->config_length < AGENT_CONFIG_MAX_RECORD || in->config_offset > in->disk->raw_size ||
                    in->config_length > in->disk->raw_size - in->config_offset)
                        return fail(in, -ENOSPC, "configuration record: the range %" PRIu64 "+%" PRIu64
                                    " is not an aligned range of at least %d bytes past the first MiB of the disk",
                                    in->config_offset, in->config_length, AGENT_CONFIG_MAX_RECORD);
        }
        in->held = calloc(1, MAX(in->held_len, (size_t)1));
        in->wire = malloc(MAX(in->wire_cap, (size_t)1));     /* a disk of zeros has no chunks */
        if (in->disk->compression != MANIFEST_COMPRESS_NONE) {
                in->raw = malloc(MAX(in->raw_cap, (size_t)1));
                in->dctx = ZSTD_createDCtx();
        }
        if (!in->held || !in->wire || (in->disk->compression != MANIFEST_COMPRESS_NONE && (!in->raw || !in->dctx)))
                return fail(in, -ENOMEM, "out of memory for %zu-byte chunks", in->wire_cap);
        return 0;
}

static int run(struct install *in)
{
        int r;

        if ((r = check_signature(in)) < 0 || (r = check_digest(in)) < 0 || (r = check_manifest(in)) < 0 ||
            (r = open_target(in)) < 0 || (r = prepare(in)) < 0)
                return r;
        in->resume_next = state_load(in);
        in->res->resumed_at = in->resume_next;
        if ((r = wipe_boot_areas(in)) < 0)
                return r;
        in->start_usec = in->last_report_usec = now_monotonic_usec();
        if ((r = write_chunks(in)) < 0 || (r = zero_unmapped(in)) < 0 ||
            (r = write_config_and_boot_area(in)) < 0)
                return r;
        report(in, in->disk->n_chunks, true);
        if (in->o->state_file)
                unlink(in->o->state_file);
        return 0;
}

int agent_install(const struct agent_install_options *o, struct agent_install_result *ret)
{
        struct install in = { .o = o, .res = ret, .fd = -1, .record = BUF_INIT(AGENT_CONFIG_MAX_RECORD) };
        int r;

        *ret = (struct agent_install_result){ .failed_chunk = -1 };
        if (!o->fetch || !o->target || (o->n_keys && !o->keys))
                return fail(&in, -EINVAL, "install: missing options");
        r = run(&in);
        if (in.fd >= 0)
                close(in.fd);
        ZSTD_freeDCtx(in.dctx);
        free(in.held);
        free(in.wire);
        free(in.raw);
        free(in.zeros);
        buf_free(&in.record);
        if (in.parsed)
                manifest_free(&in.m);
        if (r == 0)
                ret->failed_chunk = -1;
        return r;
}

/* The configuration record */

static void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t record_size(size_t json_len)
{
        size_t n = AGENT_CONFIG_HEADER_BYTES + json_len;

        return (n + AGENT_CONFIG_ALIGN - 1) / AGENT_CONFIG_ALIGN * AGENT_CONFIG_ALIGN;
}

int agent_config_record_build(const char *json, size_t len, struct buf *out)
{
        uint8_t head[AGENT_CONFIG_HEADER_BYTES] = { 0 };
        static const uint8_t pad[256];
        size_t start = out->len, total;
        int r;

        if (len == 0 || len > AGENT_CONFIG_MAX_JSON)
                return -EINVAL;
        memcpy(head, AGENT_CONFIG_MAGIC, AGENT_CONFIG_MAGIC_BYTES);
        put_le32(head + AGENT_CONFIG_MAGIC_BYTES, (uint32_t)len);
        /* the reserved bytes at 20 and 56 stay zero */
        if (manifest_sha256(json, len, head + AGENT_CONFIG_MAGIC_BYTES + 8) < 0)
                return -EIO;
        total = record_size(len);
        r = buf_append(out, head, sizeof(head));
        if (r == 0)
                r = buf_append(out, json, len);
        while (r == 0 && out->len - start < total)
                r = buf_append(out, pad, MIN(sizeof(pad), total - (out->len - start)));
        if (r < 0)
                out->len = start;
        return r;
}

int agent_config_record_parse(const void *data, size_t len, const char **ret_json, size_t *ret_json_len)
{
        const uint8_t *p = data;
        uint8_t digest[MANIFEST_SHA256_BYTES];
        size_t json_len, total;

        if (len < AGENT_CONFIG_HEADER_BYTES || memcmp(p, AGENT_CONFIG_MAGIC, AGENT_CONFIG_MAGIC_BYTES) != 0 ||
            get_le32(p + AGENT_CONFIG_MAGIC_BYTES + 4) != 0 || get_le32(p + AGENT_CONFIG_HEADER_BYTES - 8) != 0 ||
            get_le32(p + AGENT_CONFIG_HEADER_BYTES - 4) != 0)
                return -EBADMSG;
        json_len = get_le32(p + AGENT_CONFIG_MAGIC_BYTES);
        if (json_len == 0 || json_len > AGENT_CONFIG_MAX_JSON)
                return -EBADMSG;
        total = record_size(json_len);
        if (len < total)
                return -EBADMSG;
        for (size_t i = AGENT_CONFIG_HEADER_BYTES + json_len; i < total; i++)
                if (p[i] != 0)
                        return -EBADMSG;
        if (manifest_sha256(p + AGENT_CONFIG_HEADER_BYTES, json_len, digest) < 0 ||
            memcmp(digest, p + AGENT_CONFIG_MAGIC_BYTES + 8, sizeof(digest)) != 0)
                return -EBADMSG;
        *ret_json = (const char *)p + AGENT_CONFIG_HEADER_BYTES;
        *ret_json_len = json_len;
        return 0;
}

static bool hostname_valid(const char *s)
{
        size_t n = strlen(s), label = 0;

        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

                if (c == '.') {
                        if (label == 0 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!alnum && (c != '-' || label == 0))
                        return false;
                if (++label > 63)
                        return false;
        }
        return label > 0 && s[n - 1] != '-';
}

int agent_config_json(const char *hostname, struct buf *out)
{
        if (!hostname_valid(hostname))
                return -EINVAL;
        /* the name has no character JSON would need escaped */
        return buf_printf(out, "{\"hostname\":\"%s\"}", hostname);
}
