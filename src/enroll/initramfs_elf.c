/* SPDX-License-Identifier: Apache-2.0 */
#include <elf.h>

#include "metald/initramfs.h"
#include "metald/syntax.h"
#include "metald/util.h"

/*
 * Every offset and size below comes from the file: each is checked against
 * the file's length before it is used, with overflow-safe arithmetic, and
 * every string must end with a NUL inside the table it was found in.
 */

#define ELF64_EHDR_BYTES 64
#define ELF64_PHDR_BYTES 56
#define ELF64_SHDR_BYTES 64
#define ELF64_DYN_BYTES  16
#define ELF_MAX_STRING   (CONFIG_MAX_PATH_BYTES - 1)    /* interpreter, run paths */

struct elf {
        const uint8_t *p;
        size_t n;
        bool be;
        uint16_t type, machine;
        uint64_t phoff, shoff;
        uint16_t phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf_seg {
        uint32_t type;
        uint64_t offset, vaddr, filesz;
};

struct elf_sec {
        uint32_t name, type;
        uint64_t offset, size;
};

static bool in_file(const struct elf *e, uint64_t off, uint64_t len)
{
        return off <= e->n && len <= e->n - off;
}

/* Readers for offsets already checked with in_file(). */
static uint64_t rd(const struct elf *e, uint64_t off, unsigned bytes)
{
        uint64_t v = 0;

        for (unsigned i = 0; i < bytes; i++)
                v |= (uint64_t)e->p[off + (e->be ? bytes - 1 - i : i)] << (8 * i);
        return v;
}

static int elf_open(const void *data, size_t size, struct elf *ret)
{
        const uint8_t *p = data;
        struct elf e = { .p = p, .n = size };

        if (size < SELFMAG || memcmp(p, ELFMAG, SELFMAG) != 0)
                return -ENOEXEC;
        if (size < ELF64_EHDR_BYTES)
                return -EBADMSG;
        if (p[EI_CLASS] != ELFCLASS64)
                return -ENOEXEC;
        if ((p[EI_DATA] != ELFDATA2LSB && p[EI_DATA] != ELFDATA2MSB) || p[EI_VERSION] != EV_CURRENT)
                return -EBADMSG;
        e.be = p[EI_DATA] == ELFDATA2MSB;
        e.type = (uint16_t)rd(&e, 16, 2);
        e.machine = (uint16_t)rd(&e, 18, 2);
        e.phoff = rd(&e, 32, 8);
        e.shoff = rd(&e, 40, 8);
        e.phentsize = (uint16_t)rd(&e, 54, 2);
        e.phnum = (uint16_t)rd(&e, 56, 2);
        e.shentsize = (uint16_t)rd(&e, 58, 2);
        e.shnum = (uint16_t)rd(&e, 60, 2);
        e.shstrndx = (uint16_t)rd(&e, 62, 2);
        *ret = e;
        return 0;
}

static int elf_phdrs_check(const struct elf *e)
{
        if (e->phnum == 0)
                return 0;
        /* PN_XNUM moves the count into section 0: no loader-visible object needs it */
        if (e->phnum == PN_XNUM || e->phentsize != ELF64_PHDR_BYTES)
                return -EBADMSG;
        return in_file(e, e->phoff, (uint64_t)e->phnum * ELF64_PHDR_BYTES) ? 0 : -EBADMSG;
}

static struct elf_seg elf_seg(const struct elf *e, size_t i)
{
        uint64_t o = e->phoff + (uint64_t)i * ELF64_PHDR_BYTES;

        return (struct elf_seg){ .type = (uint32_t)rd(e, o, 4), .offset = rd(e, o + 8, 8),
                                 .vaddr = rd(e, o + 16, 8), .filesz = rd(e, o + 32, 8) };
}

static struct elf_sec elf_sec(const struct elf *e, size_t i)
{
        uint64_t o = e->shoff + (uint64_t)i * ELF64_SHDR_BYTES;

