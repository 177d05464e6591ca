/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verified install of metald-agent: a test image (extents, zstd or plain
 * chunks, a manifest signed with a key made here) installed to a regular file
 * that held 0xAA before, through an in-memory fetcher that can tamper, cut
 * short, fail and crash; then the libcurl fetcher against a hostile HTTP
 * server on loopback.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <zstd.h>

#include "metald/agent_install.h"
#include "metald/buf.h"
#include "metald/util.h"
#include "test.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define RAW_SIZE (4 * MIB)
#define TARGET_SIZE (5 * MIB)   /* past raw_size: its last MiB is the target's backup GPT */
#define CHUNK (64 * KIB)
#define MAX_CHUNKS 64
#define NOW 1800000000          /* 2027-01-15 */

struct img {
        bool zstd;
        uint8_t raw[RAW_SIZE];
        struct buf disk, manifest;
        uint8_t sig[64], sha[32];
        size_t n_chunks;
        uint64_t chunk_off[MAX_CHUNKS], chunk_len[MAX_CHUNKS], chunk_file_off[MAX_CHUNKS], chunk_size[MAX_CHUNKS];
        struct manifest_key key;
        EVP_PKEY *pkey;
};

/* Mapped: the partition table area, two ranges in the middle, the end (backup GPT); the rest is unmapped. */
static const uint64_t extents[][2] = {
        { 0, 256 * KIB }, { MIB + 64 * KIB, 512 * KIB }, { 3 * MIB, 448 * KIB }, { RAW_SIZE - 64 * KIB, 64 * KIB },
};

static void hex(char *out, const uint8_t *p, size_t n)
{
        format_hex(out, p, n);
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
        if (manifest_sha256(p, n, out) < 0)
                abort();
}

static EVP_PKEY *keygen(struct manifest_key *ret)
{
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        size_t n = MANIFEST_KEY_BYTES;

        if (!k || EVP_PKEY_get_raw_public_key(k, ret->pub, &n) != 1 || n != MANIFEST_KEY_BYTES)
                abort();
        manifest_key_id(ret->pub, ret->id);
        return k;
}

static void sign(EVP_PKEY *k, const void *data, size_t len, uint8_t sig[64])
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t n = 64;

        if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 ||
            EVP_DigestSign(ctx, sig, &n, data, len) != 1 || n != 64)
                abort();
        EVP_MD_CTX_free(ctx);
}

static void fill_raw(struct img *im)
{
        uint32_t x = 12345;

        memset(im->raw, 0, sizeof(im->raw));
        for (size_t e = 0; e < ARRAY_SIZE(extents); e++)
                for (uint64_t i = extents[e][0]; i < extents[e][0] + extents[e][1]; i++) {
                        x = x * 1103515245 + 12345;
                        /* half noise, half text: zstd has something to do and something it cannot shrink */
                        im->raw[i] = (i / 4096) % 2 ? (uint8_t)(x >> 16) : (uint8_t)("metald "[i % 7]);
                }
}

static void add_chunk(struct img *im, uint64_t off, uint64_t len, struct buf *chunks_json)
{
        char digest_hex[65];
        uint8_t d[32];
        size_t start = im->disk.len, i = im->n_chunks++;

        if (im->zstd) {
                size_t cap = ZSTD_compressBound(len), n;
                uint8_t *tmp = malloc(cap);

                n = ZSTD_compress(tmp, cap, im->raw + off, len, 3);
                if (ZSTD_isError(n) || buf_append(&im->disk, tmp, n) < 0)
                        abort();
                free(tmp);
        } else if (buf_append(&im->disk, im->raw + off, len) < 0) {
                abort();
        }
        im->chunk_off[i] = off;
        im->chunk_len[i] = len;
        im->chunk_file_off[i] = start;
        im->chunk_size[i] = im->disk.len - start;
        sha256(im->disk.data + start, im->chunk_size[i], d);
        hex(digest_hex, d, 32);
        buf_printf(chunks_json, "%s{\"offset\":%llu,\"length\":%llu,\"size\":%llu,\"sha256\":\"%s\"}",
                   i ? "," : "", (unsigned long long)off, (unsigned long long)len,
                   (unsigned long long)im->chunk_size[i], digest_hex);
}

static void small_file_json(struct buf *m, const char *name, const char *content)
{
        char h[65];
        uint8_t d[32];

        sha256(content, strlen(content), d);
        hex(h, d, 32);
        buf_printf(m, "\"%s\":{\"size\":%zu,\"sha256\":\"%s\",\"chunks\":[{\"size\":%zu,\"sha256\":\"%s\"}]},", name,
                   strlen(content), h, strlen(content), h);
}

