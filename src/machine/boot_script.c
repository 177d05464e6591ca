/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/boot_script.h"
#include "metald/syntax.h"
#include "metald/http_query.h"
#include "metald/util.h"

/* Values of ${buildarch} and ${platform} iPXE builds can report. */
static const char *const known_arches[] = { "i386", "x86_64", "arm32", "arm64", "riscv32", "riscv64", "loong64" };
static const char *const known_platforms[] = { "pcbios", "efi" };

/* What iPXE fills into the query of the chain script. */
#define BOOT_IDENTITY_QUERY                                                                    \
        "mac=${netX/mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}&arch=${buildarch}" \
        "&platform=${platform}"

/* iPXE's isspace(): the bytes that separate tokens. */
static bool ipxe_space(uint8_t c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* URL bytes iPXE reads literally inside a token; everything else gets %XX. */
static bool url_byte_safe(uint8_t c)
{
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return true;
        return c && strchr("-._~:/?#[]@!&'()*+,;=%", c);
}

static int url_part(struct buf *out, const char *s, bool token_start)
{
        bool first_unsafe = token_start && syntax_cmdline_word_special(s, strlen(s));
        int r = 0;

        for (size_t i = 0; r == 0 && s[i]; i++) {
                uint8_t c = (uint8_t)s[i];

                if (url_byte_safe(c) && !(i == 0 && first_unsafe))
                        r = buf_append(out, &s[i], 1);
                else
                        r = buf_printf(out, "%%%02X", c);
        }
        return r;
}

int boot_escape_url(struct buf *out, const char *s)
{
        if (!*s)
                return -EINVAL;         /* an empty token would vanish and shift the arguments */
        return url_part(out, s, true);
}

static char word_byte(uint8_t c)
{
        /* '$' is what starts an expansion, '\' at a line's end joins lines */
        if (c < 0x21 || c > 0x7e || c == '$' || c == '\\')
                return '_';
        return (char)c;
}

int boot_escape_words(struct buf *out, const char *s)
{
        size_t i = 0;
        bool first = true;
        int r = 0;

        while (r == 0 && s[i]) {
                size_t start, n;
                bool special;

                while (s[i] && ipxe_space((uint8_t)s[i]))
                        i++;
                start = i;
                while (s[i] && !ipxe_space((uint8_t)s[i]))
                        i++;
                n = i - start;
                if (n == 0)
                        break;
                special = syntax_cmdline_word_special(s + start, n);
                if (!first)
                        r = buf_puts(out, " ");
                for (size_t k = 0; r == 0 && k < n; k++) {
                        char c = (special && (k == 0 || s[start] != '#')) ? '_' : word_byte((uint8_t)s[start + k]);

                        r = buf_append(out, &c, 1);
                }
                first = false;
        }
        return r;
}

static bool in_set(const char *v, const char *const *set, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v, set[i]) == 0)
                        return true;
        return false;
}

static bool printable(const char *s)
{
        for (; *s; s++)
                if ((uint8_t)*s < 0x20 || (uint8_t)*s > 0x7e)
                        return false;
        return true;
}

static bool refuse(const char **ret_why, const char *why)
{
        *ret_why = why;
        return false;
}

/* The parameters one by one; *ret_why names the first that is wrong. */
static bool identity_values(const struct http_query *q, struct boot_identity *id, const char **ret_why)
{
        const struct http_param *p;

        p = http_query_get(q, "mac");
        if (!p || parse_mac(p->value, id->mac) < 0)
                return refuse(ret_why, "the mac parameter is not six hex pairs");
        /* iPXE reports all zero when the firmware has no UUID: that becomes "" */
        p = http_query_get(q, "uuid");
        if (p && uuid_normalize(p->value, p->value_len, id->uuid) < 0)
                return refuse(ret_why, "the uuid parameter is not a canonical UUID");
        p = http_query_get(q, "serial");
        if (p && (p->value_len > BOOT_MAX_SERIAL || !printable(p->value)))
                return refuse(ret_why, "the serial parameter is not printable ASCII of at most 64 bytes");
        if (p)
                memcpy(id->serial, p->value, p->value_len + 1);
        p = http_query_get(q, "arch");
        if (!p || !in_set(p->value, known_arches, ARRAY_SIZE(known_arches)))
                return refuse(ret_why, "the arch parameter is not an architecture iPXE reports");
        memcpy(id->arch, p->value, strlen(p->value) + 1);
        p = http_query_get(q, "platform");
        if (!p || !in_set(p->value, known_platforms, ARRAY_SIZE(known_platforms)))
                return refuse(ret_why, "the platform parameter is not pcbios or efi");
        memcpy(id->platform, p->value, strlen(p->value) + 1);
        return true;
}

