/* SPDX-License-Identifier: Apache-2.0 */
#include <archive.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "elf_fake.h"
#include "metald/initramfs.h"
#include "metald/syntax.h"
#include "test.h"

/* Module trees and library directories built from tiny ELF files under test_tmpdir(). */

static int mkdirs(const char *path)
{
        char tmp[512];

        snprintf(tmp, sizeof(tmp), "%s", path);
        for (char *p = tmp + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        return mkdir(tmp, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* Writes dir/rel as a module whose .modinfo is name=NAME and depends=DEPS. */
static int put_module(const char *dir, const char *rel, const char *name, const char *deps)
{
        static uint8_t elf[4096];
        char mi[512], path[512], *slash;
        int len = snprintf(mi, sizeof(mi), "license=GPL%cname=%s%cdepends=%s", 0, name, 0, deps);
        size_t n = fake_module(elf, sizeof(elf), mi, (size_t)len + 1, NULL);

        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        slash = strrchr(path, '/');
        *slash = '\0';
        if (mkdirs(path) < 0)
                return -EIO;
        *slash = '/';
        return fake_write(path, elf, n);
}

static const char *tree(void)
{
        static char dir[256];

        snprintf(dir, sizeof(dir), "%s/lib/modules/6.1.0-test", test_tmpdir());
        return dir;
}

static int put_builtin(const char *dir, const char *text)
{
        char path[512];

        snprintf(path, sizeof(path), "%s/modules.builtin", dir);
        return fake_write(path, text, strlen(text));
}

static ssize_t position(const struct initramfs_modules *m, const char *name)
{
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(m->mods[i].name, name) == 0)
                        return (ssize_t)i;
        return -1;
}

TEST(modules_closure_and_order)
{
        const char *d = tree();
        const char *names[] = { "top", "other" };
        struct initramfs_modules m = { 0 };
        char why[512];

        CHECK_EQ(put_module(d, "kernel/drivers/top.ko", "top", "left,right,builtin_thing"), 0);
        CHECK_EQ(put_module(d, "kernel/drivers/left.ko", "left", "base"), 0);
        CHECK_EQ(put_module(d, "kernel/drivers/right.ko", "right", "base,pci_hyperv_intf"), 0);
        CHECK_EQ(put_module(d, "kernel/lib/base.ko", "base", ""), 0);
        CHECK_EQ(put_module(d, "kernel/pci/pci-hyperv-intf.ko", "pci_hyperv_intf", ""), 0);
        CHECK_EQ(put_module(d, "kernel/other.ko", "other", "base"), 0);
        CHECK_EQ(put_module(d, "kernel/unused.ko", "unused", "nothing_here"), 0);
        CHECK_EQ(put_builtin(d, "kernel/x/builtin_thing.ko\nkernel/net/unix.ko\n"), 0);
        CHECK_EQ(initramfs_modules_resolve(d, names, 2, 0, &m, why, sizeof(why)), 0);
        CHECK_EQ(m.n, 6);
        CHECK_EQ(m.n_builtin, 1);
        CHECK(position(&m, "base") < position(&m, "left"));
        CHECK(position(&m, "base") < position(&m, "right"));
        CHECK(position(&m, "pci_hyperv_intf") < position(&m, "right"));
        CHECK(position(&m, "left") < position(&m, "top"));
        CHECK(position(&m, "right") < position(&m, "top"));
        CHECK(position(&m, "other") == 5);
        CHECK(position(&m, "unused") < 0);
        CHECK_STREQ(m.mods[position(&m, "pci_hyperv_intf")].path, "kernel/pci/pci-hyperv-intf.ko");
        CHECK(m.mods[0].size > 0);
        initramfs_modules_free(&m);
}

TEST(modules_dash_underscore_equivalence)
{
        const char *d = tree();
        const char *names[] = { "pci-hyperv-intf", "pci_hyperv_intf", "uses_it" };
        struct initramfs_modules m = { 0 };
        char why[512];

        CHECK_EQ(put_module(d, "kernel/pci/pci-hyperv-intf.ko", "pci-hyperv-intf", ""), 0);
        CHECK_EQ(put_module(d, "kernel/uses-it.ko", "uses_it", "pci-hyperv-intf"), 0);
        CHECK_EQ(initramfs_modules_resolve(d, names, 3, 0, &m, why, sizeof(why)), 0);
        CHECK_EQ(m.n, 2);
        CHECK_STREQ(m.mods[0].name, "pci_hyperv_intf");
        CHECK_STREQ(m.mods[1].name, "uses_it");
        initramfs_modules_free(&m);
}

TEST(modules_builtin_skipped)
{
        const char *d = tree();
        const char *names[] = { "unix", "af-packet", "needs_builtin" };
        struct initramfs_modules m = { 0 };
        char why[512];

        CHECK_EQ(put_module(d, "kernel/needs_builtin.ko", "needs_builtin", "unix"), 0);
        CHECK_EQ(put_builtin(d, "kernel/net/unix/unix.ko\nkernel/net/packet/af_packet.ko\n\n"), 0);
        CHECK_EQ(initramfs_modules_resolve(d, names, 3, 0, &m, why, sizeof(why)), 0);
        CHECK_EQ(m.n, 1);
        CHECK_EQ(m.n_builtin, 2);
        CHECK_STREQ(m.mods[0].name, "needs_builtin");
        initramfs_modules_free(&m);
}

TEST(modules_missing_named)
{
        const char *d = tree();
        const char *missing[] = { "e1000" }, *dep[] = { "needs" }, *bad[] = { "../etc" };
        struct initramfs_modules m = { 0 };
        char why[512];

        CHECK_EQ(put_module(d, "kernel/needs.ko", "needs", "gone_dep"), 0);
        CHECK_EQ(initramfs_modules_resolve(d, missing, 1, 0, &m, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, "e1000"));
        CHECK_EQ(initramfs_modules_resolve(d, dep, 1, 0, &m, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, "gone_dep") && strstr(why, "needs"));
        CHECK_EQ(initramfs_modules_resolve(d, bad, 1, 0, &m, why, sizeof(why)), -EINVAL);
        CHECK_EQ(m.n, 0);
        CHECK_EQ(initramfs_modules_resolve("/nonexistent/modules", missing, 1, 0, &m, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, "/nonexistent/modules"));
        /* a missing default is skipped; a missing dependency of one present is still an error */
        CHECK_EQ(initramfs_modules_resolve(d, missing, 1, 1, &m, why, sizeof(why)), 0);
        CHECK_EQ(m.n, 0);
        CHECK_EQ(initramfs_modules_resolve(d, dep, 1, 1, &m, why, sizeof(why)), -ENOENT);
}

TEST(modules_cycle_refused)
{
        const char *d = tree();
        const char *names[] = { "alpha" }, *self[] = { "selfish" };
        struct initramfs_modules m = { 0 };
        char why[512];

        CHECK_EQ(put_module(d, "kernel/alpha.ko", "alpha", "beta"), 0);
        CHECK_EQ(put_module(d, "kernel/beta.ko", "beta", "gamma"), 0);
        CHECK_EQ(put_module(d, "kernel/gamma.ko", "gamma", "alpha"), 0);
        CHECK_EQ(put_module(d, "kernel/selfish.ko", "selfish", "selfish"), 0);
        CHECK_EQ(initramfs_modules_resolve(d, names, 1, 0, &m, why, sizeof(why)), -ELOOP);
        CHECK(strstr(why, "alpha -> beta -> gamma -> alpha"));
        CHECK_EQ(initramfs_modules_resolve(d, self, 1, 0, &m, why, sizeof(why)), -ELOOP);
        CHECK(strstr(why, "selfish -> selfish"));
}

TEST(modules_bad_files)
{
        const char *d = tree();
        const char *liar[] = { "liar" }, *junk[] = { "junk" };
        struct initramfs_modules m = { 0 };
        char why[512], path[512];

        CHECK_EQ(put_module(d, "kernel/liar.ko", "somebody_else", ""), 0);
        CHECK_EQ(initramfs_modules_resolve(d, liar, 1, 0, &m, why, sizeof(why)), -EBADMSG);
        CHECK(strstr(why, "somebody_else"));
        snprintf(path, sizeof(path), "%s/kernel/junk.ko", d);
        CHECK_EQ(fake_write(path, "not an ELF file", 15), 0);
        CHECK_EQ(initramfs_modules_resolve(d, junk, 1, 0, &m, why, sizeof(why)), -ENOEXEC);
        CHECK(strstr(why, "junk.ko"));
}

TEST(modules_symlinks_not_followed)
{
        const char *d = tree();
        const char *names[] = { "outside" };
        struct initramfs_modules m = { 0 };
        char other[512], link[512], why[512];

        snprintf(other, sizeof(other), "%s/elsewhere", test_tmpdir());
        CHECK_EQ(put_module(other, "outside.ko", "outside", ""), 0);
        CHECK_EQ(put_module(d, "kernel/base.ko", "base", ""), 0);
        snprintf(link, sizeof(link), "%s/build", d);
        CHECK_EQ(symlink(other, link), 0);
        CHECK_EQ(initramfs_modules_resolve(d, names, 1, 0, &m, why, sizeof(why)), -ENOENT);
}

TEST(modules_compressed)
{
        static const struct {
                const char *suffix;
                int filter;
        } kinds[] = {
                { ".ko.xz", ARCHIVE_FILTER_XZ }, { ".ko.zst", ARCHIVE_FILTER_ZSTD }, { ".ko.gz", ARCHIVE_FILTER_GZIP },
        };
        const char *d = tree();
        const char *names[] = { "packed_xz", "packed_zst", "packed_gz" };
        struct initramfs_modules m = { 0 };
        char why[512], src[512], dst[512], rel[128], name[32];

        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
                snprintf(name, sizeof(name), "%s", names[i]);
                snprintf(rel, sizeof(rel), "kernel/%s.ko", name);
                CHECK_EQ(put_module(d, rel, name, i ? "packed_xz" : ""), 0);
                snprintf(src, sizeof(src), "%s/%s", d, rel);
                snprintf(dst, sizeof(dst), "%s/kernel/%s%s", d, name, kinds[i].suffix);
                CHECK_EQ(fake_compress(src, dst, kinds[i].filter), 0);
                CHECK_EQ(unlink(src), 0);
        }
        CHECK_EQ(initramfs_modules_resolve(d, names, 3, 0, &m, why, sizeof(why)), 0);
        CHECK_EQ(m.n, 3);
        CHECK_EQ(m.mods[0].unpack, INITRAMFS_UNPACK_XZ);
        CHECK_EQ(m.mods[1].unpack, INITRAMFS_UNPACK_ZSTD);
        CHECK_EQ(m.mods[2].unpack, INITRAMFS_UNPACK_GZIP);
        for (size_t i = 0; i < 3; i++) {
                uint8_t *data = NULL, sha[32];
                size_t len = 0;
                struct elf_modinfo mi;

                snprintf(src, sizeof(src), "%s/%s", d, m.mods[i].path);
                CHECK_EQ(initramfs_module_read(src, m.mods[i].unpack, sha, &data, &len), 0);
                CHECK_EQ(len, m.mods[i].size);
                CHECK_EQ(elf_read_modinfo(data, len, &mi), 0);
                free(data);
                CHECK_STREQ(mi.name, m.mods[i].name);
                CHECK(memcmp(sha, m.mods[i].sha256, 32) == 0);
        }
        initramfs_modules_free(&m);
        /* named .xz but not compressed at all */
        snprintf(dst, sizeof(dst), "%s/kernel/plain.ko.xz", d);
        CHECK_EQ(put_module(d, "kernel/plain.ko.xz", "plain", ""), 0);
        {
                const char *plain[] = { "plain" };

                CHECK_EQ(initramfs_modules_resolve(d, plain, 1, 0, &m, why, sizeof(why)), -EBADMSG);
        }
}

/* The default list */

TEST(modules_default_list_names)
{
        /* the drivers real servers need: NICs, RAID/HBA and disk controllers, QEMU's IDE disk */
        static const char *const wanted[] = {
                "e1000", "e1000e", "igb", "ixgbe", "i40e", "ice", "mlx4_en", "mlx5_core", "bnxt_en", "tg3",
                "qede", "be2net", "sfc", "virtio_net", "virtio_pci", "virtio_blk", "virtio_scsi", "ata_piix",
                "ahci", "nvme", "megaraid_sas", "mpt3sas", "hpsa", "smartpqi", "sd_mod",
        };

        for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
                bool found = false;

                for (size_t j = 0; j < INITRAMFS_DEFAULT_MODULES; j++)
                        found |= strcmp(initramfs_default_modules[j], wanted[i]) == 0;
                if (!found)
                        fprintf(stderr, "  %s is not a default module\n", wanted[i]);
                CHECK(found);
        }
        for (size_t i = 0; i < INITRAMFS_DEFAULT_MODULES; i++) {
                CHECK(syntax_module_name(initramfs_default_modules[i]));
                for (size_t j = 0; j < i; j++)
                        CHECK(strcmp(initramfs_default_modules[i], initramfs_default_modules[j]) != 0);
        }
}

