/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/limits.h"

/*
 * The signed image format (docs/IMAGES.md): the manifest codec and Ed25519
 * signatures. In core because both programs need them: metald imports and
 * serves images, metald-agent verifies what it installs with keys of its own.
 * Parsing is pure and bounded; nothing here reads the network.
 */

#define MANIFEST_FORMAT         "metald-image/1"
#define MANIFEST_SHA256_BYTES   32
#define MANIFEST_KEY_BYTES      32      /* raw Ed25519 public key */
#define MANIFEST_SIG_BYTES      64
#define MANIFEST_KEY_ID_BYTES   8       /* first bytes of SHA-256(raw public key) */
#define MANIFEST_KEY_ID_HEX     (2 * MANIFEST_KEY_ID_BYTES)

enum manifest_artifact_kind { MANIFEST_KERNEL, MANIFEST_INITRD, MANIFEST_DISK, MANIFEST_ROOTFS, _MANIFEST_ARTIFACT_MAX };
enum manifest_compression { MANIFEST_COMPRESS_NONE, MANIFEST_COMPRESS_ZSTD };
enum manifest_fs { MANIFEST_FS_NONE, MANIFEST_FS_SQUASHFS, MANIFEST_FS_EROFS };

struct manifest_chunk {
        uint64_t offset, length;        /* disk: where its raw bytes go; others: offset/size in the file */
        uint64_t file_offset;           /* where the chunk starts in the artifact file (sum of earlier sizes) */
        uint64_t size;                  /* bytes in the artifact file */
        uint8_t sha256[MANIFEST_SHA256_BYTES];
};

struct manifest_extent {
        uint64_t offset, length;
};

struct manifest_artifact {
        bool present;
        uint64_t size;
        uint8_t sha256[MANIFEST_SHA256_BYTES];
        struct manifest_chunk *chunks;
        size_t n_chunks;
        /* disk only */
        enum manifest_compression compression;
        uint64_t raw_size;
        struct manifest_extent *extents;
        size_t n_extents;
        bool has_config;                /* disk.config: the configuration partition's raw byte range */
        uint64_t config_offset, config_length;
        /* rootfs only */
        enum manifest_fs fs;
};

struct manifest {
        char name[IMAGE_MAX_NAME + 1];
        uint64_t version;
        char arch[16];                  /* x86_64, arm64 */
        int64_t created, expires;       /* unix seconds */
        char key_id[MANIFEST_KEY_ID_HEX + 1];
        uint64_t chunk_size;
        char cmdline[IMAGE_MAX_CMDLINE + 1];
        struct manifest_artifact artifacts[_MANIFEST_ARTIFACT_MAX];
};

/* "kernel", "initrd", "disk", "rootfs": the artifact's file name in an image. */
const char *manifest_artifact_name(enum manifest_artifact_kind k);
int manifest_artifact_from_name(const char *name);

/*
 * Parses manifest bytes (call only after manifest_verify() accepted them):
 * strict JSON, unknown fields and duplicate keys refused, every rule of
 * docs/IMAGES.md checked. On failure *ret is untouched and why says what is
 * wrong, naming the field: -EINVAL, -EFBIG past IMAGE_MAX_MANIFEST_BYTES,
 * -ENOMEM. Every chunk's file_offset is filled; the chunks of kernel, initrd
 * and rootfs have offset = file_offset and length = size.
 */
int manifest_parse(const void *data, size_t len, struct manifest *ret, char *why, size_t why_len);
void manifest_free(struct manifest *m);

/* The key id a manifest names, read without trusting anything else in it: for picking the key.
 * Only strings and nesting are followed, so damage elsewhere is left to the signature check.
 * -EINVAL when the bytes do not open an object with exactly one top-level "key_id" of
 * MANIFEST_KEY_ID_HEX lower-case hex digits; -EFBIG past IMAGE_MAX_MANIFEST_BYTES. */
int manifest_peek_key_id(const void *data, size_t len, char ret[MANIFEST_KEY_ID_HEX + 1]);

/* The import-time and serve-time check: true once now (unix seconds) is at or past m->expires. */
bool manifest_expired(const struct manifest *m, int64_t now);

/*
 * The unmapped ranges of a parsed disk, which an installer zeroes: hole i is
 * the range before extent i, hole n_extents the one after the last, up to
 * raw_size. A hole may be empty (length 0). -ENOENT past the last one,
 * -EINVAL when a is not a disk.
 */
int manifest_disk_hole(const struct manifest_artifact *a, size_t i, struct manifest_extent *ret);

/* Ed25519 keys. */
struct manifest_key {
        uint8_t pub[MANIFEST_KEY_BYTES];
        char id[MANIFEST_KEY_ID_HEX + 1];
};
void manifest_key_id(const uint8_t pub[MANIFEST_KEY_BYTES], char ret[MANIFEST_KEY_ID_HEX + 1]);
/* A PEM public key file (SubjectPublicKeyInfo, Ed25519): 0, -EINVAL when it is not one,
 * -EFBIG past IMAGE_MAX_KEY_FILE_BYTES, or the -errno of reading it. */
int manifest_key_load(const char *path, struct manifest_key *ret);
int manifest_key_from_pem(const void *pem, size_t len, struct manifest_key *ret);

/* 0 when sig is key's Ed25519 signature of data; -EBADMSG when not. */
int manifest_signature_check(const struct manifest_key *key, const void *data, size_t len,
                             const uint8_t sig[MANIFEST_SIG_BYTES]);

/*
 * The check before parsing: picks the key of keys whose id the manifest names
 * and checks sig, MANIFEST_SIG_BYTES of manifest.json.sig, against it. 0 with
 * *ret_key its index; -EFBIG past IMAGE_MAX_MANIFEST_BYTES, -EINVAL when sig
 * has another length or no key id can be read, -ENOKEY when no key has that
 * id, -EBADMSG when the signature does not match. Revocation is the caller's.
 */
int manifest_verify(const struct manifest_key *keys, size_t n_keys, const void *data, size_t len,
                    const void *sig, size_t sig_len, size_t *ret_key);

/* 0 when data is exactly chunk c (c->size bytes with its sha256), -EBADMSG when not. */
int manifest_chunk_check(const struct manifest_chunk *c, const void *data, size_t len);

/* SHA-256 of a buffer; 0 or -EIO. */
int manifest_sha256(const void *data, size_t len, uint8_t ret[MANIFEST_SHA256_BYTES]);
/* SHA-256 of a whole artifact as it streams by: _end fills ret and frees the state. */
struct manifest_sha256_state;
int manifest_sha256_begin(struct manifest_sha256_state **ret);
int manifest_sha256_add(struct manifest_sha256_state *st, const void *data, size_t len);
int manifest_sha256_end(struct manifest_sha256_state *st, uint8_t ret[MANIFEST_SHA256_BYTES]);
void manifest_sha256_free(struct manifest_sha256_state *st);    /* abandons it; NULL is fine */
void manifest_hex(const uint8_t *bytes, size_t n, char *ret);   /* ret holds 2n + 1 */