/* The image, its manifest (expiring at expires) and signature; keygen only the first time. */
static void build(struct img *im, bool zstd, const char *expires)
{
        struct buf chunks = BUF_INIT(1 << 20);
        char h[65];
        uint8_t d[32];

        if (!im->pkey)
                im->pkey = keygen(&im->key);
        im->zstd = zstd;
        buf_free(&im->disk);
        buf_free(&im->manifest);
        im->disk = BUF_INIT(16 * MIB);
        im->manifest = BUF_INIT(1 << 20);
        im->n_chunks = 0;
        fill_raw(im);
        for (size_t e = 0; e < ARRAY_SIZE(extents); e++)
                for (uint64_t off = extents[e][0]; off < extents[e][0] + extents[e][1]; off += CHUNK)
                        add_chunk(im, off, MIN((uint64_t)CHUNK, extents[e][0] + extents[e][1] - off), &chunks);
        sha256(im->disk.data, im->disk.len, d);
        hex(h, d, 32);
        buf_printf(&im->manifest,
                   "{\"format\":\"metald-image/1\",\"name\":\"test-image\",\"version\":3,\"arch\":\"x86_64\","
                   "\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"%s\",\"key_id\":\"%s\",\"chunk_size\":%u,"
                   "\"artifacts\":{",
                   expires, im->key.id, CHUNK);
        small_file_json(&im->manifest, "kernel", "a kernel");
        small_file_json(&im->manifest, "initrd", "an initrd");
        buf_printf(&im->manifest,
                   "\"disk\":{\"size\":%zu,\"sha256\":\"%s\",\"compression\":\"%s\",\"raw_size\":%u,\"extents\":[",
                   im->disk.len, h, zstd ? "zstd" : "none", RAW_SIZE);
        for (size_t e = 0; e < ARRAY_SIZE(extents); e++)
                buf_printf(&im->manifest, "%s[%llu,%llu]", e ? "," : "", (unsigned long long)extents[e][0],
                           (unsigned long long)extents[e][1]);
        buf_printf(&im->manifest, "],\"chunks\":[%s]}}}", chunks.data);
        buf_free(&chunks);
        sign(im->pkey, im->manifest.data, im->manifest.len, im->sig);
        sha256(im->manifest.data, im->manifest.len, im->sha);
}

static void img_free(struct img *im)
{
        buf_free(&im->disk);
        buf_free(&im->manifest);
        EVP_PKEY_free(im->pkey);
        free(im);
}

/* The in-memory fetcher: serves im->disk, misbehaving as told. */
struct fake {
        const struct img *im;
        long tamper_chunk;              /* serve this chunk with one byte flipped */
        long short_chunk;               /* cut this chunk short ... */
        unsigned short_times;           /* ... this many times */
        long transient_chunk;           /* -EAGAIN for this chunk ... */
        unsigned transient_times;
        long dead_chunk;                /* a permanent error from here on (the agent "crashes") */
        int dead_error;
        size_t n_calls;
        uint64_t calls[4 * MAX_CHUNKS]; /* offsets asked for */
};

static long chunk_at(const struct img *im, uint64_t file_off)
{
        for (size_t i = 0; i < im->n_chunks; i++)
                if (im->chunk_file_off[i] == file_off)
                        return (long)i;
        return -1;
}

static int fake_fetch(void *userdata, uint64_t offset, size_t length, uint8_t *buf, size_t *ret_got, char *why,
                      size_t why_cap)
{
        struct fake *f = userdata;
        long c = chunk_at(f->im, offset);

        if (f->n_calls < ARRAY_SIZE(f->calls))
                f->calls[f->n_calls++] = offset;
        if (c < 0 || offset + length > f->im->disk.len || f->im->chunk_size[c] != length)
                abort();        /* the installer asked for something that is not a chunk */
        if (f->dead_chunk >= 0 && c >= f->dead_chunk) {
                snprintf(why, why_cap, "gone");
                return f->dead_error;
        }
        if (c == f->transient_chunk && f->transient_times > 0) {
                f->transient_times--;
                snprintf(why, why_cap, "connection reset");
                return -EAGAIN;
        }
        memcpy(buf, f->im->disk.data + offset, length);
        if (c == f->tamper_chunk)
                buf[length / 2] ^= 0x01;
        *ret_got = length;
        if (c == f->short_chunk && f->short_times > 0) {
                f->short_times--;
                *ret_got = length - 1;
        }
        return 0;
}

