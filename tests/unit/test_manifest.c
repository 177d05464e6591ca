/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "metald/manifest.h"
#include "test.h"

#define KEY_ID   "3f9a0c5e7d1b2a48"
#define CHUNK    65536
#define RAW_SIZE 1048576
#define GEN_CAP  65536

/* RFC 8032 section 7.1, test 1: public key, and the signature of the empty message. */
#define RFC_PUB "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define RFC_SIG "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
#define RFC_PEM "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n"
/* openssl pkey -pubin -in rfc.pem -outform DER | tail -c 32 | sha256sum | cut -c1-16 */
#define RFC_KEY_ID "21fe31dfa154a261"

/* What a generated manifest holds; the text is compact JSON so that cases can edit it by substitution. */
struct gen_spec {
        bool no_kernel, no_initrd, no_disk, no_rootfs, no_cmdline;
        bool disk_none;                 /* compression none instead of zstd */
        bool disk_empty;                /* no extents at all */
        const char *key_id;
};

static const uint64_t gen_extents[][2] = { { 0, 4096 }, { 65536, 131072 }, { 524288, 8192 } };

struct gen {
        char *p;
        size_t len;
        unsigned digest;
};

__attribute__((format(printf, 2, 3)))
static void put(struct gen *g, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(g->p + g->len, GEN_CAP - g->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= GEN_CAP - g->len)
                abort();
        g->len += (size_t)n;
}

/* Distinct digests with letters in them: 0xabcd0000 + a counter, 64 hex digits. */
static void put_digest(struct gen *g)
{
        put(g, "\"sha256\":\"%048x%016llx\"", 0, 0xabcd0000ULL + g->digest++);
}

static void gen_file(struct gen *g, const char *name, uint64_t size, const char *extra)
{
        put(g, "\"%s\":{\"size\":%llu,", name, (unsigned long long)size);
        put_digest(g);
        put(g, "%s,\"chunks\":[", extra);
        for (uint64_t off = 0; off < size; off += CHUNK) {
                put(g, "%s{\"size\":%llu,", off ? "," : "", (unsigned long long)(size - off < CHUNK ? size - off : CHUNK));
                put_digest(g);
                put(g, "}");
        }
        put(g, "]}");
}

/* zstd chunks are a quarter of their raw length. */
static void gen_disk(struct gen *g, const struct gen_spec *s)
{
        size_t n_ext = s->disk_empty ? 0 : sizeof(gen_extents) / sizeof(gen_extents[0]);
        uint64_t size = 0;

        for (size_t i = 0; i < n_ext; i++)
                size += s->disk_none ? gen_extents[i][1] : gen_extents[i][1] / 4;
        put(g, "\"disk\":{\"size\":%llu,", (unsigned long long)size);
        put_digest(g);
        put(g, ",\"compression\":\"%s\",\"raw_size\":%d,\"extents\":[", s->disk_none ? "none" : "zstd", RAW_SIZE);
        for (size_t i = 0; i < n_ext; i++)
                put(g, "%s[%llu,%llu]", i ? "," : "", (unsigned long long)gen_extents[i][0],
                    (unsigned long long)gen_extents[i][1]);
        put(g, "],\"chunks\":[");
        for (size_t i = 0, k = 0; i < n_ext; i++)
                for (uint64_t off = 0; off < gen_extents[i][1]; off += CHUNK, k++) {
                        uint64_t len = gen_extents[i][1] - off < CHUNK ? gen_extents[i][1] - off : CHUNK;

                        put(g, "%s{\"offset\":%llu,\"length\":%llu,\"size\":%llu,", k ? "," : "",
                            (unsigned long long)(gen_extents[i][0] + off), (unsigned long long)len,
                            (unsigned long long)(s->disk_none ? len : len / 4));
                        put_digest(g);
                        put(g, "}");
                }
        put(g, "]}");
}

/* A correct manifest.json for spec (unless the spec leaves out what the format requires); the caller frees it. */
static char *gen_manifest(const struct gen_spec *s)
{
        struct gen g = { .p = malloc(GEN_CAP) };
        bool first = true;

        if (!g.p)
                abort();
        put(&g, "{\"format\":\"metald-image/1\",\"name\":\"debian-worker\",\"version\":7,\"arch\":\"x86_64\","
                "\"created\":\"2026-12-01T10:00:00Z\",\"expires\":\"2027-06-01T00:00:00Z\",\"key_id\":\"%s\","
                "\"chunk_size\":%d,", s->key_id ? s->key_id : KEY_ID, CHUNK);
        if (!s->no_cmdline)
                put(&g, "\"cmdline\":\"console=ttyS0,115200 quiet\",");
        put(&g, "\"artifacts\":{");
        if (!s->no_kernel) {
                gen_file(&g, "kernel", 150000, "");
                first = false;
        }
        if (!s->no_initrd) {
                put(&g, "%s", first ? "" : ",");
                gen_file(&g, "initrd", 65536, "");
                first = false;
        }
        if (!s->no_disk) {
                put(&g, "%s", first ? "" : ",");
                gen_disk(&g, s);
                first = false;
        }
        if (!s->no_rootfs) {
                put(&g, "%s", first ? "" : ",");
                gen_file(&g, "rootfs", 200000, ",\"fs\":\"squashfs\"");
        }
        put(&g, "}}");
        return g.p;
}