/* The one subdirectory of parent (the lowest name when there are several), as dst. */
static bool first_subdir(const char *parent, char *dst, size_t cap)
{
        DIR *d = opendir(parent);
        struct dirent *de;
        char best[256] = "";

        if (!d)
                return false;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && de->d_type == DT_DIR && (!*best || strcmp(de->d_name, best) < 0))
                        snprintf(best, sizeof(best), "%s", de->d_name);
        closedir(d);
        return *best && (size_t)snprintf(dst, cap, "%s/%s", parent, best) < cap;
}

/*
 * A kernel's module tree: METALD_TEST_MODULES, else the running kernel's,
 * else the Debian 12 kernel the QEMU tests unpack (testboot/modules/VERSION
 * beside this program or one directory up). Only that last one is known to
 * carry every default module, so only there is a missing one an error.
 */
static bool real_tree(char *dst, size_t cap, bool *ret_strict)
{
        const char *env = getenv("METALD_TEST_MODULES");
        char exe[512], dir[600];
        struct utsname u;
        struct stat st;
        ssize_t n;

        *ret_strict = false;
        if (env && *env)
                return (size_t)snprintf(dst, cap, "%s", env) < cap;
        if (uname(&u) == 0 && (size_t)snprintf(dst, cap, "/lib/modules/%s", u.release) < cap &&
            stat(dst, &st) == 0 && S_ISDIR(st.st_mode))
                return true;
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                return false;
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        *ret_strict = true;
        snprintf(dir, sizeof(dir), "%s/testboot/modules", exe);
        if (first_subdir(dir, dst, cap))
                return true;
        snprintf(dir, sizeof(dir), "%s/../testboot/modules", exe);
        return first_subdir(dir, dst, cap);
}

