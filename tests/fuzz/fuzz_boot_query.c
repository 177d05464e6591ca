/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot script route: the query iPXE (or anyone) sends, plus the values
 * a configuration could hold (base URL, script URL, kernel, initrd, command
 * line), rendered through the default template. Whatever the bytes, iPXE
 * must read the same script structure as from harmless values: same lines,
 * same commands and terminators, no "${...}" beyond metald's own. Also checks
 * the two escapers directly.
 *
 * Input: newline-separated fields: query, base URL, script URL, kernel,
 * initrd, command line; a missing field keeps its harmless default.
 */
#include <stdlib.h>
#include <string.h>

#include "ipxe_model.h"
#include "metald/boot_script.h"
#include "metald/util.h"

#define FUZZ_FIELDS 6
#define FUZZ_MAX_FIELD 1024

static const char template_text[] =
        "#!ipxe\n"
        "# comment with {{mac}}\n"
        "echo metald: enrollment boot for {{mac}} ({{platform}} {{arch}})\n"
        "kernel {{kernel_url}} {{cmdline}} || goto failed\n"
        "initrd --name {{initrd_name}} {{initrd_url}} || goto failed\n"
        "boot || goto failed\n"
        ":failed\n"
        "echo metald: retrying in {{retry_delay}} seconds, then {{base_url}}\n"
        "sleep {{retry_delay}}\n"
        "chain --replace {{script_url}} || goto failed\n";

static void require(bool ok)
{
        if (!ok)
                abort();
}

static struct boot_view harmless(void)
{
        return (struct boot_view){
                .base_url = "http://10.0.0.1:8080", .script_url = "http://10.0.0.1:8080/boot.ipxe",
                .kernel = "vmlinuz", .initrd = "initrd.img", .cmdline = "quiet", .retry_delay_s = 30,
                .template_text = template_text,
        };
}

static void skeleton(const struct buf *script, struct buf *out, size_t *expansions)
{
        buf_reset(out);
        require(ipxe_model_skeleton(script->data, script->len, false, out, expansions) == 0);
}

/* The skeleton of each kind of script from harmless values. */
static const char *reference(enum boot_script_kind kind, size_t *expansions)
{
        static const char *const queries[] = { "", "mac=52-54-00-00-00-01&arch=x86_64&platform=efi", "mac=x" };
        static struct buf skel[3] = { { .max = 1 << 16 }, { .max = 1 << 16 }, { .max = 1 << 16 } };
        static size_t exp[3];
        struct boot_view v = harmless();
        struct buf out = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
        struct boot_outcome o;

        if (!skel[kind].len) {
                require(boot_script_for(&v, queries[kind], strlen(queries[kind]), NULL, NULL, &out, &o) == 0 && o.kind == kind);
                skeleton(&out, &skel[kind], &exp[kind]);
                buf_free(&out);
        }
        *expansions = exp[kind];
        return skel[kind].data;
}

static bool special(const char *s, size_t n)
{
        return (n == 2 && (!memcmp(s, "||", 2) || !memcmp(s, "&&", 2))) || (n == 1 && *s == ';') ||
               (n > 0 && *s == '#');
}

static void check_escapers(const char *s)
{
        struct buf b = BUF_INIT(4 * FUZZ_MAX_FIELD);
        size_t start = 0;

        if (boot_escape_url(&b, s) == 0) {
                require(b.len > 0 && !special(b.data, b.len));
                for (size_t i = 0; i < b.len; i++)
                        require(!ipxe_model_space(b.data[i]) && !strchr("${}\\", b.data[i]) && (uint8_t)b.data[i] > 0x20);
        }
        buf_reset(&b);
        require(boot_escape_words(&b, s) == 0);
        for (size_t i = 0; i <= b.len; i++) {
                if (i < b.len && b.data[i] != ' ') {
                        require((uint8_t)b.data[i] > 0x20 && (uint8_t)b.data[i] < 0x7f && !strchr("$\\", b.data[i]));
                        continue;
                }
                require(i > start || b.len == 0);       /* single spaces, none at the ends */
                require(!special(b.data + start, i - start));
                start = i + 1;
        }
        buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *f[FUZZ_FIELDS] = { 0 }, *text = malloc(size + 1), *p;
        struct boot_view v = harmless();
        struct buf out = BUF_INIT(BOOT_MAX_SCRIPT_BYTES), skel = BUF_INIT(1 << 20);
        const char **slots[] = { NULL, &v.base_url, &v.script_url, &v.kernel, &v.initrd, &v.cmdline };
        struct boot_outcome o;
        size_t exp, ref_exp;
        const char *ref;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        p = text;
        for (size_t i = 0; i < FUZZ_FIELDS && p; i++) {
                f[i] = p;
                p = strchr(p, '\n');
                if (p)
                        *p++ = '\0';
                if (strlen(f[i]) > FUZZ_MAX_FIELD)
                        f[i][FUZZ_MAX_FIELD] = '\0';
        }
        for (size_t i = 1; i < FUZZ_FIELDS; i++)
                if (f[i] && *f[i]) {
                        *slots[i] = f[i];
                        check_escapers(f[i]);
                }
        require(boot_script_for(&v, f[0], strlen(f[0]), NULL, NULL, &out, &o) == 0);
        require(o.kind != BOOT_SCRIPT_RETRY || (o.why && *o.why));
        require(!memchr(out.data, '\0', out.len) && !memchr(out.data, '\r', out.len));
        skeleton(&out, &skel, &exp);
        ref = reference(o.kind, &ref_exp);
        require(exp == ref_exp && strcmp(skel.data, ref) == 0);
        buf_free(&out);
        buf_free(&skel);
        free(text);
        return 0;
}
