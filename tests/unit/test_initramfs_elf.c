/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "elf_fake.h"
#include "metald/initramfs.h"
#include "metald/syntax.h"
#include "test.h"

#define MI(s) s, sizeof(s)      /* a .modinfo literal with its final NUL */

static uint8_t buf[16384];

static size_t std_dynamic(struct fake_dyn_layout *lay)
{
        struct fake_dyn f = {
                .interp = "/lib64/ld-linux-x86-64.so.2", .needed = { "libfoo.so.1", "libc.so.6" }, .n_needed = 2,
                .runpath = "$ORIGIN/../lib",
        };

        return fake_dynamic(buf, sizeof(buf), &f, lay);
}

TEST(elf_dynamic_fields)
{
        struct elf_dynamic d;
        size_t n = std_dynamic(NULL);

        CHECK(n > 0);
        CHECK_EQ(elf_read_dynamic(buf, n, &d), 0);
        CHECK_EQ(d.type, ET_DYN);
        CHECK_EQ(d.machine, EM_X86_64);
        CHECK_STREQ(d.interp, "/lib64/ld-linux-x86-64.so.2");
        CHECK_EQ(d.n_needed, 2);
        CHECK_STREQ(d.needed[0], "libfoo.so.1");
        CHECK_STREQ(d.needed[1], "libc.so.6");
        CHECK_STREQ(d.runpath, "$ORIGIN/../lib");
        CHECK(d.soname == NULL);
}

TEST(elf_dynamic_static_executable)
{
        struct fake_dyn f = { .type = ET_EXEC, .no_dynamic = true };
        struct elf_dynamic d;
        size_t n = fake_dynamic(buf, sizeof(buf), &f, NULL);

        CHECK_EQ(elf_read_dynamic(buf, n, &d), 0);
        CHECK(d.interp == NULL);
        CHECK_EQ(d.n_needed, 0);
        CHECK_EQ(d.type, ET_EXEC);
}

TEST(elf_dynamic_real_binaries)
{
        uint8_t *data = NULL;
        size_t len = 0;
        struct elf_dynamic d;
        bool libc = false;

        CHECK_EQ(fs_read_file("/bin/ls", INITRAMFS_MAX_ELF_BYTES, NULL, &data, &len), 0);
        CHECK_EQ(elf_read_dynamic(data, len, &d), 0);
        CHECK(d.interp && strstr(d.interp, "ld-linux"));
        for (size_t i = 0; i < d.n_needed; i++)
                libc |= strcmp(d.needed[i], "libc.so.6") == 0;
        free(data);
        CHECK(libc);
        /* a shared object has no interpreter of its own to report here, but a soname */
        CHECK_EQ(fs_read_file("/lib/x86_64-linux-gnu/libc.so.6", INITRAMFS_MAX_ELF_BYTES, NULL, &data, &len), 0);
        CHECK_EQ(elf_read_dynamic(data, len, &d), 0);
        free(data);
        CHECK_EQ(d.type, ET_DYN);
}

/* Every prefix of a valid file: no reads outside it, and a clean error until it is whole. */
TEST(elf_truncated_everywhere)
{
        struct elf_dynamic d;
        struct elf_modinfo m;
        size_t n = std_dynamic(NULL), nm;

        for (size_t i = 0; i < n; i++) {
                uint8_t *copy = malloc(i ? i : 1);

                memcpy(copy, buf, i);
                CHECK(elf_read_dynamic(copy, i, &d) < 0);
                free(copy);
        }
        nm = fake_module(buf, sizeof(buf), MI("name=a\0depends=b,c"), NULL);
        for (size_t i = 0; i < nm; i++) {
                uint8_t *copy = malloc(i ? i : 1);

                memcpy(copy, buf, i);
                CHECK(elf_read_modinfo(copy, i, &m) < 0);
                free(copy);
        }
}

struct dyn_case {
        const char *what;
        size_t field;           /* 0 = no change */
        enum { W16, W32, W64, BYTE } width;
        uint64_t value;
        int r;
};