/* text with the first from replaced by to, or NULL when from is not in it (a broken case must fail its test). */
static char *subst(const char *text, const char *from, const char *to)
{
        const char *at = strstr(text, from);
        size_t head, n;
        char *out;

        if (!at)
                return NULL;
        head = (size_t)(at - text);
        n = strlen(text) - strlen(from) + strlen(to);
        out = malloc(n + 1);
        if (!out)
                abort();
        memcpy(out, text, head);
        memcpy(out + head, to, strlen(to));
        memcpy(out + head + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
        return out;
}

static int parse_text(const char *text, struct manifest *m, char *why, size_t why_len)
{
        return manifest_parse(text, strlen(text), m, why, why_len);
}

TEST(manifest_valid_full)
{
        struct gen_spec spec = { 0 };
        char *text = gen_manifest(&spec), why[256] = "";
        const struct manifest_artifact *k, *d, *rf;
        struct manifest m;
        struct manifest_extent hole;

        CHECK_EQ(parse_text(text, &m, why, sizeof(why)), 0);
        free(text);
        CHECK_STREQ(m.name, "debian-worker");
        CHECK_EQ(m.version, 7);
        CHECK_STREQ(m.arch, "x86_64");
        CHECK_EQ(m.created, 1796119200);
        CHECK_EQ(m.expires, 1811808000);
        CHECK_STREQ(m.key_id, KEY_ID);
        CHECK_EQ(m.chunk_size, CHUNK);
        CHECK_STREQ(m.cmdline, "console=ttyS0,115200 quiet");
        k = &m.artifacts[MANIFEST_KERNEL];
        CHECK(k->present && k->size == 150000 && k->n_chunks == 3);
        CHECK_EQ(k->sha256[31], 0x00);          /* the first digest: ...abcd0000 */
        CHECK_EQ(k->sha256[30], 0x00);
        CHECK_EQ(k->sha256[29], 0xcd);
        CHECK_EQ(k->sha256[28], 0xab);
        CHECK_EQ(k->chunks[0].sha256[31], 0x01);
        CHECK_EQ(k->chunks[2].file_offset, 131072);
        CHECK_EQ(k->chunks[2].offset, 131072);
        CHECK_EQ(k->chunks[2].size, 150000 - 131072);
        CHECK_EQ(k->chunks[2].length, 150000 - 131072);
        CHECK(m.artifacts[MANIFEST_INITRD].present && m.artifacts[MANIFEST_INITRD].n_chunks == 1);
        d = &m.artifacts[MANIFEST_DISK];
        CHECK(d->present && d->compression == MANIFEST_COMPRESS_ZSTD && d->raw_size == RAW_SIZE);
        CHECK_EQ(d->n_extents, 3);
        CHECK_EQ(d->extents[1].offset, 65536);
        CHECK_EQ(d->extents[1].length, 131072);
        CHECK_EQ(d->n_chunks, 4);
        CHECK_EQ(d->chunks[2].offset, 131072);
        CHECK_EQ(d->chunks[2].length, 65536);
        CHECK_EQ(d->chunks[2].file_offset, 1024 + 16384);
        CHECK_EQ(d->chunks[3].offset, 524288);
        CHECK_EQ(d->chunks[3].file_offset, 1024 + 2 * 16384);
        CHECK_EQ(d->size, 1024 + 2 * 16384 + 2048);
        rf = &m.artifacts[MANIFEST_ROOTFS];
        CHECK(rf->present && rf->fs == MANIFEST_FS_SQUASHFS && rf->n_chunks == 4);
        /* the holes an installer zeroes */
        CHECK_EQ(manifest_disk_hole(d, 0, &hole), 0);
        CHECK_EQ(hole.length, 0);
        CHECK_EQ(manifest_disk_hole(d, 1, &hole), 0);
        CHECK(hole.offset == 4096 && hole.length == 65536 - 4096);
        CHECK_EQ(manifest_disk_hole(d, 3, &hole), 0);
        CHECK(hole.offset == 524288 + 8192 && hole.length == RAW_SIZE - 524288 - 8192);
        CHECK_EQ(manifest_disk_hole(d, 4, &hole), -ENOENT);
        CHECK_EQ(manifest_disk_hole(k, 0, &hole), -EINVAL);
        CHECK(!manifest_expired(&m, 1811807999));
        CHECK(manifest_expired(&m, 1811808000));
        CHECK_EQ(manifest_artifact_from_name("rootfs"), MANIFEST_ROOTFS);
        CHECK_EQ(manifest_artifact_from_name("disk.img"), -EINVAL);
        CHECK_STREQ(manifest_artifact_name(MANIFEST_INITRD), "initrd");
        manifest_free(&m);
        CHECK(m.artifacts[MANIFEST_DISK].chunks == NULL);
        manifest_free(&m);
        manifest_free(NULL);
}

struct variant_case {
        struct gen_spec spec;
        const char *from, *to;          /* an edit of the generated text, or none */
};

static const struct variant_case valid_cases[] = {
        { { .no_rootfs = true }, NULL, NULL },
        { { .no_disk = true, .no_cmdline = true }, NULL, NULL },
        { { .disk_none = true }, NULL, NULL },
        { { .disk_empty = true, .no_rootfs = true }, NULL, NULL },
        { { 0 }, "\"version\":7", "\"version\":9007199254740991" },
        { { 0 }, "\"version\":7", "\"version\":1" },
        { { 0 }, "\"arch\":\"x86_64\"", "\"arch\":\"arm64\"" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"0deb.ian_worker-1\"" },
        { { 0 }, "\"expires\":\"2027-06-01T00:00:00Z\"", "\"expires\":\"2028-02-29T23:59:59Z\"" },
        { { 0 }, "\"expires\":\"2027-06-01T00:00:00Z\"", "\"expires\":\"2026-12-01T10:00:01Z\"" },
        { { 0 }, "\"chunk_size\":65536", "\"chunk_size\" : 65536 " },
        { { 0 }, "\"cmdline\":\"console=ttyS0,115200 quiet\"", "\"cmdline\":\"root=\\\"LABEL=a b\\\" ~\"" },
        { { 0 }, "\"cmdline\":\"console=ttyS0,115200 quiet\"", "\"cmdline\":\"\"" },
        { { 0 }, "{\"format\"", " \r\n\t{\"format\"" },
        /* a disk chunk may be shorter than chunk_size inside its extent */
        { { .disk_none = true }, "{\"offset\":65536,\"length\":65536,\"size\":65536,",
          "{\"offset\":65536,\"length\":4096,\"size\":4096,\"sha256\":"
          "\"00000000000000000000000000000000000000000000000000000000000000ff\"},"
          "{\"offset\":69632,\"length\":61440,\"size\":61440," },
};

TEST(manifest_valid_variants)
{
        for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
                const struct variant_case *c = &valid_cases[i];
                char *text = gen_manifest(&c->spec), *edited = text, why[256] = "";
                struct manifest m;
                int r;

                if (c->from) {
                        edited = subst(text, c->from, c->to);
                        free(text);
                }
                if (!edited) {
                        fprintf(stderr, "  valid case %zu: \"%s\" not in the text\n", i, c->from);
                        CHECK(edited);
                }
                r = parse_text(edited, &m, why, sizeof(why));
                if (r != 0)
                        fprintf(stderr, "  valid case %zu: %s\n", i, why);
                free(edited);
                CHECK_EQ(r, 0);
                CHECK(m.artifacts[MANIFEST_KERNEL].present);
                manifest_free(&m);
        }
}

