/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One-time nonces and session secrets: random, base64url, stored only as SHA-256. */
#define SECRET_NONCE_BYTES    16        /* 128 bits -> 22 characters */
#define SECRET_SESSION_BYTES  32        /* 256 bits -> 43 characters */
#define SECRET_MAX_TEXT       64

/* Fills text (cap >= SECRET_MAX_TEXT) with nbytes of randomness, base64url without padding. */
int secret_new(size_t nbytes, char *text, size_t cap);
void secret_hash(const char *text, uint8_t ret[32]);
/* Constant time. */
bool secret_hash_equal(const uint8_t a[32], const uint8_t b[32]);
/* True when s is exactly the base64url text of nbytes bytes. */
bool secret_is_wellformed(const char *s, size_t nbytes);