TEST(elf_dynamic_hostile)
{
        struct fake_dyn_layout L;
        size_t n = std_dynamic(&L);
        size_t ph_interp = L.phoff + FAKE_PHDR, ph_dyn = L.phoff + 2 * FAKE_PHDR, ph_load = L.phoff;
        const struct dyn_case cases[] = {
                { "bad magic", 1, BYTE, 'X', -ENOEXEC },
                { "ELF32", EI_CLASS, BYTE, ELFCLASS32, -ENOEXEC },
                { "bad byte order", EI_DATA, BYTE, 7, -EBADMSG },
                { "bad version", EI_VERSION, BYTE, 9, -EBADMSG },
                { "relocatable", 16, W16, ET_REL, -ENOEXEC },
                { "phoff past the end", 32, W64, n, -EBADMSG },
                { "phoff wraps", 32, W64, UINT64_MAX - 8, -EBADMSG },
                { "huge phnum", 56, W16, 0xfffe, -EBADMSG },
                { "PN_XNUM", 56, W16, PN_XNUM, -EBADMSG },
                { "odd phentsize", 54, W16, 32, -EBADMSG },
                { "interp past the end", ph_interp + 8, W64, n + 1, -EBADMSG },
                { "interp size wraps", ph_interp + 32, W64, UINT64_MAX, -EBADMSG },
                { "interp without NUL", ph_interp + 32, W64, 4, -EBADMSG },
                { "interp relative", L.interp_off, BYTE, 'l', -EBADMSG },
                { "dynamic past the end", ph_dyn + 8, W64, n, -EBADMSG },
                { "dynamic huge", ph_dyn + 32, W64, UINT64_MAX / 2, -EBADMSG },
                { "dynamic without DT_NULL", ph_dyn + 32, W64, (L.n_dyn - 1) * 16, -EBADMSG },
                { "second PT_DYNAMIC", ph_interp, W32, PT_DYNAMIC, -EBADMSG },
                { "second PT_INTERP", ph_dyn, W32, PT_INTERP, -EBADMSG },
                { "needed past strsz", L.dyn_off + 8, W64, L.strsz, -EBADMSG },
                { "needed offset huge", L.dyn_off + 8, W64, UINT64_MAX, -EBADMSG },
                { "strtab not loaded", L.dyn_off + 16 * 3 + 8, W64, 1u << 30, -EBADMSG },
                { "strtab past PT_LOAD", ph_load + 32, W64, L.strtab_off + 4, -EBADMSG },
                { "PT_LOAD past the end", ph_load + 32, W64, UINT64_MAX, -EBADMSG },
                { "strsz huge", L.dyn_off + 16 * 4 + 8, W64, UINT64_MAX, -EBADMSG },
                { "strtab without NUL", L.dyn_off + 16 * 4 + 8, W64, L.strsz - 1, -EBADMSG },
                { "second DT_STRTAB", L.dyn_off + 16 * 2, W64, DT_STRTAB, -EBADMSG },
                { "needed with a slash", L.strtab_off + 4, BYTE, '/', -EBADMSG },
                { "needed empty", L.strtab_off + 1, BYTE, 0, -EBADMSG },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                uint8_t copy[sizeof(buf)];
                struct elf_dynamic d;
                int r;

                memcpy(copy, buf, n);
                switch (cases[i].width) {
                case W16:
                        put16(copy + cases[i].field, (uint16_t)cases[i].value);
                        break;
                case W32:
                        put32(copy + cases[i].field, (uint32_t)cases[i].value);
                        break;
                case W64:
                        put64(copy + cases[i].field, cases[i].value);
                        break;
                case BYTE:
                        copy[cases[i].field] = (uint8_t)cases[i].value;
                        break;
                }
                r = elf_read_dynamic(copy, n, &d);
                if (r != cases[i].r)
                        fprintf(stderr, "  case: %s\n", cases[i].what);
                CHECK_EQ(r, cases[i].r);
        }
}