static void fake_init(struct fake *f, const struct img *im)
{
        *f = (struct fake){ .im = im, .tamper_chunk = -1, .short_chunk = -1, .transient_chunk = -1, .dead_chunk = -1,
                            .dead_error = -EIO };
}

static char target_path[512], state_path[512];

/* A target of TARGET_SIZE bytes of 0xAA: whatever the installer does not write stays visible. */
static void dirty_target(void)
{
        static uint8_t aa[TARGET_SIZE];
        int fd;

        snprintf(target_path, sizeof(target_path), "%s/target", test_tmpdir());
        snprintf(state_path, sizeof(state_path), "%s/install.state", test_tmpdir());
        memset(aa, 0xAA, sizeof(aa));
        fd = open(target_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, aa, sizeof(aa)) != (ssize_t)sizeof(aa))
                abort();
        close(fd);
}

static uint8_t *read_target(void)
{
        uint8_t *p = malloc(TARGET_SIZE);
        int fd = open(target_path, O_RDONLY);

        if (!p || fd < 0 || pread(fd, p, TARGET_SIZE, 0) != TARGET_SIZE)
                abort();
        close(fd);
        return p;
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
        for (size_t i = 0; i < n; i++)
                if (p[i] != v)
                        return false;
        return true;
}

static struct agent_install_options options(const struct img *im, struct fake *f)
{
        struct agent_install_options o = {
                .manifest = (const uint8_t *)im->manifest.data, .manifest_len = im->manifest.len,
                .sig = im->sig, .sig_len = sizeof(im->sig), .keys = &im->key, .n_keys = 1,
                .target = target_path, .arch = "x86_64", .now = NOW, .fetch = fake_fetch, .fetch_userdata = f,
                .backoff_min_usec = 1000, .max_attempts = 4,
        };

        memcpy(o.manifest_sha256, im->sha, sizeof(im->sha));
        return o;
}

/* What the target must hold after a good install: the raw image, zeros to the end. */
static bool target_is_image(const struct img *im, const struct buf *record, uint64_t record_off)
{
        _cleanup_free_ uint8_t *t = read_target();
        _cleanup_free_ uint8_t *want = calloc(1, TARGET_SIZE);

        memcpy(want, im->raw, RAW_SIZE);
        if (record)
                memcpy(want + record_off, record->data, record->len);
        return memcmp(t, want, TARGET_SIZE) == 0;
}

static void check_install(bool zstd, uint64_t config_off)
{
        struct img *im = calloc(1, sizeof(*im));
        struct buf json = BUF_INIT(4096), record = BUF_INIT(1 << 20);
        struct agent_install_result res;
        struct agent_install_options o;
        struct fake f;
        int r;

        build(im, zstd, "2027-06-01T00:00:00Z");
        dirty_target();
        fake_init(&f, im);
        o = options(im, &f);
        CHECK_EQ(agent_config_json("worker-1.example", &json), 0);
        CHECK_EQ(agent_config_record_build(json.data, json.len, &record), 0);
        o.config_json = json.data;
        o.config_offset = config_off;
        o.config_length = 64 * KIB;
        r = agent_install(&o, &res);
        if (r < 0)
                fprintf(stderr, "  install: %s\n", res.why);
        CHECK_EQ(r, 0);
        CHECK_EQ(res.failed_chunk, -1);
        CHECK_EQ(res.chunks_written, im->n_chunks);
        CHECK_EQ(res.retries, 0);
        CHECK_EQ(f.n_calls, im->n_chunks);
        for (size_t i = 0; i < im->n_chunks; i++)
                CHECK_EQ(f.calls[i], im->chunk_file_off[i]);    /* in order, each once */
        CHECK(target_is_image(im, &record, config_off));
        buf_free(&json);
        buf_free(&record);
        img_free(im);
}

TEST(agent_install_zstd_config_after_first_mib)
{
        /* [MiB, MiB + 64 KiB) is unmapped in the test image */
        check_install(true, MIB);
}

TEST(agent_install_plain)
{
        check_install(false, MIB);
}

