/* SPDX-License-Identifier: Apache-2.0 */
/* Signed images: build, sign, verify, import; every tampering and hostile archive refused without a trace. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <zstd.h>

#include "metald/image.h"
#include "test.h"

#define MIB (1024 * 1024)
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

struct fixture {
        char dir[400], src[600], img[600], state[600], key[600], pub[600], other_pub[600];
        struct image_signer *signer;
        struct image_keyring kr;
        int64_t now;
};

static void write_at(const char *path, off_t off, const void *p, size_t n)
{
        int fd = open(path, O_WRONLY | O_CREAT, 0644);

        if (fd >= 0) {
                if (pwrite(fd, p, n, off) != (ssize_t)n)
                        abort();
                close(fd);
        }
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9) + 1);
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
        snprintf(out, cap, "%s/%s", dir, name);
}

/*
 * A 64 MiB sparse disk: 8 KiB at 1 MiB; at 10 MiB 4 KiB data, 8 KiB of zeros
 * written out, 4 KiB data; 12 KiB at the last 12 KiB. A kernel over several chunks.
 */
static int make_source(const char *src, bool rootfs, bool disk)
{
        static uint8_t block[3 * 4096];
        char p[700];
        int fd;

        if (mkdir(src, 0755) < 0)
                return -errno;
        fill(block, sizeof(block), 1);
        path_in(p, sizeof(p), src, "kernel");
        for (int i = 0; i < 20; i++)
                write_at(p, (off_t)i * (off_t)sizeof(block), block, sizeof(block));
        path_in(p, sizeof(p), src, "initrd");
        write_at(p, 0, "initrd bytes\n", 13);
        if (disk) {
                static const uint8_t zero[8192];

                path_in(p, sizeof(p), src, "disk");
                fd = open(p, O_WRONLY | O_CREAT, 0644);
                if (fd < 0 || ftruncate(fd, 64 * MIB) < 0)
                        return -errno;
                close(fd);
                write_at(p, 1 * MIB, block, 8192);
                write_at(p, 10 * MIB, block, 4096);
                write_at(p, 10 * MIB + 4096, zero, sizeof(zero));
                write_at(p, 10 * MIB + 12288, block, 4096);
                write_at(p, 64 * MIB - 12288, block, 12288);
        }
        if (rootfs) {
                memcpy(block, "hsqs", 4);
                path_in(p, sizeof(p), src, "rootfs");
                write_at(p, 0, block, 70000 < sizeof(block) ? 70000 : sizeof(block));
        }
        return 0;
}

static int fixture_setup(struct fixture *f)
{
        char id[MANIFEST_KEY_ID_HEX + 1], prefix[500], why[256];

        memset(f, 0, sizeof(*f));
        snprintf(f->dir, sizeof(f->dir), "%s", test_tmpdir());
        path_in(f->state, sizeof(f->state), f->dir, "state");
        path_in(prefix, sizeof(prefix), f->dir, "site");
        if (image_keygen(prefix, id, why, sizeof(why)) < 0)
                return -1;
        snprintf(f->key, sizeof(f->key), "%s.key", prefix);
        snprintf(f->pub, sizeof(f->pub), "%s.pub", prefix);
        path_in(prefix, sizeof(prefix), f->dir, "other");
        if (image_keygen(prefix, id, why, sizeof(why)) < 0)
                return -1;
        snprintf(f->other_pub, sizeof(f->other_pub), "%s.pub", prefix);
        if (image_signer_load(f->key, &f->signer, why, sizeof(why)) < 0 ||
            image_keyring_add(&f->kr, f->pub, false, why, sizeof(why)) < 0)
                return -1;
        f->now = time(NULL);
        return 0;
}

/* Builds image NAME-VERSION (a fresh source each time) into f->img. */
static int build(struct fixture *f, const char *tag, uint64_t version, enum manifest_compression comp, bool rootfs,
                 int64_t expires_in)
{
        struct image_build_spec spec = {
                .name = "debian-worker", .version = version, .arch = "x86_64", .chunk_size = 64 * 1024,
                .compression = comp, .created = f->now - 60, .expires = f->now + expires_in,
                .cmdline = "console=ttyS0 quiet",
        };
        char why[512];
        int r;

        snprintf(f->src, sizeof(f->src), "%s/src-%s", f->dir, tag);
        snprintf(f->img, sizeof(f->img), "%s/img-%s", f->dir, tag);
        if ((r = make_source(f->src, rootfs, true)) < 0)
                return r;
        spec.src = f->src;
        spec.out = f->img;
        r = image_build(&spec, f->signer, why, sizeof(why));
        if (r < 0)
                fprintf(stderr, "  build: %s\n", why);
        return r;
}

