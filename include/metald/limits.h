/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Every bound metald applies to untrusted input or to its own growth lives here. */

/* Configuration */
#define CONFIG_MAX_FILE_BYTES        (1024 * 1024)
#define CONFIG_MAX_DEPTH             16
#define CONFIG_MAX_NODES             65536
#define CONFIG_MAX_SCALAR_BYTES      4096
#define CONFIG_MAX_SUBNETS           64
#define CONFIG_MAX_RANGES            16      /* per subnet */
#define CONFIG_MAX_RESERVATIONS      65536   /* in total */
#define CONFIG_MAX_DNS_SERVERS       8
#define CONFIG_MAX_BOOT_FILES        64
#define CONFIG_MAX_PATH_BYTES        4096

/* DHCP */
#define DHCP_MIN_PACKET              236     /* BOOTP fixed header without cookie */
#define DHCP_MAX_PACKET              1500    /* larger datagrams are dropped */
#define DHCP_MIN_REPLY               300     /* some PXE ROMs drop shorter replies */
#define DHCP_MIN_MAX_MSG_SIZE        576     /* RFC 2132 9.10 */
#define DHCP_MAX_OPTIONS             128     /* option instances per packet */
#define DHCP_MAX_CLIENT_ID           64      /* bytes of option 61 kept */
#define DHCP_MAX_HOSTNAME            63
#define DHCP_MAX_BOOTFILE            255
#define DHCP_MAX_POOL_ADDRESSES      (1u << 20)
#define DHCP_RX_BATCH                64      /* datagrams per recvmmsg */
#define DHCP_MAX_OFFERS_PER_BATCH    16      /* DISCOVERs answered per batch when falling behind */
#define DHCP_SHED_QUEUE_FRACTION     4       /* falling behind: receive queue over 1/4 of its buffer */

/* TFTP */
#define TFTP_MAX_REQUEST             512     /* RRQ datagram bytes */
#define TFTP_MAX_FILENAME            255
#define TFTP_MAX_OPTIONS             8
#define TFTP_MIN_BLKSIZE             8
#define TFTP_MAX_BLKSIZE             65464
#define TFTP_MAX_WINDOWSIZE          65535
#define TFTP_MIN_TIMEOUT_S           1
#define TFTP_MAX_TIMEOUT_S           255
#define TFTP_MAX_RETRIES             6
#define TFTP_DEFAULT_MAX_TRANSFERS   512
#define TFTP_DEFAULT_MAX_PER_CLIENT  8
#define TFTP_STALL_TIMEOUTS          2       /* in a row, no progress: stalled (a loss costs one; two mean the client left) */
#define TFTP_MAX_OACK                512     /* RFC 2347: option packets fit in 512 bytes */
#define TFTP_MAX_RTO_USEC            (10 * 1000000ULL)  /* backoff cap, unless the negotiated timeout is longer */
#define TFTP_FALLBACK_MTU            1500    /* when the arrival interface's MTU is unknown */
#define TFTP_SEND_BATCH              64      /* DATA datagrams per sendmmsg or UDP GSO send (kernel max >= 64) */
#define TFTP_SNDBUF_BYTES            (4u << 20)  /* per transfer socket: a whole window in flight */
#define TFTP_TIMER_TICK_USEC         (10 * 1000ULL)     /* deadlines are checked at most this often */
#define TFTP_HEARTBEAT_USEC          (500 * 1000ULL)    /* longest sleep of the service thread */
#define TFTP_EPOLL_BATCH             64      /* events handled per epoll_wait */
#define TFTP_MAX_ERROR_PACKET        128     /* ERROR datagrams we build (static messages) */