static bool tree_builtin(const char *dir, const char *name)
{
        char path[600], want[80];
        uint8_t *data = NULL;
        size_t len = 0;
        bool found;

        snprintf(path, sizeof(path), "%s/modules.builtin", dir);
        snprintf(want, sizeof(want), "/%s.ko\n", name);
        if (fs_read_file(path, 4u << 20, NULL, &data, &len) < 0)
                return false;
        found = memmem(data, len, want, strlen(want)) != NULL;
        free(data);
        return found;
}

TEST(modules_default_list_real_tree)
{
        /* dependencies that every kernel declares and that /init must load first */
        static const struct {
                const char *module, *needs;
        } deps[] = {
                { "ata_piix", "libata" }, { "ahci", "libata" }, { "libata", "scsi_mod" }, { "sd_mod", "scsi_mod" },
                { "megaraid_sas", "scsi_mod" }, { "mpt3sas", "scsi_transport_sas" },
                { "hpsa", "scsi_transport_sas" }, { "smartpqi", "scsi_transport_sas" },
                { "mlx4_en", "mlx4_core" }, { "qede", "qed" },
        };
        struct initramfs_modules m = { 0 };
        char dir[512], why[1024];
        size_t absent = 0;
        bool strict;
        int r;

        if (!real_tree(dir, sizeof(dir), &strict)) {
                fprintf(stderr, "  skip: no kernel module tree to check the default list against "
                                "(METALD_TEST_MODULES=/lib/modules/VERSION)\n");
                return;
        }
        /* as the image builder asks: every default may be missing, their dependencies may not */
        r = initramfs_modules_resolve(dir, initramfs_default_modules, INITRAMFS_DEFAULT_MODULES,
                                      INITRAMFS_DEFAULT_MODULES, &m, why, sizeof(why));
        if (r < 0)
                fprintf(stderr, "  %s\n", why);
        CHECK_EQ(r, 0);
        for (size_t i = 0; i < INITRAMFS_DEFAULT_MODULES; i++) {
                const char *name = initramfs_default_modules[i];

                if (position(&m, name) >= 0 || tree_builtin(dir, name))
                        continue;
                fprintf(stderr, "  %s: %s has no %s\n", strict ? "FAIL" : "note", dir, name);
                absent++;
        }
        CHECK(!strict || absent == 0);
        for (size_t i = 0; i < ARRAY_SIZE(deps); i++) {
                ssize_t mod = position(&m, deps[i].module), needs = position(&m, deps[i].needs);

                if (mod < 0)
                        continue;
                CHECK(needs >= 0 ? needs < mod : tree_builtin(dir, deps[i].needs));
        }
        initramfs_modules_free(&m);
}