/* The catalog holds nothing but what is listed: no import directory, no partial image. */
static int catalog_entries(const char *state)
{
        char p[700];
        struct dirent *e;
        DIR *d;
        int n = 0;

        path_in(p, sizeof(p), state, "images");
        if (!(d = opendir(p)))
                return 0;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".lock"))
                        n++;
        closedir(d);
        return n;
}

static void flip(const char *dir, const char *name, off_t off)
{
        char p[700];
        uint8_t b;
        int fd;

        path_in(p, sizeof(p), dir, name);
        fd = open(p, O_RDWR);
        if (fd < 0 || pread(fd, &b, 1, off) != 1)
                abort();
        b ^= 0x01;
        if (pwrite(fd, &b, 1, off) != 1)
                abort();
        close(fd);
}

/* Where text first occurs in the manifest: a byte whose change keeps it well-formed JSON. */
static off_t offset_of(const char *dir, const char *text)
{
        static char buf[256 * 1024];
        char p[700];
        FILE *fp;
        size_t n;
        char *hit;

        path_in(p, sizeof(p), dir, IMAGE_MANIFEST_FILE);
        if (!(fp = fopen(p, "rb")))
                abort();
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        if (!(hit = strstr(buf, text)))
                abort();
        return hit - buf;
}

TEST(image_extents_skip_holes_and_zero_blocks)
{
        struct manifest_extent *e = NULL;
        char src[600], p[700];
        size_t n = 0;
        int fd;

        snprintf(src, sizeof(src), "%s/src", test_tmpdir());
        CHECK(make_source(src, false, true) == 0);
        path_in(p, sizeof(p), src, "disk");
        fd = open(p, O_RDONLY);
        CHECK(fd >= 0);
        CHECK(image_disk_extents(fd, 64 * MIB, &e, &n) == 0);
        close(fd);
        CHECK_EQ(n, 4);
        CHECK_EQ(e[0].offset, 1 * MIB);
        CHECK_EQ(e[0].length, 8192);
        CHECK_EQ(e[1].offset, 10 * MIB);
        CHECK_EQ(e[1].length, 4096);
        CHECK_EQ(e[2].offset, 10 * MIB + 12288);
        CHECK_EQ(e[2].length, 4096);
        CHECK_EQ(e[3].offset, 64 * MIB - 12288);
        CHECK_EQ(e[3].length, 12288);
        free(e);
}

TEST(image_detect_fs_by_magic)
{
        uint8_t b[2048] = { 0 };

        CHECK_EQ(image_detect_fs(b, sizeof(b)), MANIFEST_FS_NONE);
        memcpy(b, "hsqs", 4);
        CHECK_EQ(image_detect_fs(b, sizeof(b)), MANIFEST_FS_SQUASHFS);
        memset(b, 0, 4);
        memcpy(b + 1024, "\xe2\xe1\xf5\xe0", 4);
        CHECK_EQ(image_detect_fs(b, sizeof(b)), MANIFEST_FS_EROFS);
        CHECK_EQ(image_detect_fs(b, 1027), MANIFEST_FS_NONE);
}

TEST(image_build_verify_import)
{
        struct image_info info, *list = NULL;
        struct fixture f;
        struct manifest m;
        char why[512];
        size_t n = 0;

        CHECK(fixture_setup(&f) == 0);
        CHECK(build(&f, "a", 7, MANIFEST_COMPRESS_ZSTD, true, 86400) == 0);
        CHECK(image_verify_dir(f.img, &f.kr, f.now, NULL, &m, why, sizeof(why)) == 0);
        CHECK_STREQ(m.name, "debian-worker");
        CHECK_EQ(m.version, 7);
        CHECK_STREQ(m.cmdline, "console=ttyS0 quiet");
        CHECK(m.artifacts[MANIFEST_DISK].present && m.artifacts[MANIFEST_ROOTFS].present);
        CHECK_EQ(m.artifacts[MANIFEST_DISK].raw_size, 64 * MIB);
        CHECK_EQ(m.artifacts[MANIFEST_DISK].n_extents, 4);
        CHECK_EQ(m.artifacts[MANIFEST_DISK].n_chunks, 4);
        CHECK(m.artifacts[MANIFEST_DISK].size < 32 * 1024);     /* compressed, holes left out */
        CHECK_EQ(m.artifacts[MANIFEST_KERNEL].n_chunks, (20 * 3 * 4096 + 65535) / 65536);
        CHECK_EQ(m.artifacts[MANIFEST_ROOTFS].fs, MANIFEST_FS_SQUASHFS);
        manifest_free(&m);
        CHECK(image_import(f.state, f.img, &f.kr, f.now, false, &info, why, sizeof(why)) == 0);
        CHECK(!info.already);
        CHECK_EQ(info.version, 7);
        CHECK(image_import(f.state, f.img, &f.kr, f.now, false, &info, why, sizeof(why)) == 0);
        CHECK(info.already);
        CHECK(image_list(f.state, &list, &n, why, sizeof(why)) == 0);
        CHECK_EQ(n, 1);
        CHECK_STREQ(list[0].name, "debian-worker");
        free(list);
        CHECK(image_show(f.state, "debian-worker", 0, &info, &m, why, sizeof(why)) == 0);
        CHECK_EQ(info.version, 7);
        manifest_free(&m);
        CHECK(image_remove(f.state, "debian-worker", 7, why, sizeof(why)) == 0);
        CHECK(image_show(f.state, "debian-worker", 7, &info, &m, why, sizeof(why)) == -ENOENT);
        image_signer_free(f.signer);
}