TEST(agent_install_refusals_before_any_write)
{
        struct img *im = calloc(1, sizeof(*im));
        struct manifest_key other;
        EVP_PKEY *other_pkey = keygen(&other);
        struct agent_install_result res;
        struct agent_install_options o;
        _cleanup_free_ uint8_t *t = NULL;
        uint8_t bad_sig[64];
        struct fake f;

        build(im, true, "2027-06-01T00:00:00Z");
        dirty_target();
        fake_init(&f, im);

        o = options(im, &f);
        o.manifest_sha256[0] ^= 1;                      /* another validly signed manifest: a replay */
        CHECK_EQ(agent_install(&o, &res), -EKEYREJECTED);

        o = options(im, &f);
        o.keys = &other;                                /* signed by a key this initramfs does not trust */
        CHECK_EQ(agent_install(&o, &res), -ENOKEY);
        CHECK(strstr(res.why, im->key.id) != NULL);

        o = options(im, &f);
        memcpy(bad_sig, im->sig, 64);
        bad_sig[10] ^= 0x40;
        o.sig = bad_sig;
        CHECK_EQ(agent_install(&o, &res), -EBADMSG);
        o.sig_len = 63;
        CHECK_EQ(agent_install(&o, &res), -EBADMSG);

        /* signed by the other key but naming ours: the signature decides */
        o = options(im, &f);
        sign(other_pkey, im->manifest.data, im->manifest.len, bad_sig);
        o.sig = bad_sig;
        CHECK_EQ(agent_install(&o, &res), -EBADMSG);

        o = options(im, &f);
        o.now = 1900000000;                             /* after expires */
        CHECK_EQ(agent_install(&o, &res), -EKEYEXPIRED);
        CHECK(strstr(res.why, "expired") != NULL);

        o = options(im, &f);
        o.arch = "arm64";
        CHECK_EQ(agent_install(&o, &res), -EXDEV);

        o = options(im, &f);
        o.config_json = "{\"hostname\":\"a\"}";
        o.config_offset = MIB + 1;                      /* not aligned */
        o.config_length = 8192;
        CHECK_EQ(agent_install(&o, &res), -ENOSPC);
        o.config_offset = MIB;
        o.config_length = 100;                          /* no room for a record */
        CHECK_EQ(agent_install(&o, &res), -ENOSPC);
        o.config_offset = 512 * KIB;                    /* inside the first MiB */
        o.config_length = 64 * KIB;
        CHECK_EQ(agent_install(&o, &res), -ENOSPC);
        o.config_offset = RAW_SIZE - 32 * KIB;          /* past the disk */
        CHECK_EQ(agent_install(&o, &res), -ENOSPC);

        o = options(im, &f);
        o.manifest_len = IMAGE_MAX_MANIFEST_BYTES + 1;
        CHECK_EQ(agent_install(&o, &res), -EFBIG);

        CHECK_EQ(f.n_calls, 0);
        t = read_target();
        CHECK(all(t, TARGET_SIZE, 0xAA));               /* refused before anything was written */
        EVP_PKEY_free(other_pkey);
        img_free(im);
}

TEST(agent_install_tampered_chunk_stops_before_writing_it)
{
        struct img *im = calloc(1, sizeof(*im));
        struct agent_install_result res;
        struct agent_install_options o;
        _cleanup_free_ uint8_t *t = NULL;
        struct fake f;
        const long k = 9;               /* in the second extent, past the first MiB */
        char name[32];

        for (int zstd = 0; zstd < 2; zstd++) {
                build(im, zstd, "2027-06-01T00:00:00Z");
                dirty_target();
                fake_init(&f, im);
                f.tamper_chunk = k;
                o = options(im, &f);
                CHECK_EQ(agent_install(&o, &res), -EBADMSG);
                CHECK_EQ(res.failed_chunk, k);
                snprintf(name, sizeof(name), "chunk %ld ", k);
                CHECK(strstr(res.why, name) != NULL);
                CHECK_EQ(f.n_calls, (size_t)k + 1);    /* not retried: the bytes were wrong, not missing */
                free(t);
                t = read_target();
                CHECK(all(t, MIB, 0));                          /* does not boot */
                CHECK(all(t + TARGET_SIZE - MIB, MIB, 0));      /* nor from the backup GPT */
                CHECK(all(t + im->chunk_off[k], im->chunk_len[k], 0xAA));      /* not a byte of it */
                CHECK(memcmp(t + im->chunk_off[k - 1], im->raw + im->chunk_off[k - 1], im->chunk_len[k - 1]) == 0);
        }
        img_free(im);
}