/* HTTP */
#define HTTP_MAX_URL_BYTES           2048    /* request target as sent; longer gets 414 */
#define HTTP_MAX_QUERY_PARAMS        16      /* query parameters; more and the query is refused */
#define HTTP_MAX_PARAM_KEY           32      /* decoded bytes of a parameter name */
#define HTTP_MAX_PARAM_VALUE         256     /* decoded bytes of a parameter value */
#define HTTP_MAX_BODY_BYTES          (64 * 1024)        /* request bodies, for routes that take one (none yet: 413) */
#define HTTP_DEFAULT_HEADER_BYTES    (32 * 1024)        /* per connection: request line + headers (MHD memory pool) */
#define HTTP_MIN_HEADER_BYTES        (4 * 1024)
#define HTTP_MAX_HEADER_BYTES        (1024 * 1024)
#define HTTP_DEFAULT_MAX_CONNECTIONS 1024
#define HTTP_DEFAULT_MAX_PER_CLIENT  16      /* connections from one address */
#define HTTP_DEFAULT_IDLE_TIMEOUT_S  30
#define HTTP_MAX_THREADS             64
#define HTTP_DEFAULT_STREAM_MIN_BYTES   (8 * 1024 * 1024)  /* kernels, initramfs, images: a thread per connection */
#define HTTP_DEFAULT_STREAM_CONNECTIONS 256     /* such threads at once; more share the pool */
#define HTTP_STREAM_STACK_BYTES      (1024 * 1024)      /* stack of each stream thread */
#define HTTP_LISTEN_BACKLOG          1024
#define HTTP_MAX_GENERATED_BYTES     (1024 * 1024)      /* bodies metald builds: metrics, error texts */
#define HTTP_COPY_MAX_BYTES          (16 * 1024)        /* smaller file bodies are copied, larger ones sent with sendfile */
#define HTTP_DIGEST_CACHE_SETS       256     /* ETag cache: SETS x WAYS file versions */
#define HTTP_DIGEST_CACHE_WAYS       4
#define HTTP_DIGEST_MAX_JOBS         64      /* files queued for the digest worker */
#define HTTP_DIGEST_CHUNK_BYTES      (256 * 1024)       /* the digest worker's read buffer */
#define HTTP_DIGEST_INLINE_MAX_BYTES (1024 * 1024)      /* smaller files are hashed in the request thread */
#define HTTP_HEARTBEAT_USEC          (1 * 1000000ULL)   /* self-check period */
#define HTTP_STUCK_USEC              (10 * 1000000ULL)  /* a callback or digest read taking longer is a hang */

/* iPXE boot scripts */
#define BOOT_MAX_SCRIPT_BYTES        (64 * 1024)        /* a rendered script */
#define BOOT_MAX_TEMPLATE_BYTES      (16 * 1024)
#define BOOT_MAX_SERIAL              64      /* SMBIOS serial, decoded bytes */
#define BOOT_MAX_CMDLINE             2048    /* x86 Linux COMMAND_LINE_SIZE */
#define BOOT_MAX_ARTIFACT_PATH       255
#define BOOT_MAX_URL                 512
#define BOOT_MAX_RETRY_DELAY_S       3600

/* Files */
#define FS_OPEN_RETRIES              8       /* openat2 EAGAIN: a rename raced the lookup */

/* The files a configuration needs, checked before serving (metald/preflight.h) */
#define PREFLIGHT_HEAD_BYTES         4096    /* bytes of a boot file or kernel read to recognise it */
#define PREFLIGHT_MIN_PXE_BYTES      512     /* a shorter BIOS PXE boot program is truncated */
#define PREFLIGHT_MAX_PXE_BYTES      (0xa0000 - 0x7c00) /* loaded at 0:7C00, it must end below 640 KiB */
#define PREFLIGHT_MAX_NEEDS          (CONFIG_MAX_BOOT_FILES + 3 + 2 * CONFIG_MAX_PROFILES)     /* boot files, kernel, initrd, template, netboots */
#define PREFLIGHT_MAX_FINDINGS       (PREFLIGHT_MAX_NEEDS + 3)       /* and two roots, the initramfs plan */

/* Logging */
#define LOG_MAX_LINE                 2048
#define LOG_MAX_FIELD                256
#define LOG_RATELIMIT_SLOTS          1024    /* peers tracked for rate limiting */
#define LOG_RATELIMIT_BURST          10
#define LOG_RATELIMIT_INTERVAL_USEC  (10 * 1000000ULL)