struct bad_case {
        struct gen_spec spec;
        const char *from, *to;
        const char *why;                /* a substring of the reason */
};

static const struct bad_case bad_cases[] = {
        /* format, name, version, arch */
        { { 0 }, "\"format\":\"metald-image/1\"", "\"format\":\"metald-image/2\"", "format:" },
        { { 0 }, "\"format\":\"metald-image/1\"", "\"format\":1", "format: must be a string" },
        { { 0 }, "\"format\":\"metald-image/1\",", "", "format: missing" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"Debian\"", "name:" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"-worker\"", "name:" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\".worker\"", "name:" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"\"", "name:" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"a/b\"", "name:" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"a b\"", "name:" },
        { { 0 }, "\"name\":\"debian-worker\"",
          "\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "name: longer than 63" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"deb\\u0000ian\"", "name: holds a NUL" },
        { { 0 }, "\"version\":7", "\"version\":0", "version:" },
        { { 0 }, "\"version\":7", "\"version\":9007199254740992", "version:" },
        { { 0 }, "\"version\":7", "\"version\":-1", "version:" },
        { { 0 }, "\"version\":7", "\"version\":7.0", "version: must be an integer" },
        { { 0 }, "\"version\":7", "\"version\":7e0", "version: must be an integer" },
        { { 0 }, "\"version\":7", "\"version\":\"7\"", "version: must be an integer" },
        { { 0 }, "\"version\":7", "\"version\":true", "version: must be an integer" },
        { { 0 }, "\"version\":7", "\"version\":null", "version: must be an integer" },
        { { 0 }, "\"version\":7", "\"version\":18446744073709551615", "version:" },
        { { 0 }, "\"version\":7", "\"version\":-9223372036854775809", "version:" },
        { { 0 }, "\"version\":7", "\"version\":123456789012345678901234567890", "version:" },
        { { 0 }, "\"arch\":\"x86_64\"", "\"arch\":\"i386\"", "arch:" },
        { { 0 }, "\"arch\":\"x86_64\"", "\"arch\":\"X86_64\"", "arch:" },
        { { 0 }, "\"arch\":\"x86_64\"", "\"arch\":\"x86_64 \"", "arch:" },
        /* times */
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-02-30T10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2027-02-29T10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2100-02-29T10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01T24:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01T10:60:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01T10:00:60Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-13-01T10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-00-01T10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-00T10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01T10:00:00\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01t10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01T10:00:00z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01 10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01T10:00:00+00:00\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-01T10:00:00.5Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"2026-12-1T10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"+026-12-01T10:00:00Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":\"1969-12-31T23:59:59Z\"", "created:" },
        { { 0 }, "\"created\":\"2026-12-01T10:00:00Z\"", "\"created\":1796119200", "created: must be a string" },
        { { 0 }, "\"expires\":\"2027-06-01T00:00:00Z\"", "\"expires\":\"2026-12-01T10:00:00Z\"", "expires: not after" },
        { { 0 }, "\"expires\":\"2027-06-01T00:00:00Z\"", "\"expires\":\"2025-12-01T10:00:00Z\"", "expires: not after" },
        { { 0 }, "\"expires\":\"2027-06-01T00:00:00Z\"", "\"expires\":\"2027-06-31T00:00:00Z\"", "expires:" },
        /* key id, chunk size, command line */
        { { 0 }, "\"key_id\":\"" KEY_ID "\"", "\"key_id\":\"3F9A0C5E7D1B2A48\"", "key_id:" },
        { { 0 }, "\"key_id\":\"" KEY_ID "\"", "\"key_id\":\"3f9a0c5e7d1b2a4\"", "key_id:" },
        { { 0 }, "\"key_id\":\"" KEY_ID "\"", "\"key_id\":\"3f9a0c5e7d1b2a48a\"", "key_id:" },
        { { 0 }, "\"key_id\":\"" KEY_ID "\"", "\"key_id\":\"3f9a0c5e7d1b2a4g\"", "key_id:" },
        { { 0 }, "\"chunk_size\":65536", "\"chunk_size\":3", "chunk_size:" },
        { { 0 }, "\"chunk_size\":65536", "\"chunk_size\":134217728", "chunk_size:" },
        { { 0 }, "\"chunk_size\":65536", "\"chunk_size\":32768", "chunk_size:" },
        { { 0 }, "\"chunk_size\":65536", "\"chunk_size\":196608", "chunk_size: 196608 is not a power of two" },
        { { 0 }, "\"chunk_size\":65536", "\"chunk_size\":65536.0", "chunk_size: must be an integer" },
        { { 0 }, "\"chunk_size\":65536", "\"chunk_size\":131072", "artifacts.kernel.chunks[0].size" },
        { { 0 }, "\"cmdline\":\"console=ttyS0,115200 quiet\"", "\"cmdline\":\"a\\tb\"", "cmdline:" },
        { { 0 }, "\"cmdline\":\"console=ttyS0,115200 quiet\"", "\"cmdline\":\"caf\\u00e9\"", "cmdline:" },
        { { 0 }, "\"cmdline\":\"console=ttyS0,115200 quiet\"", "\"cmdline\":[]", "cmdline: must be a string" },
        /* unknown fields, duplicates, escapes */
        { { 0 }, "\"chunk_size\":65536", "\"chunk_size\":65536,\"extra\":1", "unknown field \"extra\"" },
        { { 0 }, "\"kernel\":{\"size\"", "\"kernel\":{\"fs\":\"erofs\",\"size\"", "artifacts.kernel: unknown field \"fs\"" },
        { { 0 }, "\"disk\":{\"size\"", "\"disk\":{\"fs\":\"erofs\",\"size\"", "artifacts.disk: unknown field \"fs\"" },
        { { 0 }, "\"chunks\":[{\"size\":65536,", "\"chunks\":[{\"offset\":0,\"size\":65536,",
          "artifacts.kernel.chunks[0]: unknown field \"offset\"" },
        { { 0 }, "\"version\":7", "\"version\":7,\"version\":8", "duplicate field \"version\"" },
        { { 0 }, "\"kernel\":{\"size\":150000", "\"kernel\":{\"size\":150000,\"size\":150000",
          "kernel: duplicate field \"size\"" },
        { { 0 }, "\"chunks\":[{\"size\":65536,", "\"chunks\":[{\"size\":65536,\"size\":65536,",
          "chunks: duplicate field \"size\"" },
        { { 0 }, "\"artifacts\":{\"kernel\"", "\"artifacts\":{\"rootfs\":{},\"kernel\"", "duplicate field \"rootfs\"" },
        { { 0 }, "\"version\":7", "\"versio\\u006e\":7", "escapes" },
        /* numbers no reader agrees on */
        { { 0 }, "\"kernel\":{\"size\":150000", "\"kernel\":{\"size\":1e400", "artifacts.kernel.size" },
        { { 0 }, "\"kernel\":{\"size\":150000", "\"kernel\":{\"size\":123456789012345678901234567890",
          "artifacts.kernel.size" },
        { { 0 }, "\"kernel\":{\"size\":150000", "\"kernel\":{\"size\":4398046511105", "artifacts.kernel.size" },
        /* file chunks */
        { { 0 }, "\"kernel\":{\"size\":150000", "\"kernel\":{\"size\":150001", "artifacts.kernel.size: 150001" },
        { { 0 }, "\"chunks\":[{\"size\":65536,", "\"chunks\":[{\"size\":65535,", "artifacts.kernel.chunks[0].size" },
        { { 0 }, "\"chunks\":[{\"size\":65536,", "\"chunks\":[{\"size\":0,", "artifacts.kernel.chunks[0].size" },
        { { 0 }, "\"chunks\":[{\"size\":65536,", "\"chunks\":[7,{\"size\":65536,",
          "artifacts.kernel.chunks[0]: must be an object" },
        { { 0 }, "\"chunks\":[{\"size\":65536,\"sha256\":\"0", "\"chunks\":[{\"size\":65536,\"sha256\":\"A",
          "artifacts.kernel.chunks[0].sha256" },
        { { 0 }, "\"sha256\":\"0", "\"sha256\":\"A", "artifacts.kernel.sha256" },
        { { 0 }, "\"sha256\":\"0", "\"sha256\":\"", "artifacts.kernel.sha256" },
        { { 0 }, "\"sha256\":\"0", "\"sha256\":\"00", "artifacts.kernel.sha256" },
        { { .no_disk = true }, "\"fs\":\"squashfs\"", "\"fs\":\"ext4\"", "artifacts.rootfs.fs" },
        { { .no_disk = true }, "\"fs\":\"squashfs\",", "", "artifacts.rootfs.fs: missing" },
        /* disk: extents */
        { { 0 }, "\"compression\":\"zstd\"", "\"compression\":\"gzip\"", "artifacts.disk.compression" },
        { { 0 }, "\"compression\":\"zstd\",", "", "artifacts.disk.compression: missing" },
        { { 0 }, "\"raw_size\":1048576", "\"raw_size\":1048577", "artifacts.disk.raw_size" },
        { { 0 }, "\"raw_size\":1048576", "\"raw_size\":0", "artifacts.disk.raw_size" },
        { { 0 }, "\"raw_size\":1048576", "\"raw_size\":8796093022208", "artifacts.disk.raw_size" },
        { { 0 }, "[[0,4096],[65536,131072]", "[[0,69632],[65536,131072]", "artifacts.disk.extents[1]: overlaps" },
        { { 0 }, "[[0,4096],[65536,131072]", "[[0,65536],[65536,131072]", "artifacts.disk.extents[1]: overlaps" },
        { { 0 }, "[[0,4096],[65536,131072],", "[[65536,131072],[0,4096],", "artifacts.disk.extents[1]: overlaps" },
        { { 0 }, "[524288,8192]", "[524289,8192]", "artifacts.disk.extents[2]: [524289, 8192] is not aligned" },
        { { 0 }, "[524288,8192]", "[524288,8191]", "artifacts.disk.extents[2]: [524288, 8191] is not aligned" },
        { { 0 }, "[524288,8192]", "[524288,0]", "artifacts.disk.extents[2].length" },
        { { 0 }, "[524288,8192]", "[1044480,8192]", "artifacts.disk.extents[2]: ends past raw_size" },
        { { 0 }, "\"raw_size\":1048576", "\"raw_size\":528384", "artifacts.disk.extents[2]: ends past raw_size" },
        { { 0 }, "[524288,8192]", "[524288,8192,0]", "artifacts.disk.extents[2]: must be an [offset, length]" },
        { { 0 }, "[524288,8192]", "[524288]", "artifacts.disk.extents[2]: must be an [offset, length]" },
        { { 0 }, "[524288,8192]", "[524288,\"8192\"]", "artifacts.disk.extents[2].length: must be an integer" },
        { { 0 }, "[524288,8192]", "[-4096,8192]", "artifacts.disk.extents[2].offset" },
        { { 0 }, "[524288,8192]", "[18446744073709547520,8192]", "artifacts.disk.extents[2].offset" },
        /* disk: chunks over the extents */
        { { 0 }, "{\"offset\":524288,\"length\":8192", "{\"offset\":524288,\"length\":4096",
          "artifacts.disk.chunks: cover the extents only up to raw byte 528384" },
        { { 0 }, "{\"offset\":524288,", "{\"offset\":528384,", "artifacts.disk.chunks[3].offset" },
        { { 0 }, "{\"offset\":65536,\"length\":65536", "{\"offset\":65536,\"length\":131072",
          "artifacts.disk.chunks[1].length" },
        { { 0 }, "{\"offset\":0,\"length\":4096", "{\"offset\":0,\"length\":8192", "artifacts.disk.chunks[0].length" },
        { { 0 }, "{\"offset\":0,\"length\":4096", "{\"offset\":0,\"length\":0", "artifacts.disk.chunks[0].length" },
        { { 0 }, "\"chunks\":[{\"offset\":0,", "\"chunks\":[{\"offset\":0,\"length\":4096,\"size\":1,\"sha256\":\""
          "0000000000000000000000000000000000000000000000000000000000000000\"},{\"offset\":0,",
          "artifacts.disk.chunks[1]" },
        { { .disk_empty = true }, "\"chunks\":[]}", "\"chunks\":[{\"offset\":0,\"length\":4096,\"size\":1,"
          "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
          "artifacts.disk.chunks[0]: past the end" },
        { { 0 }, "\"compression\":\"zstd\"", "\"compression\":\"none\"", "artifacts.disk.chunks[0].size" },
        { { 0 }, "\"length\":4096,\"size\":1024", "\"length\":4096,\"size\":8225", "artifacts.disk.chunks[0].size" },
        { { 0 }, "\"length\":4096,\"size\":1024", "\"length\":4096,\"size\":0", "artifacts.disk.chunks[0].size" },
        { { 0 }, "\"disk\":{\"size\":35840", "\"disk\":{\"size\":35841", "artifacts.disk.size: 35841" },
        { { 0 }, "\"extents\":[[0,4096],[65536,131072],[524288,8192]],", "", "artifacts.disk.extents: missing" },
        /* artifacts */
        { { .no_kernel = true }, NULL, NULL, "artifacts.kernel: missing" },
        { { .no_initrd = true }, NULL, NULL, "artifacts.initrd: missing" },
        { { .no_disk = true, .no_rootfs = true }, NULL, NULL, "artifacts: neither disk nor rootfs" },
        { { 0 }, "\"artifacts\":{\"kernel\"", "\"artifacts\":{\"firmware\":{},\"kernel\"",
          "artifacts: unknown artifact \"firmware\"" },
        { { 0 }, "\"artifacts\":{\"kernel\"", "\"artifacts\":{\"Kernel\":{},\"kernel\"",
          "artifacts: unknown artifact \"Kernel\"" },
        { { .no_rootfs = true }, "\"artifacts\":{\"kernel\"", "\"artifacts\":{\"rootfs\":null,\"kernel\"",
          "artifacts.rootfs: must be an object" },
        /* the document */
        { { 0 }, "\"version\":7", "\"version\":07", "malformed JSON" },
        { { 0 }, "\"version\":7", "'version':7", "malformed JSON" },
        { { 0 }, "\"version\":7,", "\"version\":7,,", "malformed JSON" },
        { { 0 }, "\"version\":7", "/* c */\"version\":7", "malformed JSON" },
        { { 0 }, "\"version\":7", "\"version\":NaN", "malformed JSON" },
        { { 0 }, "\"version\":7", "\"version\":[[[[[[[[[[7]]]]]]]]]]", NULL },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"debian\xff\"", "malformed JSON" },
        { { 0 }, "\"name\":\"debian-worker\"", "\"name\":\"deb\tian\"", "malformed JSON" },
};