TEST(elf_dynamic_too_many)
{
        struct fake_dyn f = { .n_needed = 8 };
        static uint8_t big[(INITRAMFS_MAX_DYNAMIC + 16) * 16 + 4096];
        struct fake_dyn_layout L;
        struct elf_dynamic d;
        size_t n;

        for (size_t i = 0; i < 8; i++)
                f.needed[i] = "libx.so";
        n = fake_dynamic(big, sizeof(big), &f, &L);
        CHECK_EQ(elf_read_dynamic(big, n, &d), 0);
        CHECK_EQ(d.n_needed, 8);
        /* more DT_NEEDED than the limit: repeat the first entry over a longer table */
        {
                size_t count = INITRAMFS_MAX_NEEDED + 1, dyn = L.dyn_off, total = dyn + (count + 3) * 16;
                uint8_t strtab_entry[16], strsz_entry[16];

                memcpy(strtab_entry, big + dyn + 16 * 8, 16);
                memcpy(strsz_entry, big + dyn + 16 * 9, 16);
                for (size_t i = 0; i < count; i++)
                        memcpy(big + dyn + 16 * i, big + dyn, 16);
                memcpy(big + dyn + 16 * count, strtab_entry, 16);
                memcpy(big + dyn + 16 * (count + 1), strsz_entry, 16);
                memset(big + dyn + 16 * (count + 2), 0, 16);
                put64(big + L.phoff + 32, total);
                put64(big + L.phoff + 40, total);
                put64(big + L.phoff + FAKE_PHDR + 32, (count + 3) * 16);
                CHECK_EQ(elf_read_dynamic(big, total, &d), -E2BIG);
        }
        /* a dynamic table longer than the limit with no DT_NULL in reach */
        {
                size_t count = INITRAMFS_MAX_DYNAMIC + 2, dyn = L.dyn_off, total = dyn + count * 16;

                for (size_t i = 0; i < count; i++) {
                        put64(big + dyn + 16 * i, DT_DEBUG);
                        put64(big + dyn + 16 * i + 8, 0);
                }
                put64(big + L.phoff + 32, total);
                put64(big + L.phoff + 40, total);
                put64(big + L.phoff + FAKE_PHDR + 32, count * 16);
                CHECK_EQ(elf_read_dynamic(big, total, &d), -E2BIG);
        }
}

TEST(elf_modinfo_fields)
{
        struct elf_modinfo m;
        size_t n = fake_module(buf, sizeof(buf), MI("license=GPL\0\0\0name=pci-hyperv-intf\0depends=mlxfw,pci-hyperv-intf\0vermagic=6.1"), NULL);

        CHECK_EQ(elf_read_modinfo(buf, n, &m), 0);
        CHECK_STREQ(m.name, "pci_hyperv_intf");
        CHECK_EQ(m.n_depends, 2);
        CHECK_STREQ(m.depends[0], "mlxfw");
        CHECK_STREQ(m.depends[1], "pci_hyperv_intf");
        n = fake_module(buf, sizeof(buf), MI("depends="), NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), 0);
        CHECK_EQ(m.n_depends, 0);
        CHECK_STREQ(m.name, "");
}

TEST(elf_modinfo_real_module)
{
        const char *path = "build/testboot/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko";
        uint8_t *data = NULL;
        size_t len = 0;
        struct elf_modinfo m;

        if (access(path, R_OK) != 0)
                return;         /* tests/integration/testboot.sh has not run */
        CHECK_EQ(fs_read_file(path, INITRAMFS_MAX_ELF_BYTES, NULL, &data, &len), 0);
        CHECK_EQ(elf_read_modinfo(data, len, &m), 0);
        free(data);
        CHECK_STREQ(m.name, "ext4");
        CHECK_EQ(m.n_depends, 3);
}

