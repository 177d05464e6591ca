/* SPDX-License-Identifier: Apache-2.0 */
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "elf_fake.h"
#include "metald/config.h"
#include "metald/image.h"
#include "metald/initramfs.h"
#include "metald/util.h"
#include "test.h"

/*
 * Whole images from a fake module tree, a fake static busybox and /bin/ls as
 * the agent (a real dynamic executable, so real libraries are resolved).
 */

struct env {
        char modules[512], busybox[512], out[512];
        struct initramfs_spec spec;
};

static int put_module(const char *dir, const char *name, const char *deps)
{
        static uint8_t elf[4096];
        char mi[512], path[600];
        int len = snprintf(mi, sizeof(mi), "name=%s%cdepends=%s%cvermagic=6.1.0-test", name, 0, deps, 0);
        size_t n = fake_module(elf, sizeof(elf), mi, (size_t)len + 1, NULL);

        snprintf(path, sizeof(path), "%s/kernel/%s.ko", dir, name);
        return fake_write(path, elf, n);
}

static int env_setup(struct env *e, const char *const *names, size_t n_names)
{
        const char *t = test_tmpdir();
        uint8_t elf[4096];
        char path[600], packed[600];
        size_t n = fake_dynamic(elf, sizeof(elf), &(struct fake_dyn){ .type = ET_EXEC, .no_dynamic = true }, NULL);

        snprintf(e->modules, sizeof(e->modules), "%s/lib/modules/6.1.0-test", t);
        snprintf(e->busybox, sizeof(e->busybox), "%s/busybox", t);
        snprintf(e->out, sizeof(e->out), "%s/out", t);
        snprintf(path, sizeof(path), "%s/lib", t);
        mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/lib/modules", t);
        mkdir(path, 0755);
        mkdir(e->modules, 0755);
        snprintf(path, sizeof(path), "%s/kernel", e->modules);
        mkdir(path, 0755);
        mkdir(e->out, 0755);
        if (fake_write(e->busybox, elf, n) < 0 || put_module(e->modules, "nic", "mii,packed") < 0 ||
            put_module(e->modules, "mii", "") < 0 || put_module(e->modules, "packed", "") < 0 ||
            put_module(e->modules, "disk", "unix") < 0)
                return -EIO;
        /* packed ships as .ko.xz only; its unpacked bytes stay aside to compare with the image */
        snprintf(path, sizeof(path), "%s/kernel/packed.ko", e->modules);
        snprintf(packed, sizeof(packed), "%s/packed.ko.orig", t);
        if (rename(path, packed) < 0)
                return -EIO;
        snprintf(path, sizeof(path), "%s/kernel/packed.ko.xz", e->modules);
        if (fake_compress(packed, path, ARCHIVE_FILTER_XZ) < 0)
                return -EIO;
        snprintf(path, sizeof(path), "%s/modules.builtin", e->modules);
        if (fake_write(path, "kernel/net/unix/unix.ko\n", 24) < 0)
                return -EIO;
        e->spec = (struct initramfs_spec){ .modules_dir = e->modules, .agent = "/bin/ls", .busybox = e->busybox };
        for (size_t i = 0; i < n_names; i++)
                e->spec.modules[e->spec.n_modules++] = names[i];
        return 0;
}

static const char *const default_names[] = { "nic", "disk" };