TEST(manifest_refusals)
{
        for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
                const struct bad_case *c = &bad_cases[i];
                char *text = gen_manifest(&c->spec), *edited = text, why[256] = "";
                struct manifest m = { .version = 12345 };
                int r;

                if (c->from) {
                        edited = subst(text, c->from, c->to);
                        free(text);
                }
                if (!edited) {
                        fprintf(stderr, "  case %zu: \"%s\" not in the text\n", i, c->from);
                        CHECK(edited);
                }
                r = parse_text(edited, &m, why, sizeof(why));
                free(edited);
                if (r == 0 || (c->why && !strstr(why, c->why)))
                        fprintf(stderr, "  case %zu (%s): r=%d why=\"%s\", expected \"%s\"\n", i, c->to ? c->to : "",
                                r, why, c->why ? c->why : "");
                CHECK_EQ(r, -EINVAL);
                CHECK(!c->why || strstr(why, c->why));
                CHECK_EQ(m.version, 12345);    /* untouched */
        }
}

TEST(manifest_document_edges)
{
        struct gen_spec spec = { 0 };
        char *text = gen_manifest(&spec), why[256];
        size_t len = strlen(text);
        char *buf = malloc(IMAGE_MAX_MANIFEST_BYTES + 2);
        struct manifest m;

        CHECK(buf);
        /* what follows the object */
        memcpy(buf, text, len);
        memcpy(buf + len, " \n", 2);
        CHECK_EQ(manifest_parse(buf, len + 2, &m, why, sizeof(why)), 0);
        manifest_free(&m);
        memcpy(buf + len, "x", 1);
        CHECK_EQ(manifest_parse(buf, len + 1, &m, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "data after the manifest object"));
        memcpy(buf + len, "{}", 2);
        CHECK_EQ(manifest_parse(buf, len + 2, &m, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "data after the manifest object"));
        /* cut short anywhere */
        CHECK_EQ(manifest_parse(text, len - 1, &m, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "malformed JSON"));
        CHECK_EQ(manifest_parse(text, len / 2, &m, why, sizeof(why)), -EINVAL);
        CHECK_EQ(manifest_parse(text, 0, &m, why, sizeof(why)), -EINVAL);
        CHECK_EQ(manifest_parse(NULL, 0, &m, NULL, 0), -EINVAL);
        /* a NUL byte in a string, and after the object */
        memcpy(buf, text, len);
        buf[strstr(text, "debian-worker") - text + 3] = '\0';
        CHECK_EQ(manifest_parse(buf, len, &m, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "NUL"));
        memcpy(buf, text, len);
        buf[len] = '\0';
        CHECK_EQ(manifest_parse(buf, len + 1, &m, why, sizeof(why)), -EINVAL);
        /* deep nesting, in an unknown field */
        {
                size_t n = 0, depth = 5000;

                n += (size_t)snprintf(buf, 64, "{\"x\":");
                memset(buf + n, '[', depth);
                n += depth;
                memset(buf + n, ']', depth);
                n += depth;
                buf[n++] = '}';
                CHECK_EQ(manifest_parse(buf, n, &m, why, sizeof(why)), -EINVAL);
        }
        /* too large, refused unread */
        memset(buf, ' ', IMAGE_MAX_MANIFEST_BYTES + 1);
        memcpy(buf, text, len);
        CHECK_EQ(manifest_parse(buf, IMAGE_MAX_MANIFEST_BYTES, &m, why, sizeof(why)), 0);
        manifest_free(&m);
        CHECK_EQ(manifest_parse(buf, IMAGE_MAX_MANIFEST_BYTES + 1, &m, why, sizeof(why)), -EFBIG);
        /* more fields than any object of the format has */
        {
                size_t n = (size_t)snprintf(buf, 64, "{");

                for (int i = 0; i <= IMAGE_MAX_JSON_FIELDS; i++)
                        n += (size_t)snprintf(buf + n, 64, "%s\"f%d\":1", i ? "," : "", i);
                buf[n++] = '}';
                CHECK_EQ(manifest_parse(buf, n, &m, why, sizeof(why)), -EINVAL);
                CHECK(strstr(why, "more than 16 fields"));
        }
        /* an array around the object */
        buf[0] = '[';
        memcpy(buf + 1, text, len);
        buf[len + 1] = ']';
        CHECK_EQ(manifest_parse(buf, len + 2, &m, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "not a JSON object"));
        free(buf);
        free(text);
}

