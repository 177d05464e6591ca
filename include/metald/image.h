/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/limits.h"
#include "metald/manifest.h"

/*
 * Signed OS images (docs/IMAGES.md): keys and signing, building a manifest,
 * verifying an image against a keyring, and the catalog under
 * STATE_DIR/images/. Functions return 0 or -errno and fill ret_ parameters
 * only on success; on a refusal `why` holds one line naming the image (when
 * known), the key id and the reason. Nothing here logs; the caller does.
 *
 * Refusals, by errno:
 *   -EKEYREJECTED  the signing key is unknown or revoked
 *   -EBADMSG       the signature, a size or a digest does not match
 *   -EKEYEXPIRED   the manifest has expired
 *   -ESTALE        a version lower than the highest imported (anti-rollback)
 *   -EEXIST        an extra file, or the same version with other content
 *   -EFBIG         a file over its limit
 *   -EINVAL        a malformed manifest or archive entry
 */

#define IMAGE_KEY_SUFFIX        ".key"  /* keygen: PREFIX.key (private), PREFIX.pub (public) */
#define IMAGE_PUB_SUFFIX        ".pub"
#define IMAGE_MANIFEST_FILE     "manifest.json"
#define IMAGE_SIG_FILE          "manifest.json.sig"
/* Where metald's HTTP service serves the catalog's artifacts: PREFIX NAME/VERSION/{kernel,initrd,disk,rootfs}. */
#define IMAGE_HTTP_PREFIX       "/_metald/images/"

/* Keys and signing (image_key.c). */
struct image_signer;

/* Writes PREFIX.key (PKCS#8 PEM, 0600) and PREFIX.pub (SubjectPublicKeyInfo PEM, 0644); neither may exist. */
int image_keygen(const char *prefix, char ret_key_id[MANIFEST_KEY_ID_HEX + 1], char *why, size_t why_len);
/* A PEM Ed25519 private key (PKCS#8, unencrypted). */
int image_signer_load(const char *path, struct image_signer **ret, char *why, size_t why_len);
void image_signer_free(struct image_signer *s);
/* The signer's public key and key id. */
void image_signer_key(const struct image_signer *s, struct manifest_key *ret);
int image_sign(const struct image_signer *s, const void *data, size_t len, uint8_t ret[MANIFEST_SIG_BYTES]);
/* Signs DIR/manifest.json as it is (after checking it parses and names this key) into DIR/manifest.json.sig. */
int image_sign_dir(const char *dir, const struct image_signer *s, char *why, size_t why_len);

/* Building an image from raw inputs (image_build.c). */
struct image_build_spec {
        const char *src;                /* kernel, initrd, and disk (a raw disk image) and/or rootfs */
        const char *out;                /* where the image goes; NULL or == src: rewritten in place */
        const char *name;
        uint64_t version;
        const char *arch;               /* x86_64, arm64 */
        int64_t created, expires;       /* unix seconds */
        uint64_t chunk_size;
        enum manifest_compression compression;
        int level;                      /* zstd level; 0: IMAGE_ZSTD_DEFAULT_LEVEL */
        const char *cmdline;            /* NULL: none */
};

/* Mapped ranges of a raw disk image: holes (SEEK_DATA/SEEK_HOLE) and runs of zero blocks left out. */
int image_disk_extents(int fd, uint64_t size, struct manifest_extent **ret, size_t *ret_n);
/*
 * The configuration partition of a raw disk (docs/IMAGES.md): MBR type 0xda,
 * or a GPT partition named METALD-CFG, from head, the disk's first bytes (up
 * to its first MiB; the GPT entries must lie in them). 0 with its byte range,
 * -ENOENT when the disk has none, -EINVAL with why when the table is damaged,
 * names two, or the partition is misplaced (docs/IMAGES.md's rules).
 */
#define IMAGE_CONFIG_PART_NAME  "METALD-CFG"
#define IMAGE_CONFIG_MBR_TYPE   0xda
int image_find_config(const uint8_t *head, size_t len, uint64_t raw_size, struct manifest_extent *ret, char *why,
                      size_t why_len);
/* The file system a rootfs starts with: squashfs or erofs, else MANIFEST_FS_NONE. */
enum manifest_fs image_detect_fs(const void *head, size_t len);
/* Builds the artifacts, writes manifest.json and signs it. */
int image_build(const struct image_build_spec *spec, const struct image_signer *s, char *why, size_t why_len);

/* Trust and verification (image_verify.c). */
struct image_keyring {
        struct manifest_key trusted[IMAGE_MAX_KEYS];
        size_t n_trusted;
        struct manifest_key revoked[IMAGE_MAX_KEYS];
        size_t n_revoked;
};

int image_keyring_add(struct image_keyring *kr, const char *pem_path, bool revoked, char *why, size_t why_len);