TEST(initramfs_plan_entries)
{
        struct env e;
        struct initramfs_plan p = { 0 };
        const struct initramfs_entry *x;
        char why[1024];

        CHECK_EQ(env_setup(&e, default_names, 2), 0);
        CHECK_EQ(initramfs_plan(&e.spec, &p, why, sizeof(why)), 0);
        CHECK_EQ(p.n_modules, 4);
        CHECK((x = initramfs_plan_find(&p, "init")) && x->kind == INITRAMFS_FILE && x->mode == 0755);
        CHECK(strstr(x->data, "metald-agent run"));
        CHECK(strstr(x->data, "echo 1 > \"$nofallback\""));
        CHECK((x = initramfs_plan_find(&p, "bin/busybox")) && x->mode == 0755 && x->source);
        CHECK((x = initramfs_plan_find(&p, "bin/sh")) && x->kind == INITRAMFS_SYMLINK);
        CHECK_STREQ(x->data, "busybox");
        CHECK((x = initramfs_plan_find(&p, "bin/udhcpc")) && x->kind == INITRAMFS_SYMLINK);
        CHECK((x = initramfs_plan_find(&p, "bin/insmod")) && x->kind == INITRAMFS_SYMLINK);
        CHECK((x = initramfs_plan_find(&p, "dev/console")) && x->kind == INITRAMFS_CHARDEV);
        CHECK(x->rdev_major == 5 && x->rdev_minor == 1);
        CHECK((x = initramfs_plan_find(&p, "tmp")) && x->kind == INITRAMFS_DIR && x->mode == 01777);
        CHECK((x = initramfs_plan_find(&p, "usr/bin/metald-agent")) && x->mode == 0755);
        CHECK_STREQ(x->source, "/bin/ls");
        CHECK((x = initramfs_plan_find(&p, "lib64/ld-linux-x86-64.so.2")) && x->mode == 0755);
        CHECK((x = initramfs_plan_find(&p, "lib/x86_64-linux-gnu/libc.so.6")) && x->mode == 0644);
        CHECK((x = initramfs_plan_find(&p, "etc/metald/udhcpc.script")) && x->mode == 0755);
        CHECK((x = initramfs_plan_find(&p, "etc/metald/library-path")));
        CHECK_STREQ(x->data, "/lib/x86_64-linux-gnu\n");
        CHECK((x = initramfs_plan_find(&p, "etc/metald/modules")));
        CHECK_STREQ(x->data, "/lib/modules/6.1.0-test/kernel/mii.ko\n"
                             "/lib/modules/6.1.0-test/kernel/packed.ko\n"
                             "/lib/modules/6.1.0-test/kernel/nic.ko\n"
                             "/lib/modules/6.1.0-test/kernel/disk.ko\n");
        CHECK((x = initramfs_plan_find(&p, "lib/modules/6.1.0-test/kernel/packed.ko")) &&
              x->unpack == INITRAMFS_UNPACK_XZ);
        CHECK(initramfs_plan_find(&p, "lib/modules/6.1.0-test/kernel/packed.ko.xz") == NULL);
        for (size_t i = 0; i < p.n_entries; i++) {
                char parent[512], *slash;

                if (i > 0)
                        CHECK(strcmp(p.entries[i - 1].path, p.entries[i].path) < 0);
                snprintf(parent, sizeof(parent), "%s", p.entries[i].path);
                if ((slash = strrchr(parent, '/'))) {
                        *slash = '\0';
                        CHECK((x = initramfs_plan_find(&p, parent)) && x->kind == INITRAMFS_DIR);
                }
        }
        initramfs_plan_free(&p);
}

static int file_sha(const char *path, char hex[65])
{
        uint8_t *data = NULL, md[32];
        size_t len = 0;
        int r = fs_read_file(path, 1u << 30, md, &data, &len);

        free(data);
        if (r == 0)
                format_hex(hex, md, 32);
        return r;
}

/* Reads the image back: exactly the planned entries, in order, owned by root, at time 0. */
static void check_readback(const struct initramfs_plan *p, const char *img, int filter, const char *packed_orig)
{
        struct archive *a = archive_read_new();
        struct archive_entry *ae;
        size_t i = 0;

        archive_read_support_filter_all(a);
        archive_read_support_format_cpio(a);
        CHECK_EQ(archive_read_open_filename(a, img, 65536), ARCHIVE_OK);
        while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
                const struct initramfs_entry *x = &p->entries[i];

                CHECK(i < p->n_entries);
                CHECK_EQ(archive_filter_code(a, 0), filter);
                CHECK_STREQ(archive_entry_pathname(ae), x->path);
                CHECK_EQ(archive_entry_perm(ae), x->mode);
                CHECK_EQ(archive_entry_uid(ae), 0);
                CHECK_EQ(archive_entry_gid(ae), 0);
                CHECK_EQ(archive_entry_mtime(ae), 0);
                if (x->kind == INITRAMFS_FILE) {
                        uint8_t *data = malloc(x->size + 1), md[32];
                        la_ssize_t n = archive_read_data(a, data, x->size + 1);
                        unsigned mdlen = 0;

                        CHECK_EQ(archive_entry_filetype(ae), AE_IFREG);
                        CHECK_EQ(n, (la_ssize_t)x->size);
                        EVP_Digest(data, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
                        if (x->unpack == INITRAMFS_UNPACK_NONE)
                                CHECK(memcmp(md, x->sha256, 32) == 0);
                        if (x->unpack != INITRAMFS_UNPACK_NONE) {
                                uint8_t *orig = NULL;
                                size_t olen = 0;

                                CHECK_EQ(fs_read_file(packed_orig, 1 << 20, NULL, &orig, &olen), 0);
                                CHECK(olen == (size_t)n && memcmp(orig, data, olen) == 0);
                                free(orig);
                        }
                        free(data);
                } else if (x->kind == INITRAMFS_SYMLINK) {
                        CHECK_EQ(archive_entry_filetype(ae), AE_IFLNK);
                        CHECK_STREQ(archive_entry_symlink(ae), x->data);
                } else if (x->kind == INITRAMFS_DIR) {
                        CHECK_EQ(archive_entry_filetype(ae), AE_IFDIR);
                } else {
                        CHECK_EQ(archive_entry_filetype(ae), AE_IFCHR);
                        CHECK_EQ(archive_entry_rdevmajor(ae), 5);
                        CHECK_EQ(archive_entry_rdevminor(ae), 1);
                }
                i++;
        }
        CHECK_EQ(i, p->n_entries);
        archive_read_free(a);
}

