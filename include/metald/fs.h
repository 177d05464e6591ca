/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

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