struct image_policy {
        bool allow_downgrade;
        uint64_t highest_known;         /* 0: none imported yet */
};

/*
 * Verifies the image in directory dir_fd: signature first, against the
 * keyring, then the manifest, expiry, rollback and every byte of every
 * artifact. label names the image in refusals until its manifest is read.
 * On success *ret (if given) holds the parsed manifest (manifest_free it).
 */
int image_verify_fd(int dir_fd, const char *label, const struct image_keyring *kr, int64_t now,
                    const struct image_policy *policy, struct manifest *ret, char *why, size_t why_len);
/* Expiry, then anti-rollback (policy may be NULL: no rollback check). */
int image_check_policy(const struct manifest *m, int64_t now, const struct image_policy *policy, char *why,
                       size_t why_len);
int image_verify_dir(const char *dir, const struct image_keyring *kr, int64_t now, const struct image_policy *policy,
                     struct manifest *ret, char *why, size_t why_len);

/* Archive entries (image_catalog.c): the decision per header is pure, for the importer and its fuzzer. */
enum image_entry_type { IMAGE_ENTRY_FILE, IMAGE_ENTRY_DIR, IMAGE_ENTRY_OTHER };

struct image_entry_state {
        char top[IMAGE_MAX_NAME + 1];   /* the one top-level directory, if any */
        bool have_top, have_root_files;
        unsigned seen;                  /* bit per accepted file name */
};

#define IMAGE_ENTRY_SKIP        (-1000) /* never an errno: the top-level directory itself */
#define IMAGE_N_FILES           6       /* manifest.json, its .sig and the four artifacts */

/* The file names an image may hold, indexed as image_entry_check() returns them. */
const char *image_file_name(unsigned i);
/*
 * Decides on one archive entry: its index in image_file_name() (>= 0),
 * IMAGE_ENTRY_SKIP for the top-level directory, or -EINVAL / -EFBIG with
 * why. size < 0: not declared.
 */
int image_entry_check(struct image_entry_state *st, const char *path, enum image_entry_type type, bool hardlink,
                      int64_t size, char *why, size_t why_len);
/* The most bytes an entry of that file may hold. */
uint64_t image_file_max_bytes(unsigned i);

/* The catalog: STATE_DIR/images/NAME/VERSION/, STATE_DIR/images/NAME/highest. */
struct image_info {
        char name[IMAGE_MAX_NAME + 1];
        uint64_t version;
        char key_id[MANIFEST_KEY_ID_HEX + 1];
        uint64_t total_bytes;           /* of the artifacts */
        unsigned artifacts;             /* bit per enum manifest_artifact_kind */
        int64_t created, expires;
        char arch[16];
        bool already;                   /* import: this exact image was in the catalog already */
};

/* src: an image directory, or a tar, tar.gz or tar.zst archive of one. */
int image_import(const char *state_dir, const char *src, const struct image_keyring *kr, int64_t now,
                 bool allow_downgrade, struct image_info *ret, char *why, size_t why_len);
/* Extracts an archive into the empty directory dir_fd, refusing every entry image_entry_check() refuses. */
int image_extract_archive(const char *archive_path, int dir_fd, uint64_t free_bytes, char *why, size_t why_len);
/* The headers of an archive in memory, each through image_entry_check(), no data written: for fuzzing. */
int image_archive_check_memory(const void *data, size_t len, char *why, size_t why_len);
/* Every imported image, sorted by name then version. */
int image_list(const char *state_dir, struct image_info **ret, size_t *ret_n, char *why, size_t why_len);
/* One image (version 0: the newest in the catalog), with its manifest (manifest_free it). */
int image_show(const char *state_dir, const char *name, uint64_t version, struct image_info *ret_info,
               struct manifest *ret, char *why, size_t why_len);
/* Removes NAME/VERSION; the anti-rollback mark stays. */
int image_remove(const char *state_dir, const char *name, uint64_t version, char *why, size_t why_len);
/* The highest version ever imported under name: 0 and *ret = 0 when none. */
int image_highest(const char *state_dir, const char *name, uint64_t *ret);
/* The newest NAME/VERSION directory of the catalog, without reading it: -ENOENT when there is none. */
int image_newest(const char *state_dir, const char *name, uint64_t *ret);
/* The exact bytes of file (manifest.json, manifest.json.sig) of NAME/VERSION, at most max (-EFBIG unread
 * past it), no symlink followed; the caller frees *ret. */
int image_read_file(const char *state_dir, const char *name, uint64_t version, const char *file, size_t max,
                    uint8_t **ret, size_t *ret_len);
/* NAME or NAME:VERSION. */
int image_parse_ref(const char *s, char name[IMAGE_MAX_NAME + 1], uint64_t *ret_version);
bool image_name_valid(const char *name);