TEST(manifest_peek)
{
        struct gen_spec spec = { 0 };
        char *text = gen_manifest(&spec), *edited, id[MANIFEST_KEY_ID_HEX + 1] = "";
        static const struct {
                const char *text;
                int r;
        } cases[] = {
                { "{\"x\":{\"key_id\":\"aaaaaaaaaaaaaaaa\"},\"key_id\":\"" KEY_ID "\"}", 0 },
                { "{\"x\":[{\"key_id\":\"aaaaaaaaaaaaaaaa\"}],\"key_id\" : \"" KEY_ID "\"}", 0 },
                { "{\"x\":\"}key_id\\\"{\",\"key_id\":\"" KEY_ID "\"}", 0 },
                { " {\"key_id\":\"" KEY_ID "\"}  ", 0 },
                /* damage elsewhere is the signature's to report */
                { "{\"a\"- 1 \"key_id\":\"" KEY_ID "\",,\"a\":1,\"a\":2", 0 },
                { "{\"key_id\":\"" KEY_ID "\"} x", 0 },
                { "{\"key_id\":\"" KEY_ID "\"}{\"key_id\":\"aaaaaaaaaaaaaaaa\"}", 0 },
                { "{\"x\":{\"key_id\":\"aaaaaaaaaaaaaaaa\"}}", -EINVAL },
                { "{\"x\":\"key_id\",\"y\":\"" KEY_ID "\"}", -EINVAL },
                { "{\"key_id\":\"" KEY_ID "\",\"key_id\":\"" KEY_ID "\"}", -EINVAL },
                { "{\"key_id\":\"" KEY_ID "\",\"key_id\":7}", -EINVAL },
                { "{\"key_id\":\"3F9A0C5E7D1B2A48\"}", -EINVAL },
                { "{\"key_id\":\"3f9a0c5e7d1b2a4\"}", -EINVAL },
                { "{\"key_id\":\"3f9a0c5e7d1b2a4\\\"\"}", -EINVAL },
                { "{\"key_id\":[\"" KEY_ID "\"]}", -EINVAL },
                { "[{\"key_id\":\"" KEY_ID "\"}]", -EINVAL },
                { "{\"key_id\":\"" KEY_ID, -EINVAL },
                { "{\"key_id\":\"" KEY_ID "\\", -EINVAL },
                { "{\"key_\\id\":\"" KEY_ID "\"}", -EINVAL },
                { "", -EINVAL },
        };

        CHECK_EQ(manifest_peek_key_id(text, strlen(text), id), 0);
        CHECK_STREQ(id, KEY_ID);
        edited = subst(text, "\"key_id\":\"" KEY_ID "\"", "\"key_id\":\"0123456789abcdef\"");
        CHECK(edited);
        CHECK_EQ(manifest_peek_key_id(edited, strlen(edited), id), 0);
        CHECK_STREQ(id, "0123456789abcdef");
        free(edited);
        free(text);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int r = manifest_peek_key_id(cases[i].text, strlen(cases[i].text), id);

                if (r != cases[i].r)
                        fprintf(stderr, "  peek case %zu: %d\n", i, r);
                CHECK_EQ(r, cases[i].r);
        }
        CHECK_EQ(manifest_peek_key_id("{}", IMAGE_MAX_MANIFEST_BYTES + 1, id), -EFBIG);
}