TEST(elf_modinfo_hostile)
{
        struct fake_module_layout L;
        struct elf_modinfo m;
        size_t n;
        uint8_t copy[sizeof(buf)];
        char many[INITRAMFS_MAX_DEPENDS * 3 + 32] = "depends=";

        /* the last string runs off the end of the section */
        n = fake_module(buf, sizeof(buf), "name=a\0depends=b", 16, NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), -EBADMSG);
        n = fake_module(buf, sizeof(buf), MI("name=a\0name=b"), NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), -EBADMSG);
        n = fake_module(buf, sizeof(buf), MI("depends=a\0depends=b"), NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), -EBADMSG);
        n = fake_module(buf, sizeof(buf), MI("depends=a,,b"), NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), -EBADMSG);
        n = fake_module(buf, sizeof(buf), MI("depends=a,"), NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), -EBADMSG);
        n = fake_module(buf, sizeof(buf), MI("depends=../../etc"), NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), -EBADMSG);
        n = fake_module(buf, sizeof(buf), MI("name=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), -EBADMSG);
        for (size_t i = 0; i <= INITRAMFS_MAX_DEPENDS; i++)
                strcat(many, i ? ",m" : "m");
        n = fake_module(buf, sizeof(buf), many, strlen(many) + 1, NULL);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), -E2BIG);

        n = fake_module(buf, sizeof(buf), MI("name=a"), &L);
        CHECK_EQ(elf_read_modinfo(buf, n, &m), 0);
#define MUTATE(stmt, expect)                                                   \
        do {                                                                   \
                memcpy(copy, buf, n);                                          \
                stmt;                                                          \
                CHECK_EQ(elf_read_modinfo(copy, n, &m), expect);               \
        } while (0)
        MUTATE(put16(copy + 16, ET_DYN), -ENOEXEC);
        MUTATE(put16(copy + 60, 0), -EBADMSG);                          /* no sections / extended numbering */
        MUTATE(put16(copy + 62, 3), -EBADMSG);                          /* shstrndx out of range */
        MUTATE(put16(copy + 62, SHN_XINDEX), -EBADMSG);
        MUTATE(put16(copy + 58, 40), -EBADMSG);                         /* shentsize */
        MUTATE(put64(copy + 40, n), -EBADMSG);                          /* shoff past the end */
        MUTATE(put64(copy + 40, UINT64_MAX - 64), -EBADMSG);            /* shoff wraps */
        MUTATE(put16(copy + 60, 0xffff), -EBADMSG);                     /* table past the end */
        MUTATE(put32(copy + L.shoff + 2 * FAKE_SHDR + 4, SHT_PROGBITS), -EBADMSG);      /* shstrtab type */
        MUTATE(put64(copy + L.shoff + 2 * FAKE_SHDR + 32, UINT64_MAX), -EBADMSG);       /* shstrtab size */
        MUTATE(put64(copy + L.shoff + 2 * FAKE_SHDR + 32, 5), -EBADMSG);                /* names without NUL */
        MUTATE(put32(copy + L.shoff + FAKE_SHDR, 1000), -EBADMSG);                      /* name offset */
        MUTATE(put64(copy + L.shoff + FAKE_SHDR + 24, n), -EBADMSG);                    /* .modinfo offset */
        MUTATE(put64(copy + L.shoff + FAKE_SHDR + 32, UINT64_MAX), -EBADMSG);           /* .modinfo size */
        MUTATE(put32(copy + L.shoff + FAKE_SHDR + 4, SHT_NOBITS), -EBADMSG);
        MUTATE(put32(copy + L.shoff + 2 * FAKE_SHDR, 1), -EBADMSG);                     /* two .modinfo */
        MUTATE(put32(copy + L.shoff + FAKE_SHDR, 10), -ENODATA);                        /* none */
        MUTATE(put64(copy + L.shoff + FAKE_SHDR + 32, L.modinfo_len - 1), -EBADMSG);    /* no final NUL */
#undef MUTATE
}

TEST(module_name_rules)
{
        char s[64] = "snd-hda-codec";

        CHECK(syntax_module_name("e1000e"));
        CHECK(syntax_module_name("pci-hyperv-intf"));
        CHECK(!syntax_module_name(""));
        CHECK(!syntax_module_name("a/b"));
        CHECK(!syntax_module_name("a.ko"));
        CHECK(!syntax_module_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        initramfs_module_name_normalize(s);
        CHECK_STREQ(s, "snd_hda_codec");
}