struct tamper_case {
        const char *file;
        off_t off;
        enum manifest_compression comp;
        int err;
        const char *why;
};

TEST(image_tampering_refused_without_trace)
{
        static const struct tamper_case cases[] = {
                { "kernel", 70000, MANIFEST_COMPRESS_ZSTD, -EBADMSG, "kernel: chunk 1 " },
                { "initrd", 3, MANIFEST_COMPRESS_ZSTD, -EBADMSG, "initrd: chunk 0 " },
                { "disk", 20, MANIFEST_COMPRESS_ZSTD, -EBADMSG, "disk: chunk 0 " },
                { "disk", 9000, MANIFEST_COMPRESS_NONE, -EBADMSG, "disk: chunk 1 " },
                { "rootfs", 100, MANIFEST_COMPRESS_ZSTD, -EBADMSG, "rootfs: chunk 0 " },
                { "manifest.json", -1, MANIFEST_COMPRESS_ZSTD, -EBADMSG, "signature does not match" },
                { "manifest.json.sig", 5, MANIFEST_COMPRESS_ZSTD, -EBADMSG, "signature does not match" },
        };
        struct image_info info;
        struct fixture f;
        char why[512], tag[16];

        CHECK(fixture_setup(&f) == 0);
        for (size_t i = 0; i < COUNT_OF(cases); i++) {
                snprintf(tag, sizeof(tag), "t%zu", i);
                CHECK(build(&f, tag, 3, cases[i].comp, true, 86400) == 0);
                flip(f.img, cases[i].file, cases[i].off >= 0 ? cases[i].off : offset_of(f.img, "quiet"));
                why[0] = '\0';
                if (image_verify_dir(f.img, &f.kr, f.now, NULL, NULL, why, sizeof(why)) != cases[i].err)
                        fprintf(stderr, "  case %zu: %s\n", i, why);
                CHECK_EQ(image_verify_dir(f.img, &f.kr, f.now, NULL, NULL, why, sizeof(why)), cases[i].err);
                CHECK(strstr(why, cases[i].why) != NULL);
                CHECK_EQ(image_import(f.state, f.img, &f.kr, f.now, false, &info, why, sizeof(why)), cases[i].err);
                CHECK(strstr(why, cases[i].why) != NULL);
                CHECK(strstr(why, "debian-worker") || strstr(why, f.img));
                CHECK_EQ(catalog_entries(f.state), 0);
        }
        image_signer_free(f.signer);
}

TEST(image_trust_refusals)
{
        struct image_keyring other = { 0 }, revoked = { 0 };
        struct image_info info;
        struct fixture f;
        char why[512];

        CHECK(fixture_setup(&f) == 0);
        CHECK(build(&f, "k", 1, MANIFEST_COMPRESS_ZSTD, false, 86400) == 0);
        CHECK(image_keyring_add(&other, f.other_pub, false, why, sizeof(why)) == 0);
        CHECK_EQ(image_import(f.state, f.img, &other, f.now, false, &info, why, sizeof(why)), -EKEYREJECTED);
        CHECK(strstr(why, "not a trusted key") && strstr(why, f.kr.trusted[0].id));
        CHECK_EQ(catalog_entries(f.state), 0);
        /* trusted and revoked at once: revoked wins */
        CHECK(image_keyring_add(&revoked, f.pub, false, why, sizeof(why)) == 0);
        CHECK(image_keyring_add(&revoked, f.other_pub, false, why, sizeof(why)) == 0);
        CHECK(image_keyring_add(&revoked, f.pub, true, why, sizeof(why)) == 0);
        CHECK_EQ(image_import(f.state, f.img, &revoked, f.now, false, &info, why, sizeof(why)), -EKEYREJECTED);
        CHECK(strstr(why, "revoked") && strstr(why, f.kr.trusted[0].id));
        CHECK_EQ(catalog_entries(f.state), 0);
        /* expired */
        CHECK_EQ(image_import(f.state, f.img, &f.kr, f.now + 2 * 86400, false, &info, why, sizeof(why)), -EKEYEXPIRED);
        CHECK(strstr(why, "expired") && strstr(why, "debian-worker"));
        CHECK_EQ(catalog_entries(f.state), 0);
        /* a public key file that is not one */
        CHECK(image_keyring_add(&other, f.key, false, why, sizeof(why)) == -EINVAL);
        image_signer_free(f.signer);
}