static uint8_t nibble(char c)
{
        return (uint8_t)(c <= '9' ? c - '0' : c - 'a' + 10);
}

static void unhex(const char *s, uint8_t *out)
{
        for (size_t i = 0; s[2 * i]; i++)
                out[i] = (uint8_t)(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
}

static EVP_PKEY *gen_ed25519(struct manifest_key *ret)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        EVP_PKEY *pkey = NULL;
        size_t n = MANIFEST_KEY_BYTES;

        if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1 ||
            EVP_PKEY_get_raw_public_key(pkey, ret->pub, &n) != 1 || n != MANIFEST_KEY_BYTES)
                abort();
        EVP_PKEY_CTX_free(ctx);
        manifest_key_id(ret->pub, ret->id);
        return pkey;
}

static void sign(EVP_PKEY *pkey, const void *data, size_t len, uint8_t sig[MANIFEST_SIG_BYTES])
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t n = MANIFEST_SIG_BYTES;

        if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
            EVP_DigestSign(ctx, sig, &n, data, len) != 1 || n != MANIFEST_SIG_BYTES)
                abort();
        EVP_MD_CTX_free(ctx);
}

/* The docs' recipe: the last 32 bytes of the DER SubjectPublicKeyInfo, SHA-256, the first 16 hex digits. */
static void recipe_key_id(EVP_PKEY *pkey, char out[MANIFEST_KEY_ID_HEX + 1])
{
        unsigned char *der = NULL;
        uint8_t md[32];
        unsigned mdlen = 0;
        char hex[65];
        int n = i2d_PUBKEY(pkey, &der);

        if (n < 32 || EVP_Digest(der + n - 32, 32, md, &mdlen, EVP_sha256(), NULL) != 1)
                abort();
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        memcpy(out, hex, MANIFEST_KEY_ID_HEX);
        out[MANIFEST_KEY_ID_HEX] = '\0';
        OPENSSL_free(der);
}

static char *pem_of(EVP_PKEY *pkey, bool private_key, size_t *ret_len)
{
        BIO *bio = BIO_new(BIO_s_mem());
        char *p, *out;
        long n;

        if (!bio || (private_key ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
                                 : PEM_write_bio_PUBKEY(bio, pkey)) != 1)
                abort();
        n = BIO_get_mem_data(bio, &p);
        out = malloc((size_t)n + 1);
        if (!out)
                abort();
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
        *ret_len = (size_t)n;
        BIO_free(bio);
        return out;
}

