/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Tiny ELF64 little-endian files for the initramfs tests: a kernel module
 * (relocatable, with .modinfo and .shstrtab) and a dynamic executable or
 * shared object (PT_LOAD over the whole file, PT_INTERP, PT_DYNAMIC and a
 * string table). Offsets are fixed so tests can corrupt single fields.
 */
#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKE_EHDR   64
#define FAKE_PHDR   56
#define FAKE_SHDR   64

static inline void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static inline void fake_ehdr(uint8_t *p, uint16_t type, uint16_t machine)
{
        memset(p, 0, FAKE_EHDR);
        memcpy(p, ELFMAG, SELFMAG);
        p[EI_CLASS] = ELFCLASS64;
        p[EI_DATA] = ELFDATA2LSB;
        p[EI_VERSION] = EV_CURRENT;
        put16(p + 16, type);
        put16(p + 18, machine);
        put32(p + 20, EV_CURRENT);
        put16(p + 52, FAKE_EHDR);
}

/* Field offsets of a fake module, for tests that break one. */
struct fake_module_layout {
        size_t modinfo_off, modinfo_len, shstr_off, shoff;
};

/*
 * A relocatable ELF64 with sections: [0] null, [1] .modinfo, [2] .shstrtab.
 * modinfo is copied as given (len bytes: include the NULs you want).
 */
static inline size_t fake_module(uint8_t *out, size_t cap, const char *modinfo, size_t len,
                                 struct fake_module_layout *lay)
{
        static const char shstr[] = "\0.modinfo\0.shstrtab";        /* names at 1 and 10 */
        size_t mi = FAKE_EHDR, ss = mi + len, sh = (ss + sizeof(shstr) + 7) & ~(size_t)7;
        size_t total = sh + 3 * FAKE_SHDR;

        if (total > cap)
                return 0;
        memset(out, 0, total);
        fake_ehdr(out, ET_REL, EM_X86_64);
        put64(out + 40, sh);                    /* e_shoff */
        put16(out + 58, FAKE_SHDR);
        put16(out + 60, 3);                     /* e_shnum */
        put16(out + 62, 2);                     /* e_shstrndx */
        memcpy(out + mi, modinfo, len);
        memcpy(out + ss, shstr, sizeof(shstr));
        put32(out + sh + FAKE_SHDR + 0, 1);
        put32(out + sh + FAKE_SHDR + 4, SHT_PROGBITS);
        put64(out + sh + FAKE_SHDR + 24, mi);
        put64(out + sh + FAKE_SHDR + 32, len);
        put32(out + sh + 2 * FAKE_SHDR + 0, 10);
        put32(out + sh + 2 * FAKE_SHDR + 4, SHT_STRTAB);
        put64(out + sh + 2 * FAKE_SHDR + 24, ss);
        put64(out + sh + 2 * FAKE_SHDR + 32, sizeof(shstr));
        if (lay)
                *lay = (struct fake_module_layout){ mi, len, ss, sh };
        return total;
}

struct fake_dyn {
        uint16_t type;                  /* 0: ET_DYN */
        uint16_t machine;               /* 0: EM_X86_64 */
        const char *interp;             /* NULL: none */
        const char *needed[8];
        size_t n_needed;
        const char *runpath;
        bool no_dynamic;                /* a static executable */
};

struct fake_dyn_layout {
        size_t phoff, interp_off, strtab_off, strsz, dyn_off, n_dyn;
};