        return (struct elf_sec){ .name = (uint32_t)rd(e, o, 4), .type = (uint32_t)rd(e, o + 4, 4),
                                 .offset = rd(e, o + 24, 8), .size = rd(e, o + 32, 8) };
}

/* The NUL-terminated string at off inside the table [tab, tab + tabsz) of the file. */
static const char *elf_str(const struct elf *e, uint64_t tab, uint64_t tabsz, uint64_t off)
{
        const uint8_t *nul;

        if (off >= tabsz)
                return NULL;
        nul = memchr(e->p + tab + off, 0, (size_t)(tabsz - off));
        return nul ? (const char *)(e->p + tab + off) : NULL;
}

/* The file offset of [vaddr, vaddr + len) through the PT_LOAD segment holding all of it. */
static int elf_vaddr_offset(const struct elf *e, uint64_t vaddr, uint64_t len, uint64_t *ret)
{
        for (size_t i = 0; i < e->phnum; i++) {
                struct elf_seg s = elf_seg(e, i);

                if (s.type != PT_LOAD || vaddr < s.vaddr || vaddr - s.vaddr >= s.filesz ||
                    len > s.filesz - (vaddr - s.vaddr))
                        continue;
                if (!in_file(e, s.offset, s.filesz))
                        return -EBADMSG;
                *ret = s.offset + (vaddr - s.vaddr);
                return 0;
        }
        return -EBADMSG;
}

static int elf_interp(const struct elf *e, const struct elf_seg *s, struct elf_dynamic *d)
{
        const char *path;

        if (d->interp || !in_file(e, s->offset, s->filesz))
                return -EBADMSG;
        path = elf_str(e, s->offset, s->filesz, 0);
        if (!path || path[0] != '/' || strlen(path) > ELF_MAX_STRING)
                return -EBADMSG;
        d->interp = path;
        return 0;
}

struct dyn_refs {
        bool have_strtab, have_strsz, have_soname, have_runpath, have_rpath;
        uint64_t strtab, strsz, soname, runpath, rpath;
        uint64_t needed[INITRAMFS_MAX_NEEDED];
        size_t n_needed;
};

static int dyn_once(bool *have, uint64_t *dst, uint64_t v)
{
        if (*have)
                return -EBADMSG;
        *have = true;
        *dst = v;
        return 0;
}

static int dyn_entry(struct dyn_refs *r, int64_t tag, uint64_t val)
{
        switch (tag) {
        case DT_NEEDED:
                if (r->n_needed >= INITRAMFS_MAX_NEEDED)
                        return -E2BIG;
                r->needed[r->n_needed++] = val;
                return 0;
        case DT_STRTAB:
                return dyn_once(&r->have_strtab, &r->strtab, val);
        case DT_STRSZ:
                return dyn_once(&r->have_strsz, &r->strsz, val);
        case DT_SONAME:
                return dyn_once(&r->have_soname, &r->soname, val);
        case DT_RUNPATH:
                return dyn_once(&r->have_runpath, &r->runpath, val);
        case DT_RPATH:
                return dyn_once(&r->have_rpath, &r->rpath, val);
        default:
                return 0;
        }
}

/* Collects the dynamic entries up to DT_NULL, which must come within the segment and the limit. */
static int dyn_scan(const struct elf *e, const struct elf_seg *s, struct dyn_refs *r)
{
        uint64_t count;
        int k;

        if (!in_file(e, s->offset, s->filesz))
                return -EBADMSG;
        count = s->filesz / ELF64_DYN_BYTES;
        for (uint64_t i = 0; i < count; i++) {
                uint64_t o = s->offset + i * ELF64_DYN_BYTES;
                int64_t tag = (int64_t)rd(e, o, 8);

                if (tag == DT_NULL)
                        return 0;
                if (i >= INITRAMFS_MAX_DYNAMIC)
                        return -E2BIG;
                if ((k = dyn_entry(r, tag, rd(e, o + 8, 8))) < 0)
                        return k;
        }
        return -EBADMSG;
}

static bool needed_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 255 || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((uint8_t)s[i] < 0x21 || (uint8_t)s[i] > 0x7e)
                        return false;
        return true;
}

static int dyn_strings(const struct elf *e, const struct dyn_refs *r, struct elf_dynamic *d)
{
        uint64_t tab;

        if (r->n_needed == 0 && !r->have_soname && !r->have_runpath && !r->have_rpath)
                return 0;
        if (!r->have_strtab || !r->have_strsz || elf_vaddr_offset(e, r->strtab, r->strsz, &tab) < 0)
                return -EBADMSG;
        for (size_t i = 0; i < r->n_needed; i++) {
                d->needed[i] = elf_str(e, tab, r->strsz, r->needed[i]);
                if (!d->needed[i] || !needed_name_ok(d->needed[i]))
                        return -EBADMSG;
        }
        d->n_needed = r->n_needed;
        if (r->have_soname && !(d->soname = elf_str(e, tab, r->strsz, r->soname)))
                return -EBADMSG;
        /* ld.so ignores DT_RPATH when DT_RUNPATH is present */
        if (r->have_runpath || r->have_rpath) {
                d->runpath = elf_str(e, tab, r->strsz, r->have_runpath ? r->runpath : r->rpath);
                if (!d->runpath || strlen(d->runpath) > ELF_MAX_STRING)
                        return -EBADMSG;
        }
        return 0;
}