TEST(image_rollback)
{
        char v1[600], v2[600], why[512], p[700];
        struct image_info info;
        struct fixture f;
        uint64_t high = 0;

        CHECK(fixture_setup(&f) == 0);
        CHECK(build(&f, "v1", 1, MANIFEST_COMPRESS_ZSTD, false, 86400) == 0);
        snprintf(v1, sizeof(v1), "%s", f.img);
        CHECK(build(&f, "v2", 2, MANIFEST_COMPRESS_ZSTD, false, 86400) == 0);
        snprintf(v2, sizeof(v2), "%s", f.img);
        CHECK(image_import(f.state, v2, &f.kr, f.now, false, &info, why, sizeof(why)) == 0);
        CHECK_EQ(image_import(f.state, v1, &f.kr, f.now, false, &info, why, sizeof(why)), -ESTALE);
        CHECK(strstr(why, "version 1 is lower than version 2") && strstr(why, "debian-worker"));
        CHECK_EQ(catalog_entries(f.state), 1);
        /* removing does not lower the mark */
        CHECK(image_remove(f.state, "debian-worker", 2, why, sizeof(why)) == 0);
        CHECK(image_highest(f.state, "debian-worker", &high) == 0);
        CHECK_EQ(high, 2);
        CHECK_EQ(image_import(f.state, v1, &f.kr, f.now, false, &info, why, sizeof(why)), -ESTALE);
        CHECK(image_import(f.state, v1, &f.kr, f.now, true, &info, why, sizeof(why)) == 0);
        CHECK(image_highest(f.state, "debian-worker", &high) == 0);
        CHECK_EQ(high, 2);
        /* version 2 again with other bytes: refused even though version 2 was removed */
        CHECK(build(&f, "v2b", 2, MANIFEST_COMPRESS_NONE, false, 86400) == 0);
        CHECK_EQ(image_import(f.state, f.img, &f.kr, f.now, false, &info, why, sizeof(why)), -EEXIST);
        CHECK(strstr(why, "other content"));
        path_in(p, sizeof(p), f.state, "images/debian-worker/2");
        CHECK(access(p, F_OK) < 0);
        image_signer_free(f.signer);
}

/* An archive entry as the hostile cases need it. */
struct entry {
        const char *path;
        unsigned type;          /* AE_IF* */
        const char *link;       /* symlink target, or the hard link's original */
        int64_t size;           /* header size; -1: the file's own */
        const char *file;       /* take bytes from this file of the image (NULL: none) */
};

static int add_entry(struct archive *a, const char *img, const struct entry *e)
{
        struct archive_entry *ae = archive_entry_new();
        uint8_t *data = NULL;
        size_t len = 0;
        char p[700];
        int r = 0;

        if (e->file) {
                FILE *fp;

                path_in(p, sizeof(p), img, e->file);
                fp = fopen(p, "rb");
                if (!fp)
                        return -1;
                data = malloc(4 * MIB);
                len = fread(data, 1, 4 * MIB, fp);
                fclose(fp);
        }
        archive_entry_set_pathname(ae, e->path);
        archive_entry_set_filetype(ae, e->type);
        archive_entry_set_perm(ae, 0644);
        if (e->type == AE_IFLNK)
                archive_entry_set_symlink(ae, e->link);
        else if (e->link)
                archive_entry_set_hardlink(ae, e->link);
        if (e->type == AE_IFCHR)
                archive_entry_set_rdev(ae, makedev(1, 3));
        archive_entry_set_size(ae, e->size >= 0 ? e->size : (int64_t)len);
        if (archive_write_header(a, ae) != ARCHIVE_OK)
                r = -1;
        if (r == 0 && len && e->size < 0 && archive_write_data(a, data, len) != (la_ssize_t)len)
                r = -1;
        archive_entry_free(ae);
        free(data);
        return r;
}

#define ARCHIVE_CAP (8 * MIB)

/*
 * Into memory first: closing an entry whose header claims more than was
 * written pads it with zeros, which the full buffer stops (never the disk).
 */
static int write_archive(const char *path, const char *img, const struct entry *entries, size_t n, bool zstd)
{
        struct archive *a = archive_write_new();
        uint8_t *mem = malloc(ARCHIVE_CAP);
        size_t used = 0;
        int r = mem ? 0 : -1;

        archive_write_set_format_pax_restricted(a);
        if (zstd)
                archive_write_add_filter_zstd(a);
        if (r == 0 && archive_write_open_memory(a, mem, ARCHIVE_CAP, &used) != ARCHIVE_OK)
                r = -1;
        for (size_t i = 0; r == 0 && i < n; i++)
                r = add_entry(a, img, &entries[i]);
        archive_write_close(a);
        archive_write_free(a);
        if (mem && used)
                write_at(path, 0, mem, used);
        free(mem);
        return r;
}

