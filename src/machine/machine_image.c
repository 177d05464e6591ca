/* SPDX-License-Identifier: Apache-2.0 */
#include "metald/registry.h"

const char *machine_image(const struct store_machine *m, const struct profile *p, uint64_t *ret_version)
{
        if (*m->image) {
                *ret_version = m->image_version;
                return m->image;
        }
        *ret_version = p ? p->image_version : 0;
        return p ? p->image : "";
}

const struct profile_netboot *machine_netboot(const struct store_machine *m, const struct profile *p)
{
        if (*m->image || !p || !*p->netboot.kernel)
                return NULL;
        return &p->netboot;
}