enum boot_query_result boot_identity_parse(const char *query, size_t len, struct boot_identity *ret,
                                           const char **ret_why)
{
        static const char *const keys[] = { "mac", "uuid", "serial", "arch", "platform" };
        struct boot_identity id = { 0 };
        struct http_query q;
        bool any = false;

        if (http_query_parse(query, len, &q) < 0) {
                *ret_why = "the boot script URL has a malformed query";
                return BOOT_QUERY_INVALID;
        }
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                size_t n = http_query_count(&q, keys[i]);

                if (n > 1) {
                        *ret_why = "an identity parameter appears more than once";
                        return BOOT_QUERY_INVALID;
                }
                any |= n == 1;
        }
        if (!any)
                return BOOT_QUERY_NONE;
        if (!identity_values(&q, &id, ret_why))
                return BOOT_QUERY_INVALID;
        *ret = id;
        return BOOT_QUERY_OK;
}

int boot_script_chain(const struct boot_view *v, struct buf *out)
{
        int r = buf_puts(out, "#!ipxe\n"
                              "# metald: ask again, telling which machine this is\n"
                              ":identify\n"
                              "chain --replace ");

        if (r == 0)
                r = boot_escape_url(out, v->script_url);
        if (r == 0)
                r = buf_printf(out, "?" BOOT_IDENTITY_QUERY " || goto failed\n"
                                    ":failed\n"
                                    "echo metald: the boot script could not be fetched; trying again in %u seconds\n"
                                    "sleep %u\n"
                                    "goto identify\n",
                               v->retry_delay_s, v->retry_delay_s);
        return r;
}

/* The tail of a script that waits, then fetches the machine's script again (or goes to label). */
static int chain_again(const struct boot_view *v, const char *label, struct buf *out)
{
        int r = buf_printf(out, "sleep %u\n"
                                "chain --replace ",
                           v->retry_delay_s);

        if (r == 0)
                r = boot_escape_url(out, v->script_url);
        if (r == 0)
                r = buf_printf(out, " || goto %s\n", label);
        return r;
}

int boot_script_retry(const struct boot_view *v, const char *why, struct buf *out)
{
        int r = buf_puts(out, "#!ipxe\n"
                              ":retry\n"
                              "echo metald: this machine cannot be booted yet: ");

        if (r == 0)
                r = boot_escape_words(out, why ? why : "no reason given");
        if (r == 0)
                r = buf_printf(out, "\necho metald: trying again in %u seconds\n", v->retry_delay_s);
        return r == 0 ? chain_again(v, "retry", out) : r;
}

int boot_script_local(const struct boot_view *v, const struct boot_identity *id, const char *machine,
                      struct buf *out)
{
        const char *cmd = strcmp(id->platform, "efi") == 0 ? v->local_boot_efi : v->local_boot_bios;
        int r = buf_puts(out, "#!ipxe\n"
                              "echo metald: ");

        if (r == 0)
                r = boot_escape_words(out, machine);
        if (r == 0)
                r = buf_puts(out, " boots its installed system\n");
        /* the command is an operator's iPXE line, checked at load to be one printable line */
        if (r == 0)
                r = buf_printf(out, "%s || goto failed\n", cmd ? cmd : "exit");
        if (r == 0)
                r = buf_printf(out, ":failed\n"
                                    "echo metald: the local disk did not boot; trying again in %u seconds\n",
                               v->retry_delay_s);
        return r == 0 ? chain_again(v, "failed", out) : r;
}