static void build_and_read(enum enroll_compression c, int filter)
{
        struct env e;
        struct initramfs_plan p = { 0 };
        struct initramfs_result r1, r2;
        char why[1024], a[600], b[600], orig[600], hex[65];
        uint8_t *da = NULL, *db = NULL;
        size_t la = 0, lb = 0;

        CHECK_EQ(env_setup(&e, default_names, 2), 0);
        e.spec.compression = c;
        CHECK_EQ(initramfs_plan(&e.spec, &p, why, sizeof(why)), 0);
        snprintf(a, sizeof(a), "%s/a.img", e.out);
        snprintf(b, sizeof(b), "%s/b.img", e.out);
        snprintf(orig, sizeof(orig), "%s/packed.ko.orig", test_tmpdir());
        CHECK_EQ(initramfs_write(&p, a, &r1, why, sizeof(why)), 0);
        CHECK(r1.built);
        CHECK_EQ(file_sha(a, hex), 0);
        CHECK_STREQ(r1.sha256_hex, hex);
        check_readback(&p, a, filter, orig);
        initramfs_plan_free(&p);
        /* planned again from scratch: the same bytes */
        CHECK_EQ(initramfs_plan(&e.spec, &p, why, sizeof(why)), 0);
        CHECK_EQ(initramfs_write(&p, b, &r2, why, sizeof(why)), 0);
        CHECK_STREQ(r1.sha256_hex, r2.sha256_hex);
        CHECK_EQ(fs_read_file(a, 1u << 30, NULL, &da, &la), 0);
        CHECK_EQ(fs_read_file(b, 1u << 30, NULL, &db, &lb), 0);
        CHECK(la == lb && memcmp(da, db, la) == 0);
        CHECK_EQ(la, r1.size);
        free(da);
        free(db);
        initramfs_plan_free(&p);
}

TEST(initramfs_gzip_readback_reproducible)
{
        build_and_read(ENROLL_COMPRESS_GZIP, ARCHIVE_FILTER_GZIP);
}

TEST(initramfs_zstd_readback_reproducible)
{
        build_and_read(ENROLL_COMPRESS_ZSTD, ARCHIVE_FILTER_ZSTD);
}

TEST(initramfs_ensure_caches_and_renames)
{
        struct env e;
        struct initramfs_result r1, r2, r3, r4;
        char why[1024], dir[600];
        struct stat st;

        CHECK_EQ(env_setup(&e, default_names, 2), 0);
        snprintf(dir, sizeof(dir), "%s/state/enroll", test_tmpdir());
        CHECK_EQ(initramfs_ensure_dir(&e.spec, dir, &r1, why, sizeof(why)), 0);
        CHECK(r1.built);
        CHECK(strstr(r1.path, "/state/enroll/enroll-") && strlen(strrchr(r1.path, '/')) == strlen("/enroll-") + 16 + 4);
        CHECK_EQ(initramfs_ensure_dir(&e.spec, dir, &r2, why, sizeof(why)), 0);
        CHECK(!r2.built);
        CHECK_STREQ(r2.path, r1.path);
        CHECK_STREQ(r2.sha256_hex, r1.sha256_hex);
        CHECK_EQ(r2.size, r1.size);
        /* a module changes: a new name, the old image goes */
        CHECK_EQ(put_module(e.modules, "mii", "packed"), 0);
        CHECK_EQ(initramfs_ensure_dir(&e.spec, dir, &r3, why, sizeof(why)), 0);
        CHECK(r3.built);
        CHECK(strcmp(r3.path, r1.path) != 0);
        CHECK(strcmp(r3.sha256_hex, r1.sha256_hex) != 0);
        CHECK(stat(r1.path, &st) < 0 && errno == ENOENT);
        CHECK_EQ(stat(r3.path, &st), 0);
        /* so does the compression */
        e.spec.compression = ENROLL_COMPRESS_ZSTD;
        CHECK_EQ(initramfs_ensure_dir(&e.spec, dir, &r4, why, sizeof(why)), 0);
        CHECK(r4.built && strcmp(r4.path, r3.path) != 0);
}

