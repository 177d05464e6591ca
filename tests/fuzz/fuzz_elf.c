/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a module tree or a library directory controls: the bytes of an ELF
 * file. Both readers run on every input (the dynamic section and interpreter
 * of an executable or shared object, the .modinfo of a kernel module);
 * whatever they return must lie inside the input, be NUL-terminated there
 * and respect the limits. Invariants abort.
 */
#include <stdlib.h>
#include <string.h>

#include "metald/initramfs.h"
#include "metald/syntax.h"

static void require(bool ok)
{
        if (!ok)
                abort();
}

/* A returned string starts inside the input and its NUL is inside it too. */
static void check_str(const char *s, const uint8_t *data, size_t size)
{
        const uint8_t *p = (const uint8_t *)s;

        require(p >= data && p < data + size);
        require(memchr(p, 0, size - (size_t)(p - data)) != NULL);
}

static void check_dynamic(const uint8_t *data, size_t size)
{
        struct elf_dynamic d;

        if (elf_read_dynamic(data, size, &d) < 0)
                return;
        require(d.n_needed <= INITRAMFS_MAX_NEEDED);
        if (d.interp) {
                check_str(d.interp, data, size);
                require(d.interp[0] == '/');
        }
        if (d.runpath)
                check_str(d.runpath, data, size);
        if (d.soname)
                check_str(d.soname, data, size);
        for (size_t i = 0; i < d.n_needed; i++) {
                check_str(d.needed[i], data, size);
                require(d.needed[i][0] && !strchr(d.needed[i], '/'));
        }
}

static void check_modinfo(const uint8_t *data, size_t size)
{
        struct elf_modinfo m;

        if (elf_read_modinfo(data, size, &m) < 0)
                return;
        require(m.n_depends <= INITRAMFS_MAX_DEPENDS);
        require(!*m.name || (syntax_module_name(m.name) && !strchr(m.name, '-')));
        for (size_t i = 0; i < m.n_depends; i++)
                require(syntax_module_name(m.depends[i]) && !strchr(m.depends[i], '-'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* an exact-size copy, so reading one byte past the input is caught */
        uint8_t *copy = malloc(size ? size : 1);

        if (!copy)
                return 0;
        memcpy(copy, data, size);
        check_dynamic(copy, size);
        check_modinfo(copy, size);
        free(copy);
        return 0;
}