/* Program headers: [0] PT_LOAD (whole file, vaddr 0), [1] PT_INTERP, [2] PT_DYNAMIC. */
static inline size_t fake_dynamic(uint8_t *out, size_t cap, const struct fake_dyn *f, struct fake_dyn_layout *lay)
{
        size_t ph = FAKE_EHDR, interp = ph + 3 * FAKE_PHDR, strtab, o, dyn, n_dyn = 0, total;
        size_t ilen = f->interp ? strlen(f->interp) + 1 : 0;
        uint16_t phnum = 1;

        strtab = interp + ilen;
        o = strtab + 1;
        for (size_t i = 0; i < f->n_needed; i++)
                o += strlen(f->needed[i]) + 1;
        o += f->runpath ? strlen(f->runpath) + 1 : 0;
        dyn = (o + 7) & ~(size_t)7;
        total = dyn + (f->n_needed + 4) * 16;
        if (total > cap)
                return 0;
        memset(out, 0, total);
        fake_ehdr(out, f->type ? f->type : ET_DYN, f->machine ? f->machine : EM_X86_64);
        put64(out + 32, ph);
        put16(out + 54, FAKE_PHDR);
        if (f->interp)
                memcpy(out + interp, f->interp, ilen);
        o = strtab + 1;
        for (size_t i = 0; i < f->n_needed; i++) {
                put64(out + dyn + 16 * n_dyn, DT_NEEDED);
                put64(out + dyn + 16 * n_dyn++ + 8, o - strtab);
                memcpy(out + o, f->needed[i], strlen(f->needed[i]) + 1);
                o += strlen(f->needed[i]) + 1;
        }
        if (f->runpath) {
                put64(out + dyn + 16 * n_dyn, DT_RUNPATH);
                put64(out + dyn + 16 * n_dyn++ + 8, o - strtab);
                memcpy(out + o, f->runpath, strlen(f->runpath) + 1);
                o += strlen(f->runpath) + 1;
        }
        put64(out + dyn + 16 * n_dyn, DT_STRTAB);
        put64(out + dyn + 16 * n_dyn++ + 8, strtab);
        put64(out + dyn + 16 * n_dyn, DT_STRSZ);
        put64(out + dyn + 16 * n_dyn++ + 8, o - strtab);
        n_dyn++;                                /* DT_NULL */
        /* PT_LOAD over everything */
        put32(out + ph, PT_LOAD);
        put64(out + ph + 32, total);
        put64(out + ph + 40, total);
        if (f->interp) {
                put32(out + ph + FAKE_PHDR * phnum, PT_INTERP);
                put64(out + ph + FAKE_PHDR * phnum + 8, interp);
                put64(out + ph + FAKE_PHDR * phnum + 16, interp);
                put64(out + ph + FAKE_PHDR * phnum + 32, ilen);
                phnum++;
        }
        if (!f->no_dynamic) {
                put32(out + ph + FAKE_PHDR * phnum, PT_DYNAMIC);
                put64(out + ph + FAKE_PHDR * phnum + 8, dyn);
                put64(out + ph + FAKE_PHDR * phnum + 16, dyn);
                put64(out + ph + FAKE_PHDR * phnum + 32, n_dyn * 16);
                phnum++;
        }
        put16(out + 56, phnum);
        if (lay)
                *lay = (struct fake_dyn_layout){ ph, interp, strtab, o - strtab, dyn, n_dyn };
        return total;
}

static inline int fake_write(const char *path, const void *p, size_t n)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        bool ok;

        if (fd < 0)
                return -errno;
        ok = write(fd, p, n) == (ssize_t)n;
        close(fd);
        return ok ? 0 : -EIO;
}

/* Compresses the file src into dst with libarchive's raw format and filter (ARCHIVE_FILTER_*). */
static inline int fake_compress(const char *src, const char *dst, int filter)
{
        struct archive *a = archive_write_new();
        struct archive_entry *e = archive_entry_new();
        uint8_t data[16384];
        ssize_t len;
        int fd = open(src, O_RDONLY | O_CLOEXEC), r = 0;

        len = fd < 0 ? -1 : read(fd, data, sizeof(data));
        if (fd >= 0)
                close(fd);
        if (len < 0 || archive_write_add_filter(a, filter) != ARCHIVE_OK || archive_write_set_format_raw(a) != ARCHIVE_OK ||
            archive_write_open_filename(a, dst) != ARCHIVE_OK)
                r = -EIO;
        if (r == 0) {
                archive_entry_set_pathname(e, "data");
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_size(e, len);
                if (archive_write_header(a, e) != ARCHIVE_OK || archive_write_data(a, data, (size_t)len) != len ||
                    archive_write_close(a) != ARCHIVE_OK)
                        r = -EIO;
        }
        archive_entry_free(e);
        archive_write_free(a);
        return r;
}