#define GOOD_ENTRIES(dir)                                                                      \
        { dir "manifest.json", AE_IFREG, NULL, -1, "manifest.json" },                          \
        { dir "manifest.json.sig", AE_IFREG, NULL, -1, "manifest.json.sig" },                  \
        { dir "kernel", AE_IFREG, NULL, -1, "kernel" },                                        \
        { dir "initrd", AE_IFREG, NULL, -1, "initrd" },                                        \
        { dir "disk", AE_IFREG, NULL, -1, "disk" }

TEST(image_archive_import)
{
        const struct entry good[] = { { "debian-worker-4/", AE_IFDIR, NULL, 0, NULL }, GOOD_ENTRIES("debian-worker-4/") };
        struct image_info info;
        struct fixture f;
        char tar[600], why[512];

        CHECK(fixture_setup(&f) == 0);
        CHECK(build(&f, "ar", 4, MANIFEST_COMPRESS_ZSTD, false, 86400) == 0);
        snprintf(tar, sizeof(tar), "%s/good.tar.zst", f.dir);
        CHECK(write_archive(tar, f.img, good, COUNT_OF(good), true) == 0);
        CHECK(image_import(f.state, tar, &f.kr, f.now, false, &info, why, sizeof(why)) == 0);
        CHECK_EQ(info.version, 4);
        CHECK_EQ(catalog_entries(f.state), 1);
        image_signer_free(f.signer);
}

struct hostile_case {
        struct entry e;
        int err;
        const char *why;
};

TEST(image_hostile_archives_refused_without_trace)
{
        static const struct hostile_case cases[] = {
                { { "../x", AE_IFREG, NULL, -1, "initrd" }, -EINVAL, "'..' component" },
                { { "/abs", AE_IFREG, NULL, -1, "initrd" }, -EINVAL, "absolute path" },
                { { "rootfs", AE_IFLNK, "/etc/passwd", 0, NULL }, -EINVAL, "not a regular file" },
                { { "rootfs", AE_IFREG, "kernel", 0, NULL }, -EINVAL, "hard link" },
                { { "rootfs", AE_IFCHR, NULL, 0, NULL }, -EINVAL, "not a regular file" },
                { { "rootfs", AE_IFIFO, NULL, 0, NULL }, -EINVAL, "not a regular file" },
                { { "kernel", AE_IFREG, NULL, -1, "initrd" }, -EINVAL, "a second kernel" },
                { { "evil.sh", AE_IFREG, NULL, -1, "initrd" }, -EINVAL, "not a file of an image" },
                { { "rootfs", AE_IFREG, NULL, 1LL << 43, NULL }, -EFBIG, "more than rootfs may hold" },
                { { "other/rootfs", AE_IFREG, NULL, -1, "initrd" }, -EINVAL, "" },
                { { "sub/dir/", AE_IFDIR, NULL, 0, NULL }, -EINVAL, "" },
        };
        struct image_info info;
        struct fixture f;
        char tar[600], why[512];

        CHECK(fixture_setup(&f) == 0);
        CHECK(build(&f, "h", 5, MANIFEST_COMPRESS_ZSTD, false, 86400) == 0);
        for (size_t i = 0; i < COUNT_OF(cases); i++) {
                struct entry entries[] = { GOOD_ENTRIES(""), cases[i].e };

                snprintf(tar, sizeof(tar), "%s/hostile-%zu.tar", f.dir, i);
                /* zstd only for entries that carry their bytes: padding 2^43 zeros would compress for hours */
                CHECK(write_archive(tar, f.img, entries, COUNT_OF(entries), i % 2 && cases[i].e.size < 0) == 0);
                why[0] = '\0';
                if (image_import(f.state, tar, &f.kr, f.now, false, &info, why, sizeof(why)) != cases[i].err)
                        fprintf(stderr, "  case %zu: %s\n", i, why);
                CHECK_EQ(image_import(f.state, tar, &f.kr, f.now, false, &info, why, sizeof(why)), cases[i].err);
                CHECK(strstr(why, cases[i].why) != NULL);
                CHECK_EQ(catalog_entries(f.state), 0);
        }
        {
                /* two top-level directories */
                const struct entry two[] = { GOOD_ENTRIES("a/"), { "b/rootfs", AE_IFREG, NULL, -1, "initrd" } };

                snprintf(tar, sizeof(tar), "%s/two-tops.tar", f.dir);
                CHECK(write_archive(tar, f.img, two, COUNT_OF(two), false) == 0);
                CHECK_EQ(image_import(f.state, tar, &f.kr, f.now, false, &info, why, sizeof(why)), -EINVAL);
                CHECK(strstr(why, "a second top-level directory"));
                CHECK_EQ(catalog_entries(f.state), 0);
        }
        image_signer_free(f.signer);
}

struct entry_case {
        const char *path;
        enum image_entry_type type;
        bool hardlink;
        int64_t size;
        int want;               /* index, IMAGE_ENTRY_SKIP or -errno */
};

