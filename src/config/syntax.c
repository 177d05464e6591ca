/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The syntax of values that reach metald from its configuration and its APIs
 * and end up in iPXE scripts, kernel command lines or module lists. The
 * configuration checks them at load time; the rooms that use the values check
 * them again where the value comes from elsewhere.
 */
#include <ctype.h>

#include "metald/limits.h"
#include "metald/syntax.h"
#include "metald/util.h"

bool syntax_cmdline_word_special(const char *s, size_t n)
{
        return (n == 2 && (memcmp(s, "||", 2) == 0 || memcmp(s, "&&", 2) == 0)) || (n == 1 && s[0] == ';') ||
               (n > 0 && s[0] == '#');
}

int syntax_artifact_path(const char *path)
{
        size_t n = strlen(path);

        if (n == 0 || n > BOOT_MAX_ARTIFACT_PATH || path[0] == '/' || path[n - 1] == '/')
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                uint8_t c = (uint8_t)path[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("._+~/-", c)))
                        return -EINVAL;
        }
        for (const char *p = path; *p;) {
                size_t len = strcspn(p, "/");

                if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
                        return -EINVAL;
                p += len + (p[len] == '/');
        }
        return 0;
}

int syntax_cmdline(const char *cmdline, const char **ret_why)
{
        const char *p = cmdline;

        for (; *p; p++) {
                uint8_t c = (uint8_t)*p;

                if (c < 0x20 || c > 0x7e) {
                        *ret_why = "only printable ASCII and spaces are allowed";
                        return -EINVAL;
                }
                if (c == '$' || c == '\\') {
                        *ret_why = "'$' and '\\' are not allowed: iPXE would expand or join them";
                        return -EINVAL;
                }
        }
        for (p = cmdline; *p;) {
                size_t n;

                p += strspn(p, " ");
                n = strcspn(p, " ");
                if (syntax_cmdline_word_special(p, n)) {
                        *ret_why = "a word '||', '&&', ';' or one starting with '#' would end the iPXE command";
                        return -EINVAL;
                }
                p += n;
        }
        return 0;
}

bool syntax_module_name(const char *s)
{
        size_t n = strlen(s);

        return n >= 1 && n <= INITRAMFS_MAX_MODULE_NAME &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

int syntax_labels(const char *labels)
{
        for (const char *p = labels; *p;) {
                const char *end = strchr(p, ','), *eq = strchr(p, '=');
                size_t len = end ? (size_t)(end - p) : strlen(p);

                if (!eq || eq >= p + len || eq == p || eq == p + len - 1 || len > 2 * PROFILE_MAX_WORD + 1 ||
                    (end && end[1] == '\0'))
                        return -EINVAL;
                for (size_t i = 0; i < len; i++)
                        if (!isalnum((unsigned char)p[i]) && !strchr("=-_./", p[i]))
                                return -EINVAL;
                p += len + (end ? 1 : 0);
        }
        return 0;
}
