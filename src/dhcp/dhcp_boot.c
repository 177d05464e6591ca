/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <stdio.h>

#include "metald/dhcp_server.h"
#include "metald/util.h"

static bool opt_has_prefix(const struct dhcp_option *o, const char *prefix)
{
        size_t n = strlen(prefix);

        return o->present && o->len >= n && memcmp(o->data, prefix, n) == 0;
}

/* Option 77 is the raw string "iPXE", or its RFC 3004 length-prefixed form. */
static bool is_ipxe(const struct dhcp_option *o)
{
        if (!o->present)
                return false;
        if (o->len == 4 && memcmp(o->data, "iPXE", 4) == 0)
                return true;
        return o->len >= 5 && o->data[0] == 4 && memcmp(o->data + 1, "iPXE", 4) == 0;
}

static uint32_t opt_addr(const struct dhcp_option *o)
{
        if (!o->present || o->len != 4)
                return 0;
        return (uint32_t)o->data[0] << 24 | (uint32_t)o->data[1] << 16 | (uint32_t)o->data[2] << 8 | o->data[3];
}

/* Keeps a client-supplied host name only when it is a plausible DNS label. */
static void sanitize_hostname(const struct dhcp_option *o, char *dst, size_t cap)
{
        size_t n = 0;

        dst[0] = '\0';
        if (!o->present || o->len == 0 || o->len >= cap)
                return;
        for (size_t i = 0; i < o->len; i++) {
                uint8_t c = o->data[i];

                if (c == 0 && i + 1 == o->len)
                        break;          /* some clients count a trailing NUL */
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.'))
                        return;
                dst[n++] = (char)c;
        }
        dst[n] = '\0';
}

static void client_key_from(const struct dhcp_packet *p, struct client_key *k)
{
        const struct dhcp_option *cid = &p->opt[DHCP_OPT_CLIENT_ID];

        if (cid->present && cid->len > 0) {
                k->len = (uint8_t)MIN(cid->len, DHCP_MAX_CLIENT_ID);
                memcpy(k->id, cid->data, k->len);
                return;
        }
        k->id[0] = p->htype;
        memcpy(k->id + 1, p->chaddr, p->hlen);
        k->len = (uint8_t)(1 + p->hlen);
}

int dhcp_client_info_from(const struct dhcp_packet *p, struct dhcp_client_info *ci)
{
        const struct dhcp_option *o;

        memset(ci, 0, offsetof(struct dhcp_client_info, prl));
        ci->type = dhcp_msg_type(p);
        if (ci->type == 0)
                return -EBADMSG;
        client_key_from(p, &ci->key);
        if (p->htype == 1 && p->hlen == 6)
                memcpy(ci->mac, p->chaddr, 6);
        ci->pxe = opt_has_prefix(&p->opt[DHCP_OPT_VENDOR_CLASS], "PXEClient");
        ci->http_boot = opt_has_prefix(&p->opt[DHCP_OPT_VENDOR_CLASS], "HTTPClient");
        ci->ipxe = is_ipxe(&p->opt[DHCP_OPT_USER_CLASS]);
        o = &p->opt[DHCP_OPT_CLIENT_ARCH];
        if (o->present && o->len >= 2) {
                ci->has_arch = true;
                ci->arch = (uint16_t)(o->data[0] << 8 | o->data[1]);
        }
        o = &p->opt[DHCP_OPT_CLIENT_UUID];
        if (o->present && o->len == 17 && o->data[0] == 0) {
                ci->has_uuid = true;
                memcpy(ci->uuid, o->data, 17);
        }
        ci->requested = opt_addr(&p->opt[DHCP_OPT_REQUESTED_IP]);
        ci->server_id = opt_addr(&p->opt[DHCP_OPT_SERVER_ID]);
        ci->max_size = DHCP_MIN_MAX_MSG_SIZE;
        o = &p->opt[DHCP_OPT_MAX_SIZE];
        if (o->present && o->len == 2)
                ci->max_size = MAX((size_t)(o->data[0] << 8 | o->data[1]), (size_t)DHCP_MIN_MAX_MSG_SIZE);
        ci->max_size = MIN(ci->max_size, (size_t)DHCP_MAX_PACKET) - 28;     /* IP + UDP headers */
        o = &p->opt[DHCP_OPT_PARAM_LIST];
        ci->has_prl = o->present;
        memset(ci->prl, 0, sizeof(ci->prl));
        for (size_t i = 0; ci->has_prl && i < o->len; i++)
                ci->prl[o->data[i]] = 1;
        sanitize_hostname(&p->opt[DHCP_OPT_HOSTNAME], ci->hostname, sizeof(ci->hostname));
        return 0;
}

void dhcp_boot_select(const struct config *cfg, const struct dhcp_client_info *ci, uint32_t server_ip,
                      bool proxy, struct dhcp_boot *ret)
{
        const char *file = ci->has_arch ? config_boot_file(cfg, ci->arch) : NULL;
        char base[256];

        *ret = (struct dhcp_boot){ 0 };
        if (!ci->pxe && !ci->http_boot)
                return;                 /* a plain DHCP client: no boot answer */
        ret->vendor_class = ci->http_boot ? "HTTPClient" : "PXEClient";
        if (ci->ipxe) {
                /* iPXE, ROM or chainloaded: the script, never another iPXE binary */
                ret->present = config_script_url(cfg, server_ip, ret->file, sizeof(ret->file)) == 0;
                return;
        }
        if (!file)
                return;                 /* unknown architecture: nothing we can boot */
        if (ci->http_boot) {
                if (config_base_url(cfg, server_ip, base, sizeof(base)) < 0)
                        return;
                ret->present = (size_t)snprintf(ret->file, sizeof(ret->file), "%s/%s", base, file) <
                               sizeof(ret->file);
                return;
        }
        ret->present = str_copy(ret->file, sizeof(ret->file), file) == 0;
        /* edk2 ignores proxy offers whose option 43 says "boot this file" and
         * asks on port 4011 instead; BIOS PXE ROMs want it. */
        ret->vendor_opts = !proxy || (ci->has_arch && ci->arch == 0);
}