/* Libraries */

static bool has_dest(const struct initramfs_libs *l, const char *dest, bool interp)
{
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->libs[i].dest, dest) == 0 && l->libs[i].interp == interp)
                        return true;
        return false;
}

TEST(libs_real_binary)
{
        struct initramfs_libs l = { 0 };
        char why[512];
        size_t ld = 0;

        CHECK_EQ(initramfs_libs_resolve("/bin/ls", NULL, 0, &l, why, sizeof(why)), 0);
        CHECK(l.n >= 2);
        CHECK(l.libs[0].interp);
        CHECK_STREQ(l.libs[0].dest, "/lib64/ld-linux-x86-64.so.2");
        CHECK(has_dest(&l, "/lib/x86_64-linux-gnu/libc.so.6", false));
        for (size_t i = 0; i < l.n; i++)
                ld += strstr(l.libs[i].dest, "ld-linux") != NULL;
        CHECK_EQ(ld, 1);
        initramfs_libs_free(&l);
        /* the test program links what metald-agent links: curl, TLS, json-c */
        CHECK_EQ(initramfs_libs_resolve("/proc/self/exe", NULL, 0, &l, why, sizeof(why)), 0);
        CHECK(has_dest(&l, "/lib/x86_64-linux-gnu/libcurl.so.4", false));
        CHECK(has_dest(&l, "/lib/x86_64-linux-gnu/libcrypto.so.3", false));
        initramfs_libs_free(&l);
}

