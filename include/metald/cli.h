/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdio.h>

#include "metald/util.h"

#define CLI_DEFAULT_CONFIG "/etc/metald/metald.yaml"

int cli_main(int argc, char **argv);
/* The usage text of `metald help`. */
void cli_usage(FILE *f);
/* One line naming what is wrong, a pointer to help; returns EXIT_USAGE. */
int cli_usage_error(const char *what, const char *arg);
/* status and machine subcommands, over the control socket. */
int cli_control(int argc, char **argv);
/* image keygen | sign | verify | import | list | show | rm. */
int cli_image(int argc, char **argv);
/* power status|on|off|cycle|reset|soft-off of one machine, through its driver. */
int cli_power(int argc, char **argv);
