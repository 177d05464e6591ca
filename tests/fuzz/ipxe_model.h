/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A model of how iPXE reads a script (src/image/script.c, src/core/exec.c):
 * lines end at '\n', a trailing '\r' is dropped, a trailing '\' joins the next
 * line, ":name" at the start is a label, tokens are split on isspace() without
 * quoting, a token starting with '#' ends the line, "||", "&&" and ";" end a
 * command, and "${...}" inside a token is expanded. Tests and the fuzzer
 * render scripts from hostile values and compare this skeleton with that of
 * a harmless rendering: escaping is right when the values never change it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "metald/buf.h"

static inline bool ipxe_model_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Counts "${...}" iPXE would expand in one token (a '}' after a "${"). */
static inline size_t ipxe_model_expansions(const char *tok, size_t n)
{
        size_t count = 0;

        for (size_t i = 0; i + 1 < n; i++) {
                if (tok[i] != '$' || tok[i + 1] != '{')
                        continue;
                if (memchr(tok + i + 2, '}', n - i - 2))
                        count++;
        }
        return count;
}

/*
 * One logical line: labels, command names, terminators, comments; each
 * argument as "_", or one "_" for all of a command's arguments when their
 * number may legitimately vary (a kernel command line).
 */
static inline int ipxe_model_line(struct buf *out, const char *line, size_t len, bool count_args,
                                  size_t *expansions)
{
        bool command_start = true, in_args = false;
        size_t i = 0;
        int r = 0;

        while (i < len && ipxe_model_space(line[i]))
                i++;
        if (i < len && line[i] == ':') {
                size_t s = i;

                while (i < len && !ipxe_model_space(line[i]))
                        i++;
                r = buf_append(out, line + s, i - s);
        }
        while (r == 0 && i < len) {
                size_t s;

                while (i < len && ipxe_model_space(line[i]))
                        i++;
                if (i >= len)
                        break;
                s = i;
                while (i < len && !ipxe_model_space(line[i]))
                        i++;
                if (line[s] == '#')
                        return buf_puts(out, " #");
                *expansions += ipxe_model_expansions(line + s, i - s);
                if ((i - s == 2 && (!memcmp(line + s, "||", 2) || !memcmp(line + s, "&&", 2))) ||
                    (i - s == 1 && line[s] == ';')) {
                        r = buf_printf(out, " %.*s", (int)(i - s), line + s);
                        command_start = true;
                        in_args = false;
                } else if (command_start) {
                        r = buf_printf(out, " %.*s", (int)(i - s), line + s);
                        command_start = false;
                } else if (count_args || !in_args) {
                        r = buf_puts(out, " _");
                        in_args = true;
                }
        }
        return r;
}

/* The skeleton of a whole script, one line per logical line. */
static inline int ipxe_model_skeleton(const char *script, size_t len, bool count_args, struct buf *out,
                                      size_t *expansions)
{
        struct buf line = BUF_INIT(1 << 20);
        size_t i = 0;
        int r = 0;

        *expansions = 0;
        while (r == 0 && i < len) {
                const char *nl = memchr(script + i, '\n', len - i);
                size_t n = nl ? (size_t)(nl - (script + i)) : len - i;

                r = buf_append(&line, script + i, n);
                i += n + 1;
                if (r == 0 && line.len && line.data[line.len - 1] == '\r')
                        line.data[--line.len] = '\0';
                if (r == 0 && line.len && line.data[line.len - 1] == '\\') {
                        line.data[--line.len] = '\0';
                        continue;
                }
                if (r == 0)
                        r = ipxe_model_line(out, line.data ? line.data : "", line.len, count_args, expansions);
                if (r == 0)
                        r = buf_puts(out, "\n");
                buf_reset(&line);
        }
        buf_free(&line);
        return r;
}