TEST(agent_install_short_and_transient_replies_are_retried)
{
        struct img *im = calloc(1, sizeof(*im));
        struct agent_install_result res;
        struct agent_install_options o;
        _cleanup_free_ uint8_t *t = NULL;
        struct fake f;

        build(im, true, "2027-06-01T00:00:00Z");
        dirty_target();
        fake_init(&f, im);
        f.short_chunk = 5;
        f.short_times = 1;
        f.transient_chunk = 12;
        f.transient_times = 2;
        o = options(im, &f);
        CHECK_EQ(agent_install(&o, &res), 0);
        CHECK_EQ(res.retries, 3);
        CHECK_EQ(f.n_calls, im->n_chunks + 3);
        CHECK_EQ(f.calls[6], im->chunk_file_off[5]);    /* again from the chunk's start */
        CHECK(target_is_image(im, NULL, 0));

        /* always short: bounded, then it fails with the boot area zero */
        dirty_target();
        fake_init(&f, im);
        f.short_chunk = 14;
        f.short_times = 100;
        o = options(im, &f);
        CHECK_EQ(agent_install(&o, &res), -EIO);
        CHECK_EQ(res.failed_chunk, 14);
        CHECK_EQ(f.n_calls, 14 + o.max_attempts);
        CHECK(strstr(res.why, "short") != NULL);
        t = read_target();
        CHECK(all(t, MIB, 0));
        CHECK(all(t + im->chunk_off[14], im->chunk_len[14], 0xAA));

        /* a permanent error is not retried */
        dirty_target();
        fake_init(&f, im);
        f.dead_chunk = 2;
        f.dead_error = -ENOENT;
        o = options(im, &f);
        CHECK_EQ(agent_install(&o, &res), -ENOENT);
        CHECK_EQ(f.n_calls, 3);
        img_free(im);
}

TEST(agent_install_unmapped_ranges_zeroed)
{
        struct img *im = calloc(1, sizeof(*im));
        struct agent_install_result res;
        struct agent_install_options o;
        _cleanup_free_ uint8_t *t = NULL;
        struct fake f;

        build(im, true, "2027-06-01T00:00:00Z");
        dirty_target();
        fake_init(&f, im);
        o = options(im, &f);
        CHECK_EQ(agent_install(&o, &res), 0);
        t = read_target();
        CHECK(all(t + 256 * KIB, MIB + 64 * KIB - 256 * KIB, 0));       /* across the first MiB's end */
        CHECK(all(t + MIB + 576 * KIB, 3 * MIB - MIB - 576 * KIB, 0));
        CHECK(all(t + 3 * MIB + 448 * KIB, RAW_SIZE - 64 * KIB - 3 * MIB - 448 * KIB, 0));
        CHECK(all(t + RAW_SIZE, TARGET_SIZE - RAW_SIZE, 0));
        CHECK(target_is_image(im, NULL, 0));
        img_free(im);
}

static size_t progress_calls;
static struct agent_install_progress last_progress;

static void on_progress(void *userdata, const struct agent_install_progress *p)
{
        progress_calls++;
        last_progress = *p;
}