TEST(initramfs_plan_refusals)
{
        const char *missing[] = { "nic", "absent_driver" };
        struct env e;
        struct initramfs_plan p = { 0 };
        char why[1024];

        CHECK_EQ(env_setup(&e, missing, 2), 0);
        CHECK_EQ(initramfs_plan(&e.spec, &p, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, "absent_driver"));
        e.spec.n_modules = 1;
        e.spec.busybox = "/bin/ls";
        CHECK_EQ(initramfs_plan(&e.spec, &p, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "static"));
        e.spec.busybox = e.busybox;
        snprintf(e.spec.agent, sizeof(e.spec.agent), "/nonexistent/metald-agent");
        CHECK_EQ(initramfs_plan(&e.spec, &p, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, "/nonexistent/metald-agent"));
        snprintf(e.spec.agent, sizeof(e.spec.agent), "/bin/ls");
        e.spec.modules_dir = "/";
        CHECK_EQ(initramfs_plan(&e.spec, &p, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, "kernel version"));
        CHECK_EQ(p.n_entries, 0);
}

static int load(const char *yaml, struct config **c, char *err, size_t n)
{
        return config_load_string(yaml, "metald.yaml", c, err, n);
}

TEST(config_enroll_build)
{
        struct config *c = NULL;
        char err[512];

        CHECK_EQ(load("dhcp: { enabled: false }\n", &c, err, sizeof(err)), 0);
        CHECK(!c->boot.enroll.build.enabled);
        CHECK_STREQ(c->boot.enroll.build.busybox, "/bin/busybox");
        config_free(c);
        CHECK_EQ(load("dhcp: { enabled: false }\n"
                      "boot:\n"
                      "  enroll:\n"
                      "    kernel: vmlinuz\n"
                      "    build:\n"
                      "      modules: /lib/modules/6.1.0-test\n"
                      "      agent: /opt/metald-agent\n"
                      "      compression: zstd\n"
                      "      extra_modules: [bnxt_en, i40e, ice-x]\n",
                      &c, err, sizeof(err)), 0);
        CHECK(c->boot.enroll.build.enabled);
        CHECK_STREQ(c->boot.enroll.build.modules, "/lib/modules/6.1.0-test");
        CHECK_STREQ(c->boot.enroll.build.agent, "/opt/metald-agent");
        CHECK_STREQ(c->boot.enroll.build.busybox, "/bin/busybox");
        CHECK_EQ(c->boot.enroll.build.compression, ENROLL_COMPRESS_ZSTD);
        CHECK_EQ(c->boot.enroll.build.n_extra_modules, 3);
        CHECK_STREQ(c->boot.enroll.build.extra_modules[2], "ice-x");
        {
                struct initramfs_spec s;

                initramfs_spec_from_config(&c->boot.enroll.build, &s);
                CHECK_EQ(s.n_modules, INITRAMFS_DEFAULT_MODULES + 3);
                CHECK_STREQ(s.modules[0], "e1000");
                CHECK_STREQ(s.modules[INITRAMFS_DEFAULT_MODULES], "bnxt_en");
                CHECK_STREQ(s.agent, "/opt/metald-agent");
                /* unset: the metald-agent next to the running program, else the install layout */
                c->boot.enroll.build.agent[0] = '\0';
                initramfs_spec_from_config(&c->boot.enroll.build, &s);
                CHECK(strlen(s.agent) > strlen("/metald-agent"));
                CHECK_STREQ(s.agent + strlen(s.agent) - strlen("/metald-agent"), "/metald-agent");
        }
        config_free(c);
}

