/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/limits.h"

/* Profiles decide which machine gets what (matching: metald/profile.h). */
struct profile_label {
        char key[PROFILE_MAX_WORD + 1];
        char value[PROFILE_MAX_WORD + 1];
};

struct profile_match {
        char mac[PROFILE_MAX_PATTERNS][PROFILE_MAX_WORD + 1];     /* glob, e.g. 52:54:00:* */
        size_t n_mac;
        char uuid[PROFILE_MAX_PATTERNS][PROFILE_MAX_WORD + 1];
        size_t n_uuid;
        char serial[PROFILE_MAX_PATTERNS][PROFILE_MAX_WORD + 1];
        size_t n_serial;
        char vendor[PROFILE_MAX_WORD + 1];                      /* glob */
        char product[PROFILE_MAX_WORD + 1];                     /* glob */
        struct profile_label labels[PROFILE_MAX_LABELS];
        size_t n_labels;
};

enum profile_approval { PROFILE_APPROVE_MANUAL, PROFILE_APPROVE_AUTO };

/* How metald reaches the power of the profile's machines (docs/POWER.md). */
enum profile_power_driver { PROFILE_POWER_MANUAL, PROFILE_POWER_QEMU, PROFILE_POWER_IPMI };

struct profile_power {
        enum profile_power_driver driver;               /* manual when the profile names none */
        char socket[POWER_MAX_PATH + 1];                /* qemu: QMP socket, template: {mac} {name} */
        char host[POWER_MAX_HOST + 1];                  /* ipmi: BMC, template: {mac} {name} */
        uint16_t port;                                  /* ipmi: POWER_IPMI_DEFAULT_PORT unless set */
        char user[POWER_MAX_USER + 1];
        char password_file[POWER_MAX_PATH + 1];         /* absolute; checked each time it is used */
        uint8_t cipher_suite;                           /* 0: ipmitool's choice */
};

/* A plain network boot a profile may name instead of an image: unsigned files below http.root. */
struct profile_netboot {
        char kernel[BOOT_MAX_ARTIFACT_PATH + 1];        /* "" = the profile names no netboot */
        char initrd[BOOT_MAX_ARTIFACT_PATH + 1];        /* "" = none */
        char cmdline[BOOT_MAX_CMDLINE + 1];
};

struct profile {
        char name[PROFILE_MAX_WORD + 1];
        struct profile_match match;
        char image[PROFILE_MAX_WORD + 1];
        uint64_t image_version;                         /* 0: the newest imported; else pinned */
        char install_mode[PROFILE_MAX_WORD + 1];        /* "install" (to disk) or "diskless"; "image" reads as install */
        char disk[PROFILE_MAX_WORD + 1];                /* largest, smallest, ssd, hdd, or a device name */
        char disk_serial[PROFILE_MAX_WORD + 1];         /* "": any; else the disk with this serial */
        char disk_path[PROFILE_MAX_DISK_PATH + 1];      /* "": any; else /dev/disk/by-path/... or by-id/... */
        bool allow_removable;                           /* removable (USB) disks may be chosen */
        char hostname[PROFILE_MAX_WORD + 1];            /* template: {mac} {serial} {uuid} */
        char cluster[PROFILE_MAX_WORD + 1];
        enum profile_approval approval;
        struct profile_power power;
        struct profile_netboot netboot;                 /* exclusive with image */
};

/* How long each waiting state of the lifecycle may last (metald/machine.h). */
struct lifecycle_timeouts {
        uint32_t enroll_s, agent_s, imaging_s, imaged_s, join_s;
};

/* Addresses inside config structs are host byte order unless typed struct in_addr. */

enum dhcp_mode { DHCP_MODE_FULL, DHCP_MODE_PROXY };

struct dhcp_range {
        uint32_t start, end;            /* inclusive */
};

struct dhcp_reservation {
        uint8_t mac[6];
        uint32_t addr;
        char hostname[DHCP_MAX_HOSTNAME + 1];
};

struct dhcp_subnet {
        uint32_t network, mask;
        unsigned prefix;
        struct dhcp_range ranges[CONFIG_MAX_RANGES];
        size_t n_ranges;
        uint32_t router;                /* 0: none */
        uint32_t dns[CONFIG_MAX_DNS_SERVERS];
        size_t n_dns;
        char domain[254];
        uint32_t lease_time_s;          /* 0: the global lease_time */
        struct dhcp_reservation *reservations;
        size_t n_reservations;
};

struct dhcp_config {
        bool enabled;
        enum dhcp_mode mode;
        char interface[IF_NAMESIZE];
        struct in_addr listen;
        uint16_t port, proxy_port, client_port;
        bool authoritative;
        uint32_t lease_time_s, offer_hold_s, decline_hold_s;
        uint32_t rcvbuf_bytes;
        struct dhcp_subnet *subnets;
        size_t n_subnets;
};

struct tftp_config {
        bool enabled;
        char interface[IF_NAMESIZE];
        struct in_addr listen;
        uint16_t port;
        char root[CONFIG_MAX_PATH_BYTES];
        uint32_t max_blksize;
        uint32_t max_windowsize;
        uint32_t max_transfers, max_per_client;
        uint32_t timeout_ms;            /* first retransmission timeout */
        uint32_t retries;
};