/* JSON APIs (/v1/agent, /v1/admin, the control socket) */
#define API_MAX_BODY                 65536   /* request bytes */
#define API_MAX_JSON_DEPTH           8
#define API_MAX_RESPONSE             (16 * 1024 * 1024)
#define API_MAX_TEXT                 255     /* every string field */

/* Profiles */
#define PROFILE_MAX_WORD             63      /* names, selectors, templates */
#define PROFILE_MAX_PATTERNS         16      /* values per selector */
#define PROFILE_MAX_LABELS           8
#define CONFIG_MAX_PROFILES          64
#define PROFILE_MAX_DISK_PATH        255     /* install.disk_path */

/* Enrollment agent */
#define AGENT_MAX_NICS               64
#define AGENT_MAX_DISKS              64
#define AGENT_MAX_STRING             255     /* bytes of an inventory string, event detail or heartbeat status */
#define AGENT_MAX_REASON             1023    /* bytes of an instruction's reason (it may quote a failure) */
#define AGENT_MAX_BODY_BYTES         (64 * 1024)        /* request and response bodies of the agent API */
#define AGENT_MAX_ATTR_BYTES         4096    /* one sysfs attribute (a page) */
#define AGENT_MAX_PROC_BYTES         (4 * 1024 * 1024)  /* /proc/cpuinfo and /proc/meminfo */
#define AGENT_MAX_DIR_ENTRIES        1024    /* names read from sys/class/net or sys/block */
#define AGENT_MAX_NIC_SPEED_MBPS     10000000        /* faster is a bogus value: reported as 0, unknown */
#define AGENT_MAX_CPUS               65536
#define AGENT_MAX_CMDLINE_BYTES      8192    /* the kernel command line */
#define AGENT_MAX_URL                512     /* metald.url and image URLs */
#define AGENT_MAX_SESSION            128     /* base64url characters of a session secret */
#define AGENT_MIN_SESSION            32
#define AGENT_MAX_MACHINE_NAME       63
#define AGENT_MAX_STATE_NAME         32
#define AGENT_MAX_JSON_DEPTH         8       /* responses nest three objects deep */
#define AGENT_MAX_IMAGE_BYTES        (1ULL << 44)       /* 16 TiB */
#define AGENT_MIN_HEARTBEAT_S        1
#define AGENT_MAX_HEARTBEAT_S        3600
#define AGENT_DEFAULT_HEARTBEAT_S    10      /* before metald has said otherwise */
#define AGENT_CONNECT_TIMEOUT_MS     5000
#define AGENT_REQUEST_TIMEOUT_MS     30000   /* a whole call, connect included */
#define AGENT_BACKOFF_MIN_USEC       (1 * 1000000ULL)   /* first retry of an unreachable metald */
#define AGENT_BACKOFF_MAX_USEC       (60 * 1000000ULL)
#define AGENT_SLOW_RETRY_USEC        (60 * 1000000ULL)  /* refusals an operator must fix: 409, other 4xx */
#define AGENT_MAX_RETRY_AFTER_USEC   (600 * 1000000ULL) /* longest Retry-After honoured */
#define AGENT_EVENT_ATTEMPTS         3       /* tries of an event before a reboot goes ahead without it, or a refused one is dropped */

/* Enrollment initramfs (boot.enroll.build) */
#define INITRAMFS_MAX_FILES          4096    /* entries of one image: files, directories, links */
#define INITRAMFS_MAX_LIBRARIES      256     /* shared libraries bundled with metald-agent */
#define INITRAMFS_MAX_MODULES        512     /* kernel modules bundled, dependencies included */
#define INITRAMFS_MAX_TREE_MODULES   65536   /* module files indexed in a module tree */
#define INITRAMFS_MAX_TREE_DEPTH     16      /* directory levels below the module tree */
#define INITRAMFS_MAX_DEPENDS        64      /* depends= names of one module */
#define INITRAMFS_MAX_MODULE_NAME    55      /* kernel MODULE_NAME_LEN - 1 */
#define INITRAMFS_MAX_NEEDED         128     /* DT_NEEDED entries of one ELF object */
#define INITRAMFS_MAX_DYNAMIC        8192    /* entries of one dynamic section */
#define INITRAMFS_MAX_ELF_BYTES      (128u * 1024 * 1024)       /* one executable, library or module */
#define INITRAMFS_MAX_BUILTIN_BYTES  (4u * 1024 * 1024)         /* modules.builtin */
#define INITRAMFS_MAX_IMAGE_BYTES    (1024ULL * 1024 * 1024)    /* content before compression, and the image */
#define CONFIG_MAX_EXTRA_MODULES     64      /* boot.enroll.build.extra_modules */