int elf_read_dynamic(const void *data, size_t size, struct elf_dynamic *ret)
{
        struct elf_dynamic d = { 0 };
        struct dyn_refs refs = { 0 };
        struct elf_seg dyn = { 0 };
        bool have_dyn = false;
        struct elf e;
        int r;

        if ((r = elf_open(data, size, &e)) < 0)
                return r;
        if (e.type != ET_EXEC && e.type != ET_DYN)
                return -ENOEXEC;
        if ((r = elf_phdrs_check(&e)) < 0)
                return r;
        for (size_t i = 0; i < e.phnum; i++) {
                struct elf_seg s = elf_seg(&e, i);

                if (s.type == PT_INTERP && (r = elf_interp(&e, &s, &d)) < 0)
                        return r;
                if (s.type == PT_DYNAMIC) {
                        if (have_dyn)
                                return -EBADMSG;
                        have_dyn = true;
                        dyn = s;
                }
        }
        if (have_dyn && ((r = dyn_scan(&e, &dyn, &refs)) < 0 || (r = dyn_strings(&e, &refs, &d)) < 0))
                return r;
        d.type = e.type;
        d.machine = e.machine;
        *ret = d;
        return 0;
}

void initramfs_module_name_normalize(char *s)
{
        for (; *s; s++)
                if (*s == '-')
                        *s = '_';
}

static int modinfo_name(const char *s, size_t len, char dst[INITRAMFS_MAX_MODULE_NAME + 1])
{
        if (len == 0 || len > INITRAMFS_MAX_MODULE_NAME)
                return -EBADMSG;
        memcpy(dst, s, len);
        dst[len] = '\0';
        if (!syntax_module_name(dst))
                return -EBADMSG;
        initramfs_module_name_normalize(dst);
        return 0;
}

static int modinfo_depends(const char *list, struct elf_modinfo *m)
{
        const char *p = list;
        int r;

        if (!*p)
                return 0;
        for (;;) {
                size_t len = strcspn(p, ",");

                if (m->n_depends >= INITRAMFS_MAX_DEPENDS)
                        return -E2BIG;
                if ((r = modinfo_name(p, len, m->depends[m->n_depends])) < 0)
                        return r;
                m->n_depends++;
                if (!p[len])
                        return 0;
                p += len + 1;
        }
}

/* key=value strings, each NUL-terminated, with any number of NULs between them. */
static int modinfo_parse(const uint8_t *p, size_t n, struct elf_modinfo *m)
{
        bool have_name = false, have_depends = false;
        size_t i = 0;
        int r;

        while (i < n) {
                const uint8_t *nul;
                const char *s;

                if (p[i] == 0) {
                        i++;
                        continue;
                }
                nul = memchr(p + i, 0, n - i);
                if (!nul)
                        return -EBADMSG;
                s = (const char *)(p + i);
                if (str_has_prefix(s, "name=")) {
                        if (have_name)
                                return -EBADMSG;
                        have_name = true;
                        if ((r = modinfo_name(s + 5, strlen(s + 5), m->name)) < 0)
                                return r;
                } else if (str_has_prefix(s, "depends=")) {
                        if (have_depends)
                                return -EBADMSG;
                        have_depends = true;
                        if ((r = modinfo_depends(s + 8, m)) < 0)
                                return r;
                }
                i = (size_t)(nul - p) + 1;
        }
        return 0;
}

static int elf_shdrs_check(const struct elf *e, struct elf_sec *ret_shstr)
{
        struct elf_sec shstr;

        /* no sections, or extended numbering (count and string index moved into section 0) */
        if (e->shnum == 0 || e->shentsize != ELF64_SHDR_BYTES || e->shstrndx >= e->shnum)
                return -EBADMSG;
        if (!in_file(e, e->shoff, (uint64_t)e->shnum * ELF64_SHDR_BYTES))
                return -EBADMSG;
        shstr = elf_sec(e, e->shstrndx);
        if (shstr.type != SHT_STRTAB || !in_file(e, shstr.offset, shstr.size))
                return -EBADMSG;
        *ret_shstr = shstr;
        return 0;
}

int elf_read_modinfo(const void *data, size_t size, struct elf_modinfo *ret)
{
        struct elf_sec shstr, modinfo = { 0 };
        struct elf_modinfo m = { 0 };
        bool found = false;
        struct elf e;
        int r;

        if ((r = elf_open(data, size, &e)) < 0)
                return r;
        if (e.type != ET_REL)
                return -ENOEXEC;
        if ((r = elf_shdrs_check(&e, &shstr)) < 0)
                return r;
        for (size_t i = 0; i < e.shnum; i++) {
                struct elf_sec s = elf_sec(&e, i);
                const char *name = elf_str(&e, shstr.offset, shstr.size, s.name);

                if (!name)
                        return -EBADMSG;
                if (strcmp(name, ".modinfo") != 0)
                        continue;
                if (found || s.type == SHT_NOBITS || !in_file(&e, s.offset, s.size))
                        return -EBADMSG;
                found = true;
                modinfo = s;
        }
        if (!found)
                return -ENODATA;
        if ((r = modinfo_parse(e.p + modinfo.offset, (size_t)modinfo.size, &m)) < 0)
                return r;
        *ret = m;
        return 0;
}