TEST(agent_install_resumes_after_a_crash)
{
        struct img *im = calloc(1, sizeof(*im));
        struct agent_install_result res;
        struct agent_install_options o;
        _cleanup_free_ uint8_t *t = NULL;
        struct fake f;
        const long k = 12;
        char text[1024];
        int fd;
        ssize_t n;

        build(im, true, "2027-06-01T00:00:00Z");
        dirty_target();
        fake_init(&f, im);
        f.dead_chunk = k;
        o = options(im, &f);
        o.state_file = state_path;
        o.max_attempts = 1;
        CHECK_EQ(agent_install(&o, &res), -EIO);
        CHECK_EQ(res.failed_chunk, k);
        t = read_target();
        CHECK(all(t, MIB, 0));
        fd = open(state_path, O_RDONLY);
        CHECK(fd >= 0);
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
        CHECK(n > 0);
        text[n] = '\0';
        CHECK(strstr(text, " 12\n") != NULL);

        /* the next run: the first MiB's chunks again (the held buffer died with the process), then k onwards */
        fake_init(&f, im);
        o = options(im, &f);
        o.state_file = state_path;
        o.progress = on_progress;
        o.progress_interval_usec = 1;
        progress_calls = 0;
        CHECK_EQ(agent_install(&o, &res), 0);
        CHECK_EQ(res.resumed_at, (size_t)k);
        for (size_t i = 0; i < f.n_calls; i++) {
                long c = chunk_at(im, f.calls[i]);

                CHECK(c >= k || im->chunk_off[c] < MIB);
        }
        CHECK_EQ(f.n_calls, 4 + (im->n_chunks - (size_t)k));       /* 4 chunks in the first MiB */
        CHECK(target_is_image(im, NULL, 0));
        CHECK(access(state_path, F_OK) < 0);            /* done: nothing to resume */
        CHECK(progress_calls >= 2);
        CHECK_EQ(last_progress.done_bytes, im->disk.len);
        CHECK_EQ(last_progress.total_bytes, im->disk.len);
        CHECK_EQ(last_progress.next_chunk, im->n_chunks);

        /* a state file for another manifest is not believed */
        fd = open(state_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        snprintf(text, sizeof(text), "metald-install/1 %064d %s 15\n", 0, target_path);
        CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
        dirty_target();
        fake_init(&f, im);
        CHECK_EQ(agent_install(&o, &res), 0);
        CHECK_EQ(res.resumed_at, 0);
        CHECK_EQ(f.n_calls, im->n_chunks);
        CHECK(target_is_image(im, NULL, 0));
        img_free(im);
}

TEST(agent_chunk_decode_hostile)
{
        uint8_t raw[8192], frame[16384], two[32768], out[8192];
        struct manifest_chunk c = { .length = sizeof(raw) };
        ZSTD_CCtx *cctx = ZSTD_createCCtx();
        size_t n, m;

        for (size_t i = 0; i < sizeof(raw); i++)
                raw[i] = (uint8_t)(i * 7 / 5);
        n = ZSTD_compress(frame, sizeof(frame), raw, sizeof(raw), 1);
        CHECK(!ZSTD_isError(n));
        c.size = n;
        sha256(frame, n, c.sha256);
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_ZSTD, frame, n, out, sizeof(out), NULL), 0);
        CHECK(memcmp(out, raw, sizeof(raw)) == 0);
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_ZSTD, frame, n - 1, out, sizeof(out), NULL), -EBADMSG);
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_ZSTD, frame, n, out, sizeof(out) - 1, NULL), -ENOBUFS);
        frame[n / 2] ^= 1;
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_ZSTD, frame, n, out, sizeof(out), NULL), -EBADMSG);
        frame[n / 2] ^= 1;

        /* verified bytes that are not what the manifest says: two frames, trailing bytes, a wrong size */
        memcpy(two, frame, n);
        memcpy(two + n, frame, n);
        c.size = 2 * n;
        sha256(two, 2 * n, c.sha256);
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_ZSTD, two, 2 * n, out, sizeof(out), NULL), -EPROTO);
        two[n] = 0;
        c.size = n + 1;
        sha256(two, n + 1, c.sha256);
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_ZSTD, two, n + 1, out, sizeof(out), NULL), -EPROTO);
        c.size = n;
        c.length = sizeof(raw) - 1;
        sha256(frame, n, c.sha256);
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_ZSTD, frame, n, out, sizeof(out), NULL), -EPROTO);

        /* a frame that does not say its size */
        CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
        {
                ZSTD_inBuffer in = { raw, sizeof(raw), 0 };
                ZSTD_outBuffer ob = { frame, sizeof(frame), 0 };

                CHECK_EQ(ZSTD_compressStream2(cctx, &ob, &in, ZSTD_e_end), 0);
                m = ob.pos;
        }
        c.length = sizeof(raw);
        c.size = m;
        sha256(frame, m, c.sha256);
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_ZSTD, frame, m, out, sizeof(out), NULL), -EPROTO);
        ZSTD_freeCCtx(cctx);

        /* plain: size must equal length */
        c.size = c.length = sizeof(raw);
        sha256(raw, sizeof(raw), c.sha256);
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_NONE, raw, sizeof(raw), out, sizeof(out), NULL), 0);
        CHECK(memcmp(out, raw, sizeof(raw)) == 0);
        c.length = 100;
        CHECK_EQ(agent_chunk_decode(&c, MANIFEST_COMPRESS_NONE, raw, sizeof(raw), out, sizeof(out), NULL), -EPROTO);
}