/* Persistence */
#define STORE_BUSY_TIMEOUT_MS        5000
#define STORE_MAX_NAME               63      /* machine, profile and event names */
#define STORE_MAX_TEXT               255     /* serials, reasons, event details */
#define STORE_MAX_INVENTORY          65536   /* inventory JSON bytes */
#define STORE_MAX_EVENTS_PER_MACHINE 1000    /* oldest timeline entries are pruned past this */

/* Signed images (docs/IMAGES.md) */
#define IMAGE_MAX_MANIFEST_BYTES     (1024 * 1024)      /* refused unread past this */
#define IMAGE_MAX_NAME               63      /* image names */
#define IMAGE_MAX_CMDLINE            1024    /* the image's kernel command line */
#define IMAGE_MAX_VERSION            ((1ULL << 53) - 1) /* exact in every JSON reader */
#define IMAGE_MIN_CHUNK_BYTES        (64 * 1024)
#define IMAGE_MAX_CHUNK_BYTES        (64 * 1024 * 1024)
#define IMAGE_MAX_CHUNKS             65536   /* per artifact: 256 GiB at 4 MiB chunks */
#define IMAGE_MAX_EXTENTS            65536   /* mapped ranges of one disk image */
#define IMAGE_MAX_ARTIFACT_BYTES     (1ULL << 42)       /* 4 TiB: one file of an image */
#define IMAGE_MAX_KEYS               16      /* images.trusted_keys, images.revoked_keys */
#define IMAGE_EXTENT_ALIGN           4096    /* extents start and end on this */
#define IMAGE_CONFIG_MIN_OFFSET      (1024 * 1024)      /* disk.config starts past the boot area */
#define IMAGE_CONFIG_MIN_BYTES       (1024 * 1024)      /* and is at least this long */
#define IMAGE_SECTOR_BYTES           512     /* the sector of the partition tables image_build reads */
#define IMAGE_MAX_GPT_ENTRIES        1024    /* GPT partition entries looked at (sgdisk writes 128) */
#define IMAGE_GPT_NAME_UNITS         36      /* UTF-16 code units of a GPT partition name */
#define IMAGE_DEFAULT_CHUNK_BYTES    (4 * 1024 * 1024)
#define IMAGE_ZSTD_DEFAULT_LEVEL     3
#define IMAGE_ZSTD_MAX_LEVEL         19
#define IMAGE_DEFAULT_EXPIRES_S      (90LL * 86400)     /* sign --build without --expires */
#define IMAGE_MAX_EXPIRES_S          (10LL * 365 * 86400)
#define IMAGE_IO_BUF_BYTES           (1024 * 1024)      /* read buffer when hashing, copying, extracting */
#define IMAGE_MAX_KEY_FILE_BYTES     (16 * 1024)        /* a PEM key file */
#define IMAGE_MAX_ARCHIVE_ENTRIES    16      /* entries of an image archive (6 files and a directory) */
#define IMAGE_MAX_CATALOG_IMAGES     4096    /* NAME/VERSION directories list reads */
#define IMAGE_DEFAULT_MAX_INSTALLS   4       /* images.max_concurrent_installs */
#define IMAGE_INSTALL_GRACE_S        60      /* a machine told to install holds its slot this long before it starts */
#define IMAGE_CATALOG_CACHE_S        5       /* the registry looks an image up in the catalog again after this */
#define IMAGE_CATALOG_CACHE_ENTRIES  16      /* images (name, pinned version) the registry remembers */
#define INSTRUCTION_MAX_URL          (BOOT_MAX_URL + 128)       /* BASE/_metald/images/NAME/VERSION */
#define INSTRUCTION_MAX_DISK         (PROFILE_MAX_DISK_PATH + 5)        /* "path=" + install.disk_path */
#define IMAGE_MAX_CONCURRENT_INSTALLS 1024
#define IMAGE_MAX_JSON_DEPTH         8       /* nesting of manifest.json (it needs 5) */
#define IMAGE_MAX_JSON_FIELDS        16      /* fields of one manifest object (it needs 10) */
/* a disk chunk's zstd frame for n raw bytes: above ZSTD_compressBound(n) = n + n/256 + 64 */
#define IMAGE_MAX_ZSTD_CHUNK(n)      ((n) + (n) / 128 + 4096)

