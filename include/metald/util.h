/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exit codes of both programs and every subcommand. */
#define EXIT_OK     0
#define EXIT_FAILED 1
#define EXIT_USAGE  2

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_ __attribute__((warn_unused_result))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Hands an owned pointer or fd to the caller and disarms the cleanup. */
#define TAKE_PTR(p) ({ __typeof__(p) _t = (p); (p) = NULL; _t; })
#define TAKE_FD(fd) ({ int _t = (fd); (fd) = -1; _t; })

#define USEC_PER_SEC  1000000ULL
#define USEC_PER_MSEC 1000ULL

/* Strict decimal parse of the whole string into [min, max]. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
int parse_bool(const char *s, bool *ret);
/* "1h", "30m", "90s", "250ms" or a plain number of seconds, into microseconds. */
int parse_duration_usec(const char *s, uint64_t *ret);
/* aa:bb:cc:dd:ee:ff or aa-bb-...; case-insensitive. */
int parse_mac(const char *s, uint8_t ret[6]);
int parse_ipv4(const char *s, struct in_addr *ret);
/* a.b.c.d/len; the host bits must be zero. */
int parse_cidr(const char *s, struct in_addr *ret_net, unsigned *ret_prefix);

/* Copies with truncation reported: 0 or -ENAMETOOLONG (dst still terminated). */
int str_copy(char *dst, size_t cap, const char *src);
bool str_has_prefix(const char *s, const char *prefix);
/* Whether the len bytes at s are all ASCII letters, digits or bytes of extra (never a NUL). */
bool str_only(const char *s, size_t len, const char *extra);
char *xstrdup_or_null(const char *s);

void format_mac(char buf[18], const uint8_t mac[6]);
void format_ipv4(char buf[16], struct in_addr a);
/* Lowercase hex of n bytes into buf (2n+1 bytes). */
void format_hex(char *buf, const uint8_t *p, size_t n);

/*
 * SMBIOS UUIDs as text: 8-4-4-4-12 hex digits, lower case. All zero ("not
 * present") and all FF ("not set") are no identity (SMBIOS 7.2.1): they become
 * "", like an absent UUID, so nothing is matched or named on them.
 */
#define UUID_TEXT_BYTES 37
/* len bytes of s into out: 0 with the canonical text or "", -EINVAL when s is no UUID. out may be s. */
int uuid_normalize(const char *s, size_t len, char out[UUID_TEXT_BYTES]);
/* 16 bytes, in the order given, as canonical text; "" when they are no identity. */
void uuid_format(char out[UUID_TEXT_BYTES], const uint8_t g[16]);
/* s is a UUID (in either case) and an identity: neither empty, nor all zero, nor all FF. */
bool uuid_is_identity(const char *s);

uint32_t prefix_to_mask(unsigned prefix);   /* host order */

uint64_t now_monotonic_usec(void);
uint64_t now_realtime_usec(void);

/* Fills with cryptographically strong randomness; 0 or -errno. */
int random_bytes(void *p, size_t n);
uint32_t random_u32(void);

int fd_set_nonblock(int fd);
int fd_set_cloexec(int fd);

/* Reads until end of file or cap bytes, retrying EINTR: 0 with *ret_len, or -errno. */
int read_full(int fd, void *buf, size_t cap, size_t *ret_len);
/* mkdir -p: creates path and its missing parents with mode. */
int mkdir_p(const char *path, unsigned mode);
