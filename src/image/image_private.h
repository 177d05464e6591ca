/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Helpers the files of src/image/ share (image_io.c); not part of metald/image.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metald/manifest.h"
#include "metald/util.h"

/* Formats one refusal line into why (why may be NULL); returns r. */
int image_why(int r, char *why, size_t why_len, const char *fmt, ...) _printf_(4, 5);

int image_write_all(int fd, const void *data, size_t len);
/* Reads exactly len bytes (-EIO when the file ends first). */
int image_read_full(int fd, void *buf, size_t len);
/* Writes name in dir_fd through a temporary file, fsync and rename. */
int image_write_atomic(int dir_fd, const char *name, const void *data, size_t len, mode_t mode);
/*
 * Reads the regular file name in dir_fd (no symlink) when it has at most max
 * bytes: -EFBIG unread when larger, -ELOOP for a symlink, -EISDIR/-EACCES for
 * other types. The caller frees *ret.
 */
int image_read_small(int dir_fd, const char *name, size_t max, uint8_t **ret, size_t *ret_len);
/* Removes name in dir_fd and everything below it (no symlink is followed). */
int image_remove_tree(int dir_fd, const char *name);
int image_fsync_dir(int dir_fd);

/* Streaming SHA-256. */
struct image_sha256;
int image_sha256_new(struct image_sha256 **ret);
int image_sha256_update(struct image_sha256 *h, const void *p, size_t n);
/* Finishes the digest and starts over. */
int image_sha256_final(struct image_sha256 *h, uint8_t out[MANIFEST_SHA256_BYTES]);
void image_sha256_free(struct image_sha256 *h);