TEST(image_entry_check_table)
{
        static const struct entry_case seq[] = {
                { "./", IMAGE_ENTRY_DIR, false, 0, IMAGE_ENTRY_SKIP },
                { "img/", IMAGE_ENTRY_DIR, false, 0, IMAGE_ENTRY_SKIP },
                { "img/manifest.json", IMAGE_ENTRY_FILE, false, 100, 0 },
                { "./img/manifest.json.sig", IMAGE_ENTRY_FILE, false, 64, 1 },
                { "img/manifest.json.sig", IMAGE_ENTRY_FILE, false, 64, -EINVAL },      /* duplicate */
                { "img/kernel", IMAGE_ENTRY_FILE, false, -1, 2 },
                { "kernel2", IMAGE_ENTRY_FILE, false, 1, -EINVAL },
                { "img/disk", IMAGE_ENTRY_FILE, false, (int64_t)IMAGE_MAX_ARTIFACT_BYTES + 1, -EFBIG },
                { "img/initrd/", IMAGE_ENTRY_DIR, false, 0, -EINVAL },
                { "initrd", IMAGE_ENTRY_FILE, false, 1, -EINVAL },      /* outside img/ */
                { "img/../initrd", IMAGE_ENTRY_FILE, false, 1, -EINVAL },
                { "img/a/initrd", IMAGE_ENTRY_FILE, false, 1, -EINVAL },
                { "img/initrd", IMAGE_ENTRY_OTHER, false, 0, -EINVAL },
                { "img/initrd", IMAGE_ENTRY_FILE, true, 0, -EINVAL },
                { "img/initrd", IMAGE_ENTRY_FILE, false, 10, 3 },
                { "img/rootfs", IMAGE_ENTRY_FILE, false, 10, 5 },
        };
        struct image_entry_state st = { 0 };
        char why[256];

        for (size_t i = 0; i < COUNT_OF(seq); i++)
                CHECK_EQ(image_entry_check(&st, seq[i].path, seq[i].type, seq[i].hardlink, seq[i].size, why,
                                           sizeof(why)), seq[i].want);
        memset(&st, 0, sizeof(st));
        CHECK_EQ(image_entry_check(&st, "manifest.json.sig", IMAGE_ENTRY_FILE, false, 65, why, sizeof(why)), -EFBIG);
        CHECK_EQ(image_entry_check(&st, "manifest.json", IMAGE_ENTRY_FILE, false, IMAGE_MAX_MANIFEST_BYTES + 1, why,
                                   sizeof(why)), -EFBIG);
        CHECK_EQ(image_entry_check(&st, "disk", IMAGE_ENTRY_FILE, false, 1, why, sizeof(why)), 4);
        CHECK_EQ(image_entry_check(&st, "x/kernel", IMAGE_ENTRY_FILE, false, 1, why, sizeof(why)), -EINVAL);
}

TEST(image_extra_file_and_big_manifest_refused)
{
        struct fixture f;
        char why[512], p[700];
        int fd;

        CHECK(fixture_setup(&f) == 0);
        CHECK(build(&f, "x", 1, MANIFEST_COMPRESS_ZSTD, false, 86400) == 0);
        path_in(p, sizeof(p), f.img, "notes.txt");
        write_at(p, 0, "hi", 2);
        CHECK_EQ(image_verify_dir(f.img, &f.kr, f.now, NULL, NULL, why, sizeof(why)), -EEXIST);
        CHECK(strstr(why, "unexpected file 'notes.txt'"));
        unlink(p);
        path_in(p, sizeof(p), f.img, "manifest.json");
        fd = open(p, O_WRONLY);
        CHECK(fd >= 0 && ftruncate(fd, IMAGE_MAX_MANIFEST_BYTES + 1) == 0);
        close(fd);
        CHECK_EQ(image_verify_dir(f.img, &f.kr, f.now, NULL, NULL, why, sizeof(why)), -EFBIG);
        CHECK(strstr(why, "refused unread"));
        image_signer_free(f.signer);
}

TEST(image_sign_existing_manifest)
{
        struct fixture f;
        char why[512];

        CHECK(fixture_setup(&f) == 0);
        CHECK(build(&f, "s", 1, MANIFEST_COMPRESS_ZSTD, false, 86400) == 0);
        flip(f.img, IMAGE_SIG_FILE, 0);
        CHECK(image_verify_dir(f.img, &f.kr, f.now, NULL, NULL, why, sizeof(why)) == -EBADMSG);
        CHECK(image_sign_dir(f.img, f.signer, why, sizeof(why)) == 0);
        CHECK(image_verify_dir(f.img, &f.kr, f.now, NULL, NULL, why, sizeof(why)) == 0);
        image_signer_free(f.signer);
}