static int put_elf(const char *path, const struct fake_dyn *f)
{
        static uint8_t elf[8192];
        size_t n = fake_dynamic(elf, sizeof(elf), f, NULL);

        return n ? fake_write(path, elf, n) : -E2BIG;
}

TEST(libs_fake_tree)
{
        const char *t = test_tmpdir();
        char bin[512], interp[512], p[512], dirs_buf[2][512], why[512];
        const char *dirs[2] = { dirs_buf[0], dirs_buf[1] };
        struct initramfs_libs l = { 0 };

        snprintf(dirs_buf[0], sizeof(dirs_buf[0]), "%s/lib32", t);
        snprintf(dirs_buf[1], sizeof(dirs_buf[1]), "%s/lib", t);
        snprintf(p, sizeof(p), "%s/app/lib", t);
        CHECK_EQ(mkdirs(p), 0);
        CHECK_EQ(mkdirs(dirs[0]), 0);
        CHECK_EQ(mkdirs(dirs[1]), 0);
        snprintf(interp, sizeof(interp), "%s/lib/ld-fake.so.1", t);
        CHECK_EQ(put_elf(interp, &(struct fake_dyn){ 0 }), 0);
        snprintf(bin, sizeof(bin), "%s/app/bin", t);
        CHECK_EQ(put_elf(bin, &(struct fake_dyn){ .type = ET_EXEC, .interp = interp, .runpath = "$ORIGIN/lib:/nowhere",
                                                  .needed = { "liba.so.1", "ld-fake.so.1" }, .n_needed = 2 }), 0);
        /* liba comes from the run path; it needs libb (found in the second directory only: the
         * first holds one for another machine) and liba again (a cycle, which is fine) */
        snprintf(p, sizeof(p), "%s/app/lib/liba.so.1", t);
        CHECK_EQ(put_elf(p, &(struct fake_dyn){ .needed = { "libb.so.2", "liba.so.1" }, .n_needed = 2 }), 0);
        snprintf(p, sizeof(p), "%s/libb.so.2", dirs[0]);
        CHECK_EQ(put_elf(p, &(struct fake_dyn){ .machine = EM_AARCH64 }), 0);
        snprintf(p, sizeof(p), "%s/libb.so.2", dirs[1]);
        CHECK_EQ(put_elf(p, &(struct fake_dyn){ .needed = { "liba.so.1" }, .n_needed = 1 }), 0);
        CHECK_EQ(initramfs_libs_resolve(bin, dirs, 2, &l, why, sizeof(why)), 0);
        CHECK_EQ(l.n, 3);
        CHECK(has_dest(&l, interp, true));
        snprintf(p, sizeof(p), "%s/app/lib/liba.so.1", t);
        CHECK(has_dest(&l, p, false));
        snprintf(p, sizeof(p), "%s/libb.so.2", dirs[1]);
        CHECK(has_dest(&l, p, false));
        initramfs_libs_free(&l);

        /* a library nobody has */
        CHECK_EQ(put_elf(bin, &(struct fake_dyn){ .type = ET_EXEC, .needed = { "libnothere.so.9" }, .n_needed = 1 }), 0);
        CHECK_EQ(initramfs_libs_resolve(bin, dirs, 2, &l, why, sizeof(why)), -ENOENT);
        CHECK(strstr(why, "libnothere.so.9"));
        /* a static binary needs nothing */
        CHECK_EQ(put_elf(bin, &(struct fake_dyn){ .type = ET_EXEC, .no_dynamic = true }), 0);
        CHECK_EQ(initramfs_libs_resolve(bin, dirs, 2, &l, why, sizeof(why)), 0);
        CHECK_EQ(l.n, 0);
        initramfs_libs_free(&l);
        /* not ELF at all */
        CHECK_EQ(fake_write(bin, "#!/bin/sh\n", 10), 0);
        CHECK_EQ(initramfs_libs_resolve(bin, dirs, 2, &l, why, sizeof(why)), -ENOEXEC);
}