/* base + "/" + path as one URL token. */
static int artifact_url(struct buf *out, const char *base, const char *path)
{
        int r = boot_escape_url(out, base);

        if (r == 0)
                r = buf_puts(out, "/");
        if (r == 0)
                r = url_part(out, path, false);
        return r;
}

static const char *basename_of(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

/*
 * A kernel command line as configured. UEFI iPXE hands the initrd to the
 * kernel's EFI stub only by name, so EFI machines get initrd=<image name>
 * first; iPXE names an image after the last segment of its URL.
 */
static int cmdline_words(struct buf *out, const char *initrd, const char *cmdline, const struct boot_identity *id)
{
        int r = 0;

        if (*initrd && strcmp(id->platform, "efi") == 0) {
                r = buf_puts(out, "initrd=");
                if (r == 0)
                        r = url_part(out, basename_of(initrd), false);
                if (r == 0)
                        r = buf_puts(out, " ");
        }
        return r == 0 ? boot_escape_words(out, cmdline) : r;
}

/* The enrollment kernel's: metald.url and metald.mac tell the agent where metald is and which NIC booted. */
static int kernel_cmdline(struct buf *out, const struct boot_view *v, const struct boot_identity *id)
{
        size_t start = out->len;
        char mac[18];
        int r = cmdline_words(out, v->initrd, v->cmdline, id);

        format_mac(mac, id->mac);
        if (r == 0)
                r = buf_puts(out, out->len > start && out->data[out->len - 1] != ' ' ? " metald.url=" : "metald.url=");
        if (r == 0)
                r = url_part(out, v->base_url, false);
        if (r == 0)
                r = buf_printf(out, " metald.mac=%s", mac);
        /* the nonce is base64url, checked when minted: nothing in it needs escaping */
        if (r == 0 && v->nonce)
                r = buf_printf(out, " metald.nonce=%s", v->nonce);
        return r;
}

int boot_cmdline_shown(const struct boot_view *v, const struct boot_identity *id, struct buf *out)
{
        struct boot_view shown = *v;

        shown.nonce = BOOT_NONCE_SHOWN;
        return kernel_cmdline(out, &shown, id);
}

int boot_script_netboot(const struct boot_view *v, const struct boot_identity *id, const char *machine,
                        const struct boot_netboot *nb, struct buf *out)
{
        int r = buf_puts(out, "#!ipxe\n"
                              "echo metald: ");

        if (r == 0)
                r = boot_escape_words(out, machine);
        if (r == 0)
                r = buf_puts(out, " boots netboot profile ");
        if (r == 0)
                r = boot_escape_words(out, nb->profile);
        if (r == 0)
                r = buf_puts(out, " (unsigned)\nkernel ");
        if (r == 0)
                r = artifact_url(out, v->base_url, nb->kernel);
        if (r == 0)
                r = buf_puts(out, " ");
        if (r == 0)
                r = cmdline_words(out, nb->initrd, nb->cmdline, id);
        if (r == 0)
                r = buf_puts(out, out->data[out->len - 1] == ' ' ? "|| goto failed\n" : " || goto failed\n");
        if (r == 0 && *nb->initrd) {
                r = buf_puts(out, "initrd ");
                if (r == 0)
                        r = artifact_url(out, v->base_url, nb->initrd);
                if (r == 0)
                        r = buf_puts(out, " || goto failed\n");
        }
        if (r == 0)
                r = buf_printf(out, "boot || goto failed\n"
                                    ":failed\n"
                                    "echo metald: the netboot did not boot; trying again in %u seconds\n",
                               v->retry_delay_s);
        return r == 0 ? chain_again(v, "failed", out) : r;
}

/* Renders one {{name}} of the enrollment template; -ENOENT for an unknown name. */
static int placeholder(struct buf *out, const char *name, size_t n, const struct boot_view *v,
                       const struct boot_identity *id)
{
        char mac[18];

#define IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
        if (IS("kernel_url"))
                return artifact_url(out, v->base_url, v->kernel);
        if (IS("initrd_url"))
                return artifact_url(out, v->base_url, v->initrd);
        if (IS("initrd_name"))
                return boot_escape_url(out, basename_of(v->initrd));
        if (IS("cmdline"))
                return kernel_cmdline(out, v, id);
        if (IS("base_url"))
                return boot_escape_url(out, v->base_url);
        if (IS("script_url"))
                return boot_escape_url(out, v->script_url);
        if (IS("mac")) {
                format_mac(mac, id->mac);
                return buf_puts(out, mac);
        }
        if (IS("arch"))
                return buf_puts(out, id->arch);
        if (IS("platform"))
                return buf_puts(out, id->platform);
        if (IS("retry_delay"))
                return buf_printf(out, "%u", v->retry_delay_s);
#undef IS
        return -ENOENT;
}

int boot_script_enroll(const struct boot_view *v, const struct boot_identity *id, struct buf *out,
                       const char **ret_why)
{
        const char *t = v->template_text, *open, *close;
        int r = 0;

        if (!t || strncmp(t, "#!ipxe", 6) != 0 || !ipxe_space((uint8_t)t[6])) {
                *ret_why = "the enrollment template lacks the iPXE script signature";
                return -EINVAL;
        }
        while (r == 0 && (open = strstr(t, "{{"))) {
                close = strstr(open + 2, "}}");
                r = buf_append(out, t, (size_t)(open - t));
                if (r == 0 && close)
                        r = placeholder(out, open + 2, (size_t)(close - open - 2), v, id);
                if (r == -ENOENT || !close) {
                        *ret_why = "the enrollment template has an unknown or unterminated placeholder";
                        return -EINVAL;
                }
                t = close + 2;
        }
        if (r == 0)
                r = buf_puts(out, t);
        if (r == -E2BIG)
                *ret_why = "the rendered enrollment script is too large";
        else if (r < 0 && r != -ENOMEM)
                *ret_why = "the enrollment settings leave a value of the template empty";
        return r;
}

/* The script for a machine that named itself: what the lifecycle decided, rendered. */
static int for_identified(const struct boot_view *v, boot_decide_fn decide, void *userdata, struct buf *out,
                          struct boot_outcome *o)
{
        struct boot_decision d = { .kind = BOOT_SCRIPT_ENROLL };
        struct boot_view dv = *v;
        int r = -EINVAL;

        if (decide)
                decide(&o->identity, userdata, &d);
        o->why = d.why;
        if (d.kind == BOOT_SCRIPT_LOCAL) {
                r = boot_script_local(v, &o->identity, d.machine, out);
        } else if (d.kind == BOOT_SCRIPT_NETBOOT) {
                r = boot_script_netboot(v, &o->identity, d.machine, &d.netboot, out);
        } else if (d.kind == BOOT_SCRIPT_ENROLL && v->unavailable) {
                o->why = v->unavailable;
        } else if (d.kind == BOOT_SCRIPT_ENROLL) {
                dv.nonce = *d.nonce ? d.nonce : NULL;
                r = boot_script_enroll(&dv, &o->identity, out, &o->why);
                if (r == 0)
                        o->why = NULL;
        }
        explicit_bzero(d.nonce, sizeof(d.nonce));
        if (r == 0 || r == -ENOMEM) {
                o->kind = d.kind;
                return r;
        }
        o->kind = BOOT_SCRIPT_RETRY;
        buf_reset(out);
        return boot_script_retry(v, o->why, out);
}

int boot_script_for(const struct boot_view *v, const char *query, size_t query_len, boot_decide_fn decide,
                    void *userdata, struct buf *out, struct boot_outcome *ret)
{
        int r;

        *ret = (struct boot_outcome){ .kind = BOOT_SCRIPT_RETRY };
        switch (boot_identity_parse(query, query_len, &ret->identity, &ret->why)) {
        case BOOT_QUERY_NONE:
                ret->kind = BOOT_SCRIPT_CHAIN;
                return boot_script_chain(v, out);
        case BOOT_QUERY_OK:
                ret->has_identity = true;
                return for_identified(v, decide, userdata, out, ret);
        case BOOT_QUERY_INVALID:
                break;
        }
        r = boot_script_retry(v, ret->why, out);
        return r;
}