TEST(agent_config_record)
{
        static const char *const bad_names[] = { "", "Node-1", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "ä", "a\"b",
                                                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
        struct buf json = BUF_INIT(4096), rec = BUF_INIT(1 << 20);
        const char *j;
        size_t jn;
        uint8_t *p;

        CHECK_EQ(agent_config_json("node-7.rack2.example", &json), 0);
        CHECK_STREQ(json.data, "{\"hostname\":\"node-7.rack2.example\"}");
        for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
                struct buf b = BUF_INIT(4096);

                CHECK_EQ(agent_config_json(bad_names[i], &b), -EINVAL);
                buf_free(&b);
        }
        CHECK_EQ(agent_config_record_build(json.data, json.len, &rec), 0);
        CHECK_EQ(rec.len, AGENT_CONFIG_ALIGN);
        CHECK(memcmp(rec.data, "METALD-CFG/1\n\0\0\0", 16) == 0);
        p = (uint8_t *)rec.data;
        CHECK_EQ(p[16] | p[17] << 8 | p[18] << 16 | p[19] << 24, json.len);
        CHECK(all(p + 20, 4, 0));
        CHECK(all(p + 56, 8, 0));
        CHECK(memcmp(p + 64, json.data, json.len) == 0);
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len, &j, &jn), 0);
        CHECK_EQ(jn, json.len);
        CHECK(memcmp(j, json.data, jn) == 0);
        /* hostile: short, wrong magic, reserved set, length past the record, digest, padding */
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len - 1, &j, &jn), -EBADMSG);
        CHECK_EQ(agent_config_record_parse(rec.data, 20, &j, &jn), -EBADMSG);
        p[3] ^= 1;
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len, &j, &jn), -EBADMSG);
        p[3] ^= 1;
        p[21] = 1;
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len, &j, &jn), -EBADMSG);
        p[21] = 0;
        p[60] = 1;
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len, &j, &jn), -EBADMSG);
        p[60] = 0;
        p[18] = 0x10;
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len, &j, &jn), -EBADMSG);
        p[18] = 0;
        p[AGENT_CONFIG_HEADER_BYTES] ^= 1;
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len, &j, &jn), -EBADMSG);
        p[AGENT_CONFIG_HEADER_BYTES] ^= 1;
        p[rec.len - 1] = 1;
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len, &j, &jn), -EBADMSG);
        p[rec.len - 1] = 0;
        CHECK_EQ(agent_config_record_parse(rec.data, rec.len, &j, &jn), 0);
        /* a JSON just over one block takes two */
        buf_reset(&rec);
        {
                char big[AGENT_CONFIG_ALIGN];

                memset(big, ' ', sizeof(big));
                CHECK_EQ(agent_config_record_build(big, AGENT_CONFIG_ALIGN - AGENT_CONFIG_HEADER_BYTES + 1, &rec), 0);
                CHECK_EQ(rec.len, 2 * AGENT_CONFIG_ALIGN);
        }
        CHECK_EQ(agent_config_record_build("x", 0, &rec), -EINVAL);
        buf_free(&json);
        buf_free(&rec);
}

TEST(agent_keys_load_dir)
{
        struct manifest_key keys[4], k;
        EVP_PKEY *pk = keygen(&k);
        char dir[600], path[700];
        size_t n = 0;
        BIO *bio;
        FILE *f;

        snprintf(dir, sizeof(dir), "%s/keys", test_tmpdir());
        CHECK_EQ(mkdir(dir, 0700), 0);
        CHECK_EQ(agent_keys_load(dir, keys, 4, &n), -ENOKEY);
        snprintf(path, sizeof(path), "%s/site.pub", dir);
        bio = BIO_new_file(path, "w");
        CHECK(bio && PEM_write_bio_PUBKEY(bio, pk) == 1);
        BIO_free(bio);
        snprintf(path, sizeof(path), "%s/README", dir);
        f = fopen(path, "w");
        fputs("not a key\n", f);
        fclose(f);
        CHECK_EQ(agent_keys_load(dir, keys, 4, &n), 0);
        CHECK_EQ(n, 1);
        CHECK_STREQ(keys[0].id, k.id);
        CHECK(memcmp(keys[0].pub, k.pub, 32) == 0);
        CHECK_EQ(agent_keys_load(dir, keys, 0, &n), -E2BIG);
        snprintf(path, sizeof(path), "%s/broken.pub", dir);
        f = fopen(path, "w");
        fputs("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", f);
        fclose(f);
        CHECK(agent_keys_load(dir, keys, 4, &n) < 0);
        EVP_PKEY_free(pk);
}

