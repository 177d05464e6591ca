/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/agent.h"
#include "metald/agent_install.h"
#include "metald/util.h"

/* What metald-agent run and metald-agent install both set up before agent_install(). */

int agent_sha256_from_hex(const char *s, uint8_t ret[MANIFEST_SHA256_BYTES])
{
        uint8_t out[MANIFEST_SHA256_BYTES];

        if (strlen(s) != 2 * sizeof(out))
                return -EINVAL;
        for (size_t i = 0; i < 2 * sizeof(out); i++) {
                char c = s[i];
                int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

                if (v < 0)
                        return -EINVAL;
                out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
        }
        memcpy(ret, out, sizeof(out));
        return 0;
}

int agent_install_setup(struct agent_install_setup *s, const char *keys_dir, const char *url, const char *hostname,
                        char *why, size_t why_cap)
{
        char disk_url[AGENT_MAX_URL + 1];
        int r;

        *s = (struct agent_install_setup){ .config = BUF_INIT(AGENT_CONFIG_MAX_JSON) };
        if (!str_has_prefix(url, "http://") ||
            (size_t)snprintf(disk_url, sizeof(disk_url), "%s/disk", url) >= sizeof(disk_url)) {
                snprintf(why, why_cap, "the image URL is not an http:// URL of at most %d bytes", AGENT_MAX_URL);
                return -EINVAL;
        }
        if (hostname && agent_config_json(hostname, &s->config) < 0) {
                snprintf(why, why_cap, "the host name is not a lower-case RFC 1123 name");
                agent_install_setup_free(s);
                return -EINVAL;
        }
        r = agent_http_fetcher_new(disk_url, &s->fetcher);
        if (r < 0) {
                snprintf(why, why_cap, "cannot set up the HTTP client: %s", strerror(-r));
                agent_install_setup_free(s);
                return r;
        }
        r = agent_keys_load(keys_dir, s->keys, ARRAY_SIZE(s->keys), &s->n_keys);
        if (r < 0) {
                snprintf(why, why_cap, "cannot load the trusted keys %s/*.pub: %s", keys_dir,
                         r == -ENOKEY ? "there are none" : strerror(-r));
                agent_install_setup_free(s);
                return r;
        }
        return 0;
}

void agent_install_setup_apply(const struct agent_install_setup *s, struct agent_install_options *o)
{
        o->keys = s->keys;
        o->n_keys = s->n_keys;
        o->fetch = agent_http_fetch;
        o->fetch_userdata = s->fetcher;
        o->config_json = s->config.len ? s->config.data : NULL;
}

void agent_install_setup_free(struct agent_install_setup *s)
{
        agent_http_fetcher_free(s->fetcher);
        s->fetcher = NULL;
        buf_free(&s->config);
}