/* An MBR with up to four entries (type, first LBA, sectors); type 0 leaves the slot empty. */
static void mbr(uint8_t *d, const uint32_t (*parts)[3], size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint8_t *pe = d + 446 + 16 * i;

                pe[4] = (uint8_t)parts[i][0];
                for (int b = 0; b < 4; b++) {
                        pe[8 + b] = (uint8_t)(parts[i][1] >> (8 * b));
                        pe[12 + b] = (uint8_t)(parts[i][2] >> (8 * b));
                }
        }
        d[510] = 0x55;
        d[511] = 0xaa;
}

static void le_put(uint8_t *p, uint64_t v, int n)
{
        for (int i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/* A protective MBR and a GPT header at LBA 1 whose n_entries of 128 bytes start at LBA entries_lba. */
static void gpt(uint8_t *d, uint64_t entries_lba, uint32_t n_entries)
{
        static const uint32_t protective[][3] = { { 0xee, 1, 0xffffffff } };

        mbr(d, protective, 1);
        memcpy(d + 512, "EFI PART", 8);
        le_put(d + 512 + 12, 92, 4);
        le_put(d + 512 + 72, entries_lba, 8);
        le_put(d + 512 + 80, n_entries, 4);
        le_put(d + 512 + 84, 128, 4);
}

static void gpt_entry(uint8_t *d, unsigned i, uint64_t first, uint64_t last, const char *name)
{
        uint8_t *e = d + 1024 + 128 * i;

        memset(e, 0, 128);
        memset(e, 0x11, 16);    /* a type GUID: in use */
        le_put(e + 32, first, 8);
        le_put(e + 40, last, 8);
        for (size_t k = 0; name[k]; k++)
                le_put(e + 56 + 2 * k, (uint8_t)name[k], 2);
}

TEST(image_find_config_partition)
{
        static uint8_t d[MIB];
        struct manifest_extent c = { 0 };
        char why[256] = "";
        const uint64_t raw = 64 * MIB;

        memset(d, 0, sizeof(d));
        CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -ENOENT);       /* no table */
        CHECK_EQ(image_find_config(d, 100, raw, &c, why, sizeof(why)), -ENOENT);
        {
                static const uint32_t parts[][3] = { { 0x0e, 2048, 65536 }, { 0xda, 67584, 2048 } };

                mbr(d, parts, 2);
                CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), 0);
                CHECK_EQ(c.offset, 67584 * 512ULL);
                CHECK_EQ(c.length, MIB);
        }
        {
                static const uint32_t parts[][3] = { { 0x83, 2048, 65536 } };

                memset(d, 0, sizeof(d));
                mbr(d, parts, 1);
                CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -ENOENT);
        }
        static const struct {
                uint32_t parts[2][3];
                const char *why;
        } bad[] = {
                { { { 0xda, 2049, 2048 } }, "must start on a multiple of 4096" },      /* not 4 KiB aligned */
                { { { 0xda, 1024, 2048 } }, "past the first MiB" },                    /* in the boot area */
                { { { 0xda, 4096, 1024 } }, "at least 1 MiB" },                        /* too short */
                { { { 0xda, 4096, 2049 } }, "a multiple of 4096" },                    /* odd length */
                { { { 0xda, 131072, 2048 } }, "ends past the disk" },                  /* outside raw_size */
                { { { 0xda, 4096, 2048 }, { 0xda, 8192, 2048 } }, "more than one" },
        };
        for (size_t i = 0; i < COUNT_OF(bad); i++) {
                memset(d, 0, sizeof(d));
                mbr(d, bad[i].parts, 2);
                why[0] = '\0';
                CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -EINVAL);
                if (!strstr(why, bad[i].why))
                        fprintf(stderr, "  case %zu: %s\n", i, why);
                CHECK(strstr(why, bad[i].why) != NULL);
        }
        /* GPT: by name, in UTF-16 */
        memset(d, 0, sizeof(d));
        gpt(d, 2, 128);
        gpt_entry(d, 0, 2048, 67583, "ESP");
        gpt_entry(d, 1, 67584, 69631, "METALD-CFG");
        CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), 0);
        CHECK_EQ(c.offset, 67584 * 512ULL);
        CHECK_EQ(c.length, MIB);
        gpt_entry(d, 1, 67584, 69631, "METALD-CFGX");
        CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -ENOENT);
        gpt_entry(d, 1, 67584, 69631, "METALD-CF");
        CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -ENOENT);
        gpt_entry(d, 1, 69631, 67584, "METALD-CFG");
        CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -EINVAL);
        /* hostile headers: entries past what was read, a huge count, no header at all */
        gpt(d, 4096, 128);
        CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "not inside the first MiB") != NULL);
        gpt(d, 2, 0xffffffffu);
        CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -EINVAL);
        gpt(d, 2, 128);
        CHECK_EQ(image_find_config(d, 4096, raw, &c, why, sizeof(why)), -EINVAL);     /* entries cut off */
        memset(d + 512, 0, 8);
        CHECK_EQ(image_find_config(d, sizeof(d), raw, &c, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "without a GPT header") != NULL);
}

