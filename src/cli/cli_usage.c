/* SPDX-License-Identifier: Apache-2.0 */
/* What `metald help` prints, and the one line every usage error prints. */
#include <stdio.h>

#include "metald/cli.h"

static const char usage_text[] =
        "usage: metald <command> [options]\n"
        "\n"
        "commands:\n"
        "  serve [--config FILE]          run the daemon (DHCP, TFTP, HTTP)\n"
        "  config check [--config FILE]   validate a configuration file\n"
        "  status [--json] [--watch]      machines per state, then one line per machine\n"
        "  machine list                   the same table as status\n"
        "  machine show NAME|MAC          inventory and timeline of one machine\n"
        "  machine approve NAME|MAC       let a registered machine be imaged\n"
        "  machine reimage NAME|MAC       image a ready or failed machine again; metald power-cycles it\n"
        "    [--image IMG[:VERSION]]      its own image from now on (--image= follows its profile again)\n"
        "    [--wait [--timeout D]]       until it is ready again (default 30m): 0 ready, 1 failed or timed out\n"
        "  machine retire NAME|MAC        take a machine out of service\n"
        "  machine forget NAME|MAC        delete a machine; it is discovered anew\n"
        "  machine label NAME|MAC K=V,..  set the labels profiles match on\n"
        "  enroll-image build             build the enrollment initramfs [--output PATH]\n"
        "  image keygen|sign|verify       make keys; build and sign an image; check one (metald image --help)\n"
        "  image import|list|show|rm      the catalog of signed images in STATE_DIR/images/\n"
        "  power ACTION --driver D ...    status, on, off, cycle, reset or soft-off of one machine\n"
        "                                 (metald power --help)\n"
        "  version                        print the version\n"
        "  help                           show this text\n"
        "\n"
        "The default configuration file is " CLI_DEFAULT_CONFIG ".\n"
        "status and machine talk to the daemon over --socket PATH (default /run/metald/control.sock).\n"
        "Exit codes: 0 ok, 1 operation failed, 2 usage or configuration error.\n";

int cli_usage_error(const char *what, const char *arg)
{
        fprintf(stderr, "metald: %s%s%s\nTry 'metald help'.\n", what, arg ? ": " : "", arg ? arg : "");
        return EXIT_USAGE;
}

void cli_usage(FILE *f)
{
        fputs(usage_text, f);
}