TEST(config_enroll_build_errors)
{
        static const struct {
                const char *yaml, *want;
        } cases[] = {
                { "boot: { enroll: { build: { agent: /x } } }\n", "boot.enroll.build.modules: is required" },
                { "boot: { enroll: { build: } }\n", "boot.enroll.build.modules: is required" },
                { "boot: { enroll: { initrd: initrd.img, build: { modules: /m/6.1 } } }\n",
                  "boot.enroll.initrd and boot.enroll.build are mutually exclusive" },
                { "boot: { enroll: { build: { modules: /m/6.1, compression: lz4 } } }\n",
                  "boot.enroll.build.compression: 'lz4' is not gzip or zstd" },
                { "boot: { enroll: { build: { modules: /m/6.1, extra_modules: [ok, ../evil] } } }\n",
                  "boot.enroll.build.extra_modules[1]: '../evil' is not a module name" },
                { "boot: { enroll: { build: { modules: /m/6.1, extra_modules: e1000 } } }\n",
                  "boot.enroll.build.extra_modules: expected" },
                { "boot: { enroll: { build: { modules: /m/6.1, busybox: \"\" } } }\n",
                  "boot.enroll.build.busybox: must not be empty" },
                { "boot: { enroll: { build: { modules: /m/6.1, kernel: vmlinuz } } }\n",
                  "boot.enroll.build.kernel: unknown key" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct config *c = NULL;
                char err[512] = "";

                CHECK_EQ(load(cases[i].yaml, &c, err, sizeof(err)), -EINVAL);
                if (!strstr(err, cases[i].want))
                        fprintf(stderr, "  got: %s\n", err);
                CHECK(strstr(err, cases[i].want));
        }
}

TEST(initramfs_ensure_from_config)
{
        struct env e;
        struct config *c = NULL;
        char yaml[2048], err[512], path[4096], hex[65], again[65], builtin[1024] = "", p[600];
        const char *t = test_tmpdir();
        size_t o = 0;

        CHECK_EQ(env_setup(&e, NULL, 0), 0);
        /* the default drivers: e1000 as a file, the rest built in */
        CHECK_EQ(put_module(e.modules, "e1000", "mii"), 0);
        CHECK_EQ(put_module(e.modules, "extra_one", ""), 0);
        for (size_t i = 1; i < INITRAMFS_DEFAULT_MODULES; i++)
                o += (size_t)snprintf(builtin + o, sizeof(builtin) - o, "kernel/drivers/%s.ko\n",
                                      initramfs_default_modules[i]);
        snprintf(p, sizeof(p), "%s/modules.builtin", e.modules);
        CHECK_EQ(fake_write(p, builtin, o), 0);
        snprintf(yaml, sizeof(yaml),
                 "state_dir: %s/state\n"
                 "dhcp: { enabled: false }\n"
                 "boot:\n"
                 "  enroll:\n"
                 "    build: { modules: %s, agent: /bin/ls, busybox: %s, extra_modules: [extra-one] }\n",
                 t, e.modules, e.busybox);
        CHECK_EQ(load(yaml, &c, err, sizeof(err)), 0);
        CHECK_EQ(initramfs_ensure(c, c->state_dir, path, sizeof(path), hex), 0);
        CHECK(strstr(path, "/state/enroll/enroll-"));
        CHECK_EQ(file_sha(path, again), 0);
        CHECK_STREQ(hex, again);
        CHECK_EQ(initramfs_ensure(c, c->state_dir, path, 8, hex), -ENAMETOOLONG);
        config_free(c);
}

/* A new Ed25519 key pair at DIR/name.{key,pub}; its public key file into pub, its id into id. */
static int make_key(const char *name, char *pub, size_t cap, char id[MANIFEST_KEY_ID_HEX + 1])
{
        char prefix[512], why[256];

        snprintf(prefix, sizeof(prefix), "%s/%s", test_tmpdir(), name);
        snprintf(pub, cap, "%s.pub", prefix);
        return image_keygen(prefix, id, why, sizeof(why));
}

static int plan_with(struct env *e, const char *const *trusted, size_t n_trusted, const char *const *revoked,
                     size_t n_revoked, struct initramfs_plan *p, char *why, size_t why_len)
{
        e->spec.n_trusted_keys = n_trusted;
        for (size_t i = 0; i < n_trusted; i++)
                e->spec.trusted_keys[i] = trusted[i];
        e->spec.n_revoked_keys = n_revoked;
        for (size_t i = 0; i < n_revoked; i++)
                e->spec.revoked_keys[i] = revoked[i];
        return initramfs_plan(&e->spec, p, why, why_len);
}

TEST(initramfs_carries_the_trusted_keys)
{
        struct initramfs_plan none = { 0 }, pa = { 0 }, pb = { 0 }, pab = { 0 };
        char a[600], b[600], ida[MANIFEST_KEY_ID_HEX + 1], idb[MANIFEST_KEY_ID_HEX + 1], path[128], why[512];
        const struct initramfs_entry *x;
        uint8_t *pem = NULL;
        size_t pem_len = 0;
        struct env e;

        CHECK_EQ(env_setup(&e, default_names, 2), 0);
        CHECK_EQ(make_key("a", a, sizeof(a), ida), 0);
        CHECK_EQ(make_key("b", b, sizeof(b), idb), 0);
        CHECK_EQ(plan_with(&e, NULL, 0, NULL, 0, &none, why, sizeof(why)), 0);
        CHECK_EQ(plan_with(&e, (const char *[]){ a }, 1, NULL, 0, &pa, why, sizeof(why)), 0);
        CHECK_EQ(plan_with(&e, (const char *[]){ b }, 1, NULL, 0, &pb, why, sizeof(why)), 0);
        /* b revoked: left out although it is listed as trusted */
        CHECK_EQ(plan_with(&e, (const char *[]){ a, b }, 2, (const char *[]){ b }, 1, &pab, why, sizeof(why)), 0);
        snprintf(path, sizeof(path), "%s/%s.pub", INITRAMFS_KEYS_DIR, ida);
        x = initramfs_plan_find(&pa, path);
        CHECK(x != NULL);
        CHECK_EQ(x->kind, INITRAMFS_FILE);
        CHECK_EQ(x->mode, 0644);
        CHECK_EQ(fs_read_file(a, 16384, NULL, &pem, &pem_len), 0);
        CHECK_EQ(x->size, pem_len);
        CHECK(memcmp(x->data, pem, pem_len) == 0);     /* the PEM file as it is */
        free(pem);
        CHECK(initramfs_plan_find(&pab, path) != NULL);
        snprintf(path, sizeof(path), "%s/%s.pub", INITRAMFS_KEYS_DIR, idb);
        CHECK(initramfs_plan_find(&pa, path) == NULL);
        CHECK(initramfs_plan_find(&pb, path) != NULL);
        CHECK(initramfs_plan_find(&pab, path) == NULL);
        /* the keyring is part of what names the image */
        CHECK(memcmp(none.digest, pa.digest, sizeof(pa.digest)) != 0);
        CHECK(memcmp(pa.digest, pb.digest, sizeof(pa.digest)) != 0);
        CHECK(memcmp(pa.digest, pab.digest, sizeof(pa.digest)) == 0);  /* a plus revoked b is a alone */
        initramfs_plan_free(&none);
        initramfs_plan_free(&pa);
        initramfs_plan_free(&pb);
        initramfs_plan_free(&pab);
        /* a file that is no key fails the plan, naming it */
        CHECK_EQ(plan_with(&e, (const char *[]){ e.busybox }, 1, NULL, 0, &pa, why, sizeof(why)), -EINVAL);
        CHECK(strstr(why, e.busybox) != NULL);
}

TEST(initramfs_keys_from_config)
{
        struct images_config ic = { .n_trusted_keys = 2, .n_revoked_keys = 1 };
        struct initramfs_spec s = { 0 };

        str_copy(ic.trusted_keys[0], sizeof(ic.trusted_keys[0]), "/etc/metald/site.pub");
        str_copy(ic.trusted_keys[1], sizeof(ic.trusted_keys[1]), "/etc/metald/next.pub");
        str_copy(ic.revoked_keys[0], sizeof(ic.revoked_keys[0]), "/etc/metald/old.pub");
        initramfs_spec_keys_from_config(&ic, &s);
        CHECK_EQ(s.n_trusted_keys, 2);
        CHECK_STREQ(s.trusted_keys[1], "/etc/metald/next.pub");
        CHECK_EQ(s.n_revoked_keys, 1);
        CHECK_STREQ(s.revoked_keys[0], "/etc/metald/old.pub");
}