/* Each disk chunk of img is one zstd frame that states its raw length, as the agent requires. */
static int check_frames(const char *img, const struct manifest_artifact *a)
{
        char p[700];
        uint8_t *buf = NULL;
        int fd, r = 0;

        path_in(p, sizeof(p), img, "disk");
        if ((fd = open(p, O_RDONLY)) < 0)
                return -1;
        if (!(buf = malloc(a->size)) || pread(fd, buf, a->size, 0) != (ssize_t)a->size)
                r = -1;
        close(fd);
        for (size_t i = 0; r == 0 && i < a->n_chunks; i++) {
                const struct manifest_chunk *c = &a->chunks[i];

                if (ZSTD_getFrameContentSize(buf + c->file_offset, c->size) != c->length ||
                    ZSTD_findFrameCompressedSize(buf + c->file_offset, c->size) != c->size)
                        r = -1;
        }
        free(buf);
        return r;
}

TEST(image_build_zstd_frames_state_their_size)
{
        struct fixture f;
        struct manifest m;
        char why[512];

        CHECK(fixture_setup(&f) == 0);
        CHECK(build(&f, "z", 1, MANIFEST_COMPRESS_ZSTD, false, 86400) == 0);
        CHECK(image_verify_dir(f.img, &f.kr, f.now, NULL, &m, why, sizeof(why)) == 0);
        CHECK(m.artifacts[MANIFEST_DISK].n_chunks > 0);
        CHECK(!m.artifacts[MANIFEST_DISK].has_config);          /* no partition table */
        CHECK_EQ(check_frames(f.img, &m.artifacts[MANIFEST_DISK]), 0);
        manifest_free(&m);
        image_signer_free(f.signer);
}

TEST(image_build_emits_the_config_range)
{
        static const uint32_t parts[][3] = { { 0x0e, 2048, 16384 }, { 0xda, 67584, 2048 } };
        static uint8_t head[512], stale[8192];
        struct image_build_spec spec = { .name = "cfg", .version = 1, .arch = "x86_64", .chunk_size = 64 * 1024,
                                         .compression = MANIFEST_COMPRESS_ZSTD };
        const struct manifest_artifact *d;
        struct fixture f;
        struct manifest m;
        char why[512], p[700];

        CHECK(fixture_setup(&f) == 0);
        spec.created = f.now - 60;
        spec.expires = f.now + 86400;
        snprintf(f.src, sizeof(f.src), "%s/src-cfg", f.dir);
        snprintf(f.img, sizeof(f.img), "%s/img-cfg", f.dir);
        CHECK(make_source(f.src, false, true) == 0);
        mbr(head, parts, 2);
        path_in(p, sizeof(p), f.src, "disk");
        write_at(p, 0, head, sizeof(head));
        /* an old record inside the partition, and data either side of it */
        fill(stale, sizeof(stale), 3);
        write_at(p, 33 * MIB - 4096, stale, 4096);
        write_at(p, 33 * MIB, stale, sizeof(stale));
        write_at(p, 34 * MIB, stale, 4096);
        spec.src = f.src;
        spec.out = f.img;
        CHECK(image_build(&spec, f.signer, why, sizeof(why)) == 0);
        CHECK(image_verify_dir(f.img, &f.kr, f.now, NULL, &m, why, sizeof(why)) == 0);
        d = &m.artifacts[MANIFEST_DISK];
        CHECK(d->has_config);
        CHECK_EQ(d->config_offset, 33 * MIB);
        CHECK_EQ(d->config_length, MIB);
        for (size_t i = 0; i < d->n_extents; i++)
                CHECK(d->extents[i].offset + d->extents[i].length <= 33 * MIB || d->extents[i].offset >= 34 * MIB);
        /* the blocks either side are still mapped */
        bool before = false, after = false;
        for (size_t i = 0; i < d->n_extents; i++) {
                before |= d->extents[i].offset + d->extents[i].length == 33 * MIB;
                after |= d->extents[i].offset == 34 * MIB;
        }
        CHECK(before && after);
        CHECK_EQ(check_frames(f.img, d), 0);
        manifest_free(&m);
        /* a misplaced partition fails the build, naming it */
        {
                static const uint32_t off[][3] = { { 0xda, 67585, 2048 } };

                memset(head, 0, sizeof(head));
                mbr(head, off, 1);
                write_at(p, 0, head, sizeof(head));
                snprintf(f.img, sizeof(f.img), "%s/img-cfg2", f.dir);
                spec.out = f.img;
                CHECK(image_build(&spec, f.signer, why, sizeof(why)) == -EINVAL);
                CHECK(strstr(why, "METALD-CFG") != NULL);
        }
        image_signer_free(f.signer);
}