TEST(agent_content_range)
{
        static const struct {
                const char *s;
                int r;
                uint64_t first, last, total;
        } cases[] = {
                { "bytes 0-99/100", 0, 0, 99, 100 },
                { " bytes 5-5/6\r\n", 0, 5, 5, 6 },
                { "BYTES 1-2/3", 0, 1, 2, 3 },
                { "bytes 0-99/99", -EBADMSG, 0, 0, 0 },
                { "bytes 5-4/10", -EBADMSG, 0, 0, 0 },
                { "bytes 0-99/*", -EBADMSG, 0, 0, 0 },
                { "bytes */100", -EBADMSG, 0, 0, 0 },
                { "bytes 0-99/100 x", -EBADMSG, 0, 0, 0 },
                { "bytes -1-99/100", -EBADMSG, 0, 0, 0 },
                { "bytes 0-99999999999999999999/1", -EBADMSG, 0, 0, 0 },
                { "bits 0-1/2", -EBADMSG, 0, 0, 0 },
                { "", -EBADMSG, 0, 0, 0 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint64_t a = 0, b = 0, c = 0;

                CHECK_EQ(agent_content_range_parse(cases[i].s, strlen(cases[i].s), &a, &b, &c), cases[i].r);
                if (cases[i].r == 0) {
                        CHECK_EQ(a, cases[i].first);
                        CHECK_EQ(b, cases[i].last);
                        CHECK_EQ(c, cases[i].total);
                }
        }
}

/* A server on loopback that answers each connection with the next canned reply, then closes it. */
struct canned {
        int fd;
        const char *const *replies;
        size_t n;
};

static void *serve(void *arg)
{
        struct canned *s = arg;

        for (size_t i = 0; i < s->n; i++) {
                char req[4096];
                size_t got = 0;
                int c = accept(s->fd, NULL, NULL);

                if (c < 0)
                        break;
                while (got < sizeof(req) - 1) {
                        ssize_t k = read(c, req + got, sizeof(req) - 1 - got);

                        if (k <= 0)
                                break;
                        got += (size_t)k;
                        req[got] = '\0';
                        if (strstr(req, "\r\n\r\n"))
                                break;
                }
                if (write(c, s->replies[i], strlen(s->replies[i])) < 0)
                        break;
                close(c);
        }
        return NULL;
}

TEST(agent_http_fetch_hostile_server)
{
        static const char *const replies[] = {
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\nContent-Length: 10\r\n\r\n0123456789",
                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" "0123456789012345678901234567890123456789"
                "0123456789012345678901234567890123456789" "01234567890123456789",
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\n\r\n0123456789",
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-29/100\r\nContent-Length: 20\r\n\r\n"
                "01234567890123456789",
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\nContent-Length: 20\r\n\r\n"
                "01234567890123456789",
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\nContent-Length: 10\r\n\r\n01234",
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                "HTTP/1.1 206 Partial Content\r\nContent-Range: garbage\r\nContent-Length: 10\r\n\r\n0123456789",
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
        };
        static const struct {
                uint64_t off;
                size_t len;
                int r;
        } asks[] = {
                { 10, 10, 0 },                  /* the range asked for */
                { 10, 10, -EBADMSG },           /* 200: the whole file, more than asked */
                { 10, 10, -EBADMSG },           /* 206 for another range */
                { 10, 10, -EBADMSG },           /* 206 for a larger range */
                { 10, 10, -EBADMSG },           /* the right range, more bytes than it holds */
                { 10, 10, -EAGAIN },            /* cut short */
                { 10, 10, -EAGAIN },            /* 503 */
                { 10, 10, -ENOENT },            /* 404 */
                { 10, 10, -EBADMSG },           /* malformed Content-Range */
                { 0, 10, 0 },                   /* 200 of a file that is exactly the one chunk */
        };
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        struct canned s = { .replies = replies, .n = ARRAY_SIZE(replies) };
        struct agent_http_fetcher *f = NULL;
        char url[128], why[256];
        pthread_t th;

        s.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(s.fd >= 0);
        CHECK_EQ(bind(s.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        CHECK_EQ(listen(s.fd, 16), 0);
        CHECK_EQ(getsockname(s.fd, (struct sockaddr *)&sa, &sl), 0);
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/disk", ntohs(sa.sin_port));
        CHECK_EQ(agent_http_fetcher_new("ftp://x/disk", &f), -EINVAL);
        CHECK_EQ(agent_http_fetcher_new(url, &f), 0);
        CHECK_EQ(pthread_create(&th, NULL, serve, &s), 0);
        for (size_t i = 0; i < ARRAY_SIZE(asks); i++) {
                uint8_t buf[10];
                size_t got = 0;
                int r = agent_http_fetch(f, asks[i].off, asks[i].len, buf, &got, why, sizeof(why));

                if (r != asks[i].r)
                        fprintf(stderr, "  reply %zu: %d (%s)\n", i, r, why);
                CHECK_EQ(r, asks[i].r);
                if (r == 0) {
                        CHECK_EQ(got, 10);
                        CHECK(memcmp(buf, "0123456789", 10) == 0);
                }
        }
        pthread_join(th, NULL);
        close(s.fd);
        agent_http_fetcher_free(f);
}
