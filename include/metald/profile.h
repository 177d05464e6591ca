/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/config.h"
#include "metald/limits.h"

/*
 * Profiles decide which machine gets what. Matching is pure: the most
 * specific profile whose every selector matches wins; two best matches of
 * equal specificity are a tie, and the machine gets no profile until an
 * operator resolves it.
 */
/* What a machine is known by when profiles are matched. */
struct profile_facts {
        uint8_t mac[6];
        const char *uuid, *serial, *vendor, *product;   /* a UUID that is no identity counts as none */
        const char *labels;                             /* "key=value,key=value" */
};

/* Specificity of a profile's selectors: a larger number is more specific. */
unsigned profile_specificity(const struct profile_match *m);
bool profile_matches(const struct profile_match *m, const struct profile_facts *f);

enum profile_choice { PROFILE_NONE, PROFILE_ONE, PROFILE_TIE };
/* The winner in *ret; on a tie, *ret and *ret_other are the two tied profiles. */
enum profile_choice profile_choose(const struct profile *p, size_t n, const struct profile_facts *f,
                                   const struct profile **ret, const struct profile **ret_other);

/* The machine's name: the profile's template filled in, or m-<mac>. Always a safe DNS label. */
void profile_machine_name(const struct profile *p, const struct profile_facts *f, char *buf, size_t cap);