/* Image installation by metald-agent (metald/agent_install.h) */
#define AGENT_INSTALL_BOOT_AREA_BYTES  (1024 * 1024)    /* first MiB: written last; last MiB (backup GPT): wiped first */
#define AGENT_INSTALL_ZERO_BYTES       (1024 * 1024)    /* the buffer zeros are written from when nothing faster works */
#define AGENT_INSTALL_FETCH_ATTEMPTS   8       /* tries of one chunk before the install fails */
#define AGENT_INSTALL_BACKOFF_MIN_USEC (500 * 1000ULL)  /* first retry of a chunk; doubles */
#define AGENT_INSTALL_BACKOFF_MAX_USEC (10 * 1000000ULL)
#define AGENT_INSTALL_LOW_SPEED_BYTES  1024    /* a chunk transfer slower than this many bytes/s ... */
#define AGENT_INSTALL_LOW_SPEED_S      20      /* ... for this long is dropped and retried */
#define AGENT_INSTALL_CHUNK_TIMEOUT_MS (10 * 60 * 1000) /* one chunk, connect included */
#define AGENT_INSTALL_PROGRESS_S       5       /* default period of progress reports */
#define AGENT_INSTALL_MAX_STATE_BYTES  512     /* the resume state file */
#define AGENT_INSTALL_MAX_SIG_BYTES    1024    /* manifest.json.sig as fetched (it must be 64) */
#define AGENT_CONFIG_MAX_RECORD        (64 * 1024)      /* the configuration record; this much of the range is rewritten */
#define AGENT_CONFIG_MAX_JSON          (AGENT_CONFIG_MAX_RECORD - 64)   /* its JSON, after the 64-byte header */
#define AGENT_CONFIG_ALIGN             4096    /* the record is padded to a multiple of this */

/* Power control (metald/power.h) */
#define POWER_MAX_PATH               255     /* a QMP socket or password file path (a socket needs < 108) */
#define POWER_MAX_HOST               253     /* a BMC's DNS name or address */
#define POWER_MAX_USER               16      /* IPMI 2.0 user names */
#define POWER_MAX_PASSWORD           20      /* IPMI 2.0 passwords */
#define POWER_MAX_CIPHER_SUITE       17      /* RMCP+ cipher suites ipmitool knows */
#define POWER_DEFAULT_TIMEOUT_MS     20000   /* one operation, connect to last reply */
#define POWER_MAX_TIMEOUT_MS         (10 * 60 * 1000)
#define POWER_QMP_MAX_MESSAGE        (16 * 1024)        /* one QMP line; a longer one ends the session */
#define POWER_QMP_MAX_DEPTH          16      /* JSON nesting of a QMP message */
#define POWER_QMP_MAX_MESSAGES       256     /* messages (events) read while waiting for one reply */
#define POWER_QMP_MAX_STATUS         31      /* bytes of a query-status "status" */
#define POWER_IPMI_MAX_OUTPUT        4096    /* bytes of ipmitool's stdout, and of its stderr, kept */
#define POWER_IPMI_DEFAULT_PORT      623
#define POWER_WAIT_STEP_MS           10      /* polling a child that closed its pipes for its exit */
#define REGISTRY_REIMAGE_POWER_MS    8000    /* status, then on or cycle, after a reimage: below the HTTP pool's 10 s watchdog */
