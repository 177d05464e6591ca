/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Values that go into iPXE scripts, kernel command lines and module lists (src/config/syntax.c). */

/* A word that would end an iPXE command or start a comment if it stood alone: "||", "&&", ";", "#...". */
bool syntax_cmdline_word_special(const char *s, size_t n);
/* A relative path below http.root: 0, or -EINVAL. */
int syntax_artifact_path(const char *path);
/* A kernel command line iPXE passes on unchanged: 0, or -EINVAL with a reason. */
int syntax_cmdline(const char *cmdline, const char **ret_why);
/* 1 to INITRAMFS_MAX_MODULE_NAME letters, digits, '-' and '_'. */
bool syntax_module_name(const char *s);
/* A label list "k=v,k=v": 0 or -EINVAL. */
int syntax_labels(const char *labels);
