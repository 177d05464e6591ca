/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/*
 * Opens path strictly beneath the directory root_fd, for servers handing out
 * files by client-supplied names. Any symlink, any escape (absolute path,
 * ".." leaving the root) and anything but a regular file is refused:
 * -ELOOP for a symlink, -EXDEV for an escape, -EISDIR for a directory,
 * -EACCES for devices, fifos and sockets, else the open's own -errno.
 * flags are open(2) flags for reading; O_CREAT and O_TMPFILE are -EINVAL.
 * The name is used as given: mapping client conventions is the caller's job.
 */
int fs_open_beneath(int root_fd, const char *path, int flags, int *ret_fd);

/*
 * The component-by-component walk fs_open_beneath falls back to when the
 * kernel lacks openat2(2); exposed so both paths run the same tests.
 */
int fs_open_beneath_walk(int root_fd, const char *path, int flags, int *ret_fd);

/*
 * Refuses an open fd that is not a regular file, with the errors above
 * (-EISDIR, -EACCES); fills *ret_st when it is given.
 */
int fs_check_regular(int fd, struct stat *ret_st);

#define FS_SHA256_BYTES 32
/* SHA-256 of n bytes at p: 0, or -EIO. */
int fs_sha256(const void *p, size_t n, uint8_t out[FS_SHA256_BYTES]);
/*
 * Reads a whole regular file of at most max bytes into a new buffer (the
 * caller frees it), with its SHA-256 when sha256 is given. -EFBIG when larger,
 * -ESTALE when it grew while being read.
 */
int fs_read_file(const char *path, size_t max, uint8_t sha256[FS_SHA256_BYTES], uint8_t **ret, size_t *ret_len);