TEST(manifest_rfc8032_vector)
{
        struct manifest_key k, from_pem;
        uint8_t sig[MANIFEST_SIG_BYTES];

        unhex(RFC_PUB, k.pub);
        unhex(RFC_SIG, sig);
        manifest_key_id(k.pub, k.id);
        CHECK_STREQ(k.id, RFC_KEY_ID);
        CHECK_EQ(manifest_signature_check(&k, "", 0, sig), 0);
        CHECK_EQ(manifest_signature_check(&k, "x", 1, sig), -EBADMSG);
        CHECK_EQ(manifest_key_from_pem(RFC_PEM, strlen(RFC_PEM), &from_pem), 0);
        CHECK(memcmp(from_pem.pub, k.pub, MANIFEST_KEY_BYTES) == 0);
        CHECK_STREQ(from_pem.id, RFC_KEY_ID);
}

TEST(manifest_signatures)
{
        struct manifest_key keys[2], k;
        EVP_PKEY *other = gen_ed25519(&keys[0]), *pkey = gen_ed25519(&keys[1]);
        struct gen_spec spec = { .key_id = keys[1].id };
        char *text = gen_manifest(&spec), recipe[MANIFEST_KEY_ID_HEX + 1], *flip;
        size_t len = strlen(text), which = 99;
        uint8_t sig[MANIFEST_SIG_BYTES], bad[MANIFEST_SIG_BYTES];
        struct manifest m;
        char why[256];

        recipe_key_id(pkey, recipe);
        CHECK_STREQ(keys[1].id, recipe);
        CHECK(strcmp(keys[0].id, keys[1].id) != 0);
        sign(pkey, text, len, sig);
        CHECK_EQ(manifest_signature_check(&keys[1], text, len, sig), 0);
        CHECK_EQ(manifest_verify(keys, 2, text, len, sig, sizeof(sig), &which), 0);
        CHECK_EQ(which, 1);
        CHECK_EQ(manifest_parse(text, len, &m, why, sizeof(why)), 0);
        CHECK_STREQ(m.key_id, keys[1].id);
        manifest_free(&m);
        /* a flipped byte of the signature, of the data; another key */
        memcpy(bad, sig, sizeof(bad));
        bad[17] ^= 0x01;
        CHECK_EQ(manifest_signature_check(&keys[1], text, len, bad), -EBADMSG);
        CHECK_EQ(manifest_verify(keys, 2, text, len, bad, sizeof(bad), &which), -EBADMSG);
        bad[17] ^= 0x01;
        bad[63] ^= 0x80;
        CHECK_EQ(manifest_signature_check(&keys[1], text, len, bad), -EBADMSG);
        flip = strstr(text, "debian-worker");
        CHECK(flip);
        *flip ^= 0x01;
        CHECK_EQ(manifest_signature_check(&keys[1], text, len, sig), -EBADMSG);
        CHECK_EQ(manifest_verify(keys, 2, text, len, sig, sizeof(sig), &which), -EBADMSG);
        *flip ^= 0x01;
        CHECK_EQ(manifest_signature_check(&keys[1], text, len - 1, sig), -EBADMSG);
        CHECK_EQ(manifest_signature_check(&keys[0], text, len, sig), -EBADMSG);
        CHECK_EQ(manifest_verify(keys, 1, text, len, sig, sizeof(sig), &which), -ENOKEY);
        CHECK_EQ(manifest_verify(keys, 2, text, len, sig, sizeof(sig) - 1, &which), -EINVAL);
        /* a key that claims the id of the signer but is another one */
        k = keys[0];
        memcpy(k.id, keys[1].id, sizeof(k.id));
        CHECK_EQ(manifest_verify(&k, 1, text, len, sig, sizeof(sig), &which), -EBADMSG);
        CHECK_EQ(which, 1);
        EVP_PKEY_free(other);
        EVP_PKEY_free(pkey);
        free(text);
}

TEST(manifest_keys_pem)
{
        struct manifest_key want, k = { .id = "untouched" };
        EVP_PKEY *pkey = gen_ed25519(&want), *rsa;
        char path[512], *pem, *priv;
        size_t len, priv_len;
        FILE *f;

        pem = pem_of(pkey, false, &len);
        CHECK_EQ(manifest_key_from_pem(pem, len, &k), 0);
        CHECK(memcmp(k.pub, want.pub, MANIFEST_KEY_BYTES) == 0);
        CHECK_STREQ(k.id, want.id);
        snprintf(path, sizeof(path), "%s/site.pub", test_tmpdir());
        f = fopen(path, "w");
        CHECK(f);
        fwrite(pem, 1, len, f);
        fclose(f);
        memset(&k, 0, sizeof(k));
        CHECK_EQ(manifest_key_load(path, &k), 0);
        CHECK_STREQ(k.id, want.id);
        snprintf(path, sizeof(path), "%s/missing.pub", test_tmpdir());
        CHECK_EQ(manifest_key_load(path, &k), -ENOENT);
        /* a private key is not a public key file */
        priv = pem_of(pkey, true, &priv_len);
        CHECK_EQ(manifest_key_from_pem(priv, priv_len, &k), -EINVAL);
        free(priv);
        /* RSA, garbage, a cut PEM */
        rsa = EVP_RSA_gen(1024);
        CHECK(rsa);
        free(pem);
        pem = pem_of(rsa, false, &len);
        memset(&k, 0, sizeof(k));
        memcpy(k.id, "untouched", sizeof("untouched"));
        CHECK_EQ(manifest_key_from_pem(pem, len, &k), -EINVAL);
        CHECK_STREQ(k.id, "untouched");
        CHECK_EQ(manifest_key_from_pem("garbage", 7, &k), -EINVAL);
        CHECK_EQ(manifest_key_from_pem("", 0, &k), -EINVAL);
        CHECK_EQ(manifest_key_from_pem(RFC_PEM, 40, &k), -EINVAL);
        free(pem);
        pem = pem_of(pkey, false, &len);
        CHECK_EQ(manifest_key_from_pem(pem, IMAGE_MAX_KEY_FILE_BYTES + 1, &k), -EFBIG);
        free(pem);
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(pkey);
}