struct http_config {
        bool enabled;
        struct in_addr listen;
        uint16_t port;
        char root[CONFIG_MAX_PATH_BYTES];       /* artifacts; defaults to the TFTP root */
        uint32_t threads;               /* MHD pool threads; 0 = two per CPU */
        uint32_t max_connections, max_per_client;
        uint32_t idle_timeout_s;
        uint32_t max_header_bytes;      /* request line + headers of one request */
        uint32_t stream_min_bytes;      /* files this large get a thread per connection; 0: never */
        uint32_t stream_connections;    /* at most this many such threads at once */
};

struct boot_file {
        uint16_t arch;                  /* RFC 4578 client architecture */
        char file[DHCP_MAX_BOOTFILE + 1];
};

enum enroll_compression { ENROLL_COMPRESS_GZIP, ENROLL_COMPRESS_ZSTD };

/* metald builds the enrollment initramfs itself from these host files. */
struct boot_enroll_build {
        bool enabled;                                   /* boot.enroll.build is present */
        char modules[CONFIG_MAX_PATH_BYTES];            /* a module tree, /lib/modules/VERSION */
        char agent[CONFIG_MAX_PATH_BYTES];              /* "" = the metald-agent installed with metald */
        char busybox[CONFIG_MAX_PATH_BYTES];            /* a static busybox */
        enum enroll_compression compression;
        char extra_modules[CONFIG_MAX_EXTRA_MODULES][INITRAMFS_MAX_MODULE_NAME + 1];
        size_t n_extra_modules;
};

/* The enrollment boot iPXE scripts hand out; paths are relative to http.root. */
struct boot_enroll {
        char kernel[BOOT_MAX_ARTIFACT_PATH + 1];        /* "" = not configured */
        char initrd[BOOT_MAX_ARTIFACT_PATH + 1];
        char cmdline[BOOT_MAX_CMDLINE + 1];
        char tmpl[BOOT_MAX_ARTIFACT_PATH + 1];          /* the script template */
        struct boot_enroll_build build;                 /* exclusive with initrd */
};

struct boot_config {
        char http_url[256];             /* how machines reach metald's HTTP; "" = derived */
        char script[128];               /* path of the iPXE script below http_url */
        struct boot_file files[CONFIG_MAX_BOOT_FILES];
        size_t n_files;
        uint32_t retry_delay_s;         /* machines metald cannot place ask again after this */
        struct boot_enroll enroll;
};

/* How machines move through their lifecycle; timeouts in seconds. */
struct lifecycle_config {
        struct lifecycle_timeouts timeouts;
        uint32_t nonce_ttl_s;           /* an enrollment boot's nonce is valid this long */
        uint32_t heartbeat_s;           /* the agent calls in this often */
        char local_boot_bios[128];      /* iPXE command that boots the local disk on BIOS */
        char local_boot_efi[128];       /* and on UEFI */
};

/* The operator interface: a unix socket, and optionally /v1/admin over HTTP. */
struct control_config {
        char socket[CONFIG_MAX_PATH_BYTES];
        uint32_t socket_mode;
        char admin_token_file[CONFIG_MAX_PATH_BYTES];   /* "" = /v1/admin/ off */
};

/* Signed images (docs/IMAGES.md): which keys may sign them. */
struct images_config {
        char trusted_keys[IMAGE_MAX_KEYS][CONFIG_MAX_PATH_BYTES];      /* PEM public keys */
        size_t n_trusted_keys;
        char revoked_keys[IMAGE_MAX_KEYS][CONFIG_MAX_PATH_BYTES];
        size_t n_revoked_keys;
        uint32_t max_concurrent_installs;
        bool require_signed;
};

struct config {
        char path[CONFIG_MAX_PATH_BYTES];
        char interface[IF_NAMESIZE];    /* default for every service */
        struct in_addr server_address;  /* 0: the interface's first IPv4 address */
        char state_dir[CONFIG_MAX_PATH_BYTES];
        int log_level;
        struct dhcp_config dhcp;
        struct tftp_config tftp;
        struct http_config http;
        struct boot_config boot;
        struct lifecycle_config lifecycle;
        struct profile *profiles;
        size_t n_profiles;
        struct control_config control;
        struct images_config images;
};

/* On failure err holds one line naming file, line, key and value. */
int config_load_file(const char *path, struct config **ret, char *err, size_t errlen);
int config_load_string(const char *text, const char *name, struct config **ret,
                       char *err, size_t errlen);
void config_free(struct config *c);

/* The boot file configured for an architecture, or NULL. */
const char *config_boot_file(const struct config *c, uint16_t arch);
const char *dhcp_mode_name(enum dhcp_mode m);
/* The base URL machines reach metald's HTTP at (boot.http_url, else http://server_ip:port), no trailing '/'. */
int config_base_url(const struct config *cfg, uint32_t server_ip, char *buf, size_t cap);
/* The iPXE script's URL: the base URL + "/" + boot.script. */
int config_script_url(const struct config *cfg, uint32_t server_ip, char *buf, size_t cap);