TEST(manifest_chunks_and_digests)
{
        static const uint8_t empty_sha[] = { 0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14 };
        uint8_t data[5000], md[MANIFEST_SHA256_BYTES], whole[MANIFEST_SHA256_BYTES];
        struct manifest_chunk c = { .size = sizeof(data) };
        struct manifest_sha256_state *st;
        char hex[2 * MANIFEST_SHA256_BYTES + 1];

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 7);
        CHECK_EQ(manifest_sha256(data, sizeof(data), c.sha256), 0);
        CHECK_EQ(manifest_chunk_check(&c, data, sizeof(data)), 0);
        CHECK_EQ(manifest_chunk_check(&c, data, sizeof(data) - 1), -EBADMSG);
        data[4999] ^= 1;
        CHECK_EQ(manifest_chunk_check(&c, data, sizeof(data)), -EBADMSG);
        data[4999] ^= 1;
        /* streamed in pieces: the same digest */
        CHECK_EQ(manifest_sha256_begin(&st), 0);
        CHECK_EQ(manifest_sha256_add(st, data, 1000), 0);
        CHECK_EQ(manifest_sha256_add(st, data + 1000, 0), 0);
        CHECK_EQ(manifest_sha256_add(st, data + 1000, 4000), 0);
        CHECK_EQ(manifest_sha256_end(st, whole), 0);
        CHECK(memcmp(whole, c.sha256, sizeof(whole)) == 0);
        CHECK_EQ(manifest_sha256_begin(&st), 0);
        manifest_sha256_free(st);
        manifest_sha256_free(NULL);
        CHECK_EQ(manifest_sha256(NULL, 0, md), 0);
        CHECK(memcmp(md, empty_sha, sizeof(empty_sha)) == 0);
        manifest_hex(md, 4, hex);
        CHECK_STREQ(hex, "e3b0c442");
}

/* The generated disk with raw_size 3 MiB and a config range spliced in after its extents. */
static char *gen_with_config(const char *config)
{
        char *text = gen_manifest(&(struct gen_spec){ 0 }), *a, *b, with[160];

        snprintf(with, sizeof(with), "[524288,8192]],\"config\":%s,\"chunks\"", config);
        a = subst(text, "\"raw_size\":1048576", "\"raw_size\":3145728");
        b = a ? subst(a, "[524288,8192]],\"chunks\"", with) : NULL;
        free(text);
        free(a);
        return b;
}

TEST(manifest_disk_config)
{
        char *text = gen_with_config("{\"offset\":1048576,\"length\":2097152}"), why[256] = "";
        struct manifest m;

        CHECK(text);
        CHECK_EQ(parse_text(text, &m, why, sizeof(why)), 0);
        free(text);
        CHECK(m.artifacts[MANIFEST_DISK].has_config);
        CHECK_EQ(m.artifacts[MANIFEST_DISK].config_offset, 1048576);
        CHECK_EQ(m.artifacts[MANIFEST_DISK].config_length, 2097152);
        manifest_free(&m);
        /* optional: the generated manifest has none */
        text = gen_manifest(&(struct gen_spec){ 0 });
        CHECK_EQ(parse_text(text, &m, why, sizeof(why)), 0);
        free(text);
        CHECK(!m.artifacts[MANIFEST_DISK].has_config);
        CHECK_EQ(m.artifacts[MANIFEST_DISK].config_offset, 0);
        manifest_free(&m);
}

TEST(manifest_disk_config_refusals)
{
        static const struct {
                const char *config, *why;
        } cases[] = {
                { "{\"offset\":524288,\"length\":1048576}", "artifacts.disk.config.offset: must be from 1048576" },
                { "{\"offset\":0,\"length\":1048576}", "artifacts.disk.config.offset" },
                { "{\"offset\":1048576,\"length\":65536}", "artifacts.disk.config.length: must be from 1048576" },
                { "{\"offset\":1052672,\"length\":1048576}", NULL },    /* valid: aligned, inside */
                { "{\"offset\":1048577,\"length\":1048576}", "artifacts.disk.config: [1048577, 1048576] is not aligned" },
                { "{\"offset\":1048576,\"length\":1048577}", "artifacts.disk.config: [1048576, 1048577] is not aligned" },
                { "{\"offset\":2097152,\"length\":2097152}", "artifacts.disk.config: ends past raw_size (3145728)" },
                { "{\"offset\":4398046511104,\"length\":4398046511104}", "artifacts.disk.config: ends past raw_size" },
                { "{\"offset\":1048576}", "artifacts.disk.config.length: missing" },
                { "{\"length\":1048576}", "artifacts.disk.config.offset: missing" },
                { "{\"offset\":1048576,\"length\":1048576,\"type\":1}", "artifacts.disk.config: unknown field \"type\"" },
                { "{\"offset\":-1048576,\"length\":1048576}", "artifacts.disk.config.offset" },
                { "{\"offset\":\"1048576\",\"length\":1048576}", "artifacts.disk.config.offset: must be an integer" },
                { "{\"offset\":1048576,\"length\":1048576,\"offset\":1048576}", "duplicate field \"offset\"" },
                { "[1048576,1048576]", "artifacts.disk.config: must be an object" },
                { "null", "artifacts.disk.config: must be an object" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *text = gen_with_config(cases[i].config), why[256] = "";
                struct manifest m;
                int r;

                CHECK(text);
                r = parse_text(text, &m, why, sizeof(why));
                free(text);
                if (r == 0)
                        manifest_free(&m);
                if ((r == 0) != !cases[i].why || (cases[i].why && !strstr(why, cases[i].why)))
                        fprintf(stderr, "  case %zu (%s): r=%d why=\"%s\"\n", i, cases[i].config, r, why);
                CHECK_EQ(r == 0, !cases[i].why);
                CHECK(!cases[i].why || strstr(why, cases[i].why));
        }
        /* an extent inside the range: the image must ship it as zeros */
        {
                char *text = gen_manifest(&(struct gen_spec){ 0 }), *a, *b, why[256] = "";
                struct manifest m;

                a = subst(text, "\"raw_size\":1048576", "\"raw_size\":3145728");
                b = a ? subst(a, "[524288,8192]],\"chunks\"",
                              "[524288,8192]],\"config\":{\"offset\":1048576,\"length\":1048576},\"chunks\"") : NULL;
                free(text);
                free(a);
                CHECK(b);
                /* move the last extent (and its chunk) to 1 MiB + 4 KiB */
                a = subst(b, "[524288,8192]]", "[1052672,8192]]");
                free(b);
                CHECK(a);
                b = subst(a, "{\"offset\":524288,", "{\"offset\":1052672,");
                free(a);
                CHECK(b);
                CHECK(parse_text(b, &m, why, sizeof(why)) < 0);
                free(b);
                CHECK(strstr(why, "artifacts.disk.config: overlaps extents[2]") != NULL);
        }
}
