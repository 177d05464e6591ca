/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/initramfs.h"
#include "metald/util.h"

/*
 * /init of the enrollment environment, run by busybox sh as PID 1. It must
 * never exit (the kernel would panic) nor hang: every path ends in finish,
 * which reboots after a delay, or with metald.debug=1 on the command line
 * opens a shell and reboots when it ends.
 */
const char initramfs_init_script[] =
        "#!/bin/sh\n"
        "# metald enrollment environment: load drivers, bring up the boot NIC, run metald-agent.\n"
        "export PATH=/bin:/usr/bin HOME=/root TERM=linux\n"
        "umask 022\n"
        "DEBUG=0\n"
        "MAC=\n"
        "\n"
        "say() { echo \"metald-enroll: $*\"; }\n"
        "\n"
        "finish() {\n"
        "        if [ \"$DEBUG\" = 1 ]; then\n"
        "                say \"metald.debug=1: starting a shell; the machine reboots when it exits\"\n"
        "                setsid cttyhack sh\n"
        "        else\n"
        "                say \"rebooting in 30 s\"\n"
        "                sleep 30\n"
        "        fi\n"
        "        while :; do\n"
        "                say \"rebooting\"\n"
        "                sync\n"
        "                reboot -f\n"
        "                sleep 5\n"
        "        done\n"
        "}\n"
        "\n"
        "fail() {\n"
        "        say \"FAILED: $*\"\n"
        "        finish\n"
        "}\n"
        "\n"
        "mount_all() {\n"
        "        mkdir -p /proc /sys /dev /tmp /run/metald\n"
        "        chmod 1777 /tmp\n"
        "        mount -t proc proc /proc || fail \"cannot mount /proc\"\n"
        "        mount -t sysfs sysfs /sys || fail \"cannot mount /sys\"\n"
        "        mount -t devtmpfs devtmpfs /dev || fail \"cannot mount /dev\"\n"
        "}\n"
        "\n"
        "read_cmdline() {\n"
        "        set -f\n"
        "        for word in $(cat /proc/cmdline); do\n"
        "                case \"$word\" in\n"
        "                metald.mac=*) MAC=${word#metald.mac=} ;;\n"
        "                metald.debug=1) DEBUG=1 ;;\n"
        "                esac\n"
        "        done\n"
        "        set +f\n"
        "        MAC=$(echo \"$MAC\" | tr 'ABCDEF-' 'abcdef:')\n"
        "}\n"
        "\n"
        "load_modules() {\n"
        "        total=0 loaded=0 failed=\n"
        "        [ -s /" INITRAMFS_MODULE_LIST " ] || return 0\n"
        "        # the image holds no firmware: a driver asking for some gets ENOENT at once, never a sysfs wait\n"
        "        nofallback=/proc/sys/kernel/firmware_config/ignore_sysfs_fallback\n"
        "        [ -w \"$nofallback\" ] && echo 1 > \"$nofallback\"\n"
        "        while read -r mod; do\n"
        "                [ -n \"$mod\" ] || continue\n"
        "                total=$((total + 1))\n"
        "                if insmod \"$mod\"; then\n"
        "                        loaded=$((loaded + 1))\n"
        "                else\n"
        "                        failed=\"$failed ${mod##*/}\"\n"
        "                fi\n"
        "        done < /" INITRAMFS_MODULE_LIST "\n"
        "        if [ -n \"$failed\" ]; then\n"
        "                say \"loaded $loaded of $total kernel modules; failed:$failed\"\n"
        "        else\n"
        "                say \"loaded $loaded kernel modules\"\n"
        "        fi\n"
        "}\n"
        "\n"
        "nic_with_mac() {\n"
        "        for dev in /sys/class/net/*; do\n"
        "                [ -r \"$dev/address\" ] || continue\n"
        "                if [ \"$(cat \"$dev/address\")\" = \"$MAC\" ]; then\n"
        "                        echo \"${dev##*/}\"\n"
        "                        return 0\n"
        "                fi\n"
        "        done\n"
        "        return 1\n"
        "}\n"
        "\n"
        "nics_present() {\n"
        "        list=\n"
        "        for dev in /sys/class/net/*; do\n"
        "                [ -r \"$dev/address\" ] && list=\"$list ${dev##*/}=$(cat \"$dev/address\")\"\n"
        "        done\n"
        "        echo \"${list:- none}\"\n"
        "}\n"
        "\n"
        "find_nic() {\n"
        "        waited=0\n"
        "        while ! IFACE=$(nic_with_mac); do\n"
        "                [ $waited -eq 0 ] && say \"waiting up to 30 s for the network interface with MAC $MAC\"\n"
        "                if [ $waited -ge 30 ]; then\n"
        "                        fail \"no network interface with MAC $MAC appeared within 30 s (present:$(nics_present))\"\n"
        "                fi\n"
        "                sleep 1\n"
        "                waited=$((waited + 1))\n"
        "        done\n"
        "}\n"
        "\n"
        "network_up() {\n"
        "        ip link set lo up\n"
        "        ip link set \"$IFACE\" up || fail \"cannot bring up $IFACE\"\n"
        "        say \"found $IFACE with MAC $MAC; asking for an address over DHCP\"\n"
        "        rm -f /run/metald/address\n"
        "        udhcpc -i \"$IFACE\" -s /" INITRAMFS_UDHCPC_SCRIPT " -n -t 10 -T 2 ||\n"
        "                fail \"no DHCP lease on $IFACE after 10 attempts\"\n"
        "        addr=$(cat /run/metald/address 2>/dev/null)\n"
        "        [ -n \"$addr\" ] || fail \"the DHCP lease on $IFACE was not applied\"\n"
        "        say \"network up on $IFACE $addr\"\n"
        "}\n"
        "\n"
        "run_agent() {\n"
        "        LD_LIBRARY_PATH=$(cat /" INITRAMFS_LIBRARY_PATH " 2>/dev/null)\n"
        "        if [ -n \"$LD_LIBRARY_PATH\" ]; then export LD_LIBRARY_PATH; else unset LD_LIBRARY_PATH; fi\n"
        "        say \"starting metald-agent\"\n"
        "        /" INITRAMFS_AGENT_PATH " run\n"
        "        status=$?\n"
        "        say \"metald-agent exited with status $status\"\n"
        "}\n"
        "\n"
        "mount_all\n"
        "read_cmdline\n"
        "say \"starting ($(uname -r))\"\n"
        "[ -n \"$MAC\" ] || fail \"metald.mac= is missing from the kernel command line\"\n"
        "echo \"$MAC\" | grep -qE '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' || fail \"metald.mac=$MAC is not a MAC address\"\n"
        "load_modules\n"
        "find_nic\n"
        "network_up\n"
        "run_agent\n"
        "finish\n";

/*
 * udhcpc calls this with the lease in its environment ($ip, $mask, $router,
 * $dns, $domain). It applies address, prefix, default route and resolvers,
 * and leaves the address in /run/metald/address for /init to report.
 */
const char initramfs_udhcpc_script[] =
        "#!/bin/sh\n"
        "# metald enrollment environment: apply a DHCP lease from udhcpc to $interface.\n"
        "case \"$1\" in\n"
        "deconfig)\n"
        "        ip -4 addr flush dev \"$interface\"\n"
        "        ip link set \"$interface\" up\n"
        "        ;;\n"
        "bound|renew)\n"
        "        prefix=${mask:-32}\n"
        "        if ! ip -4 addr show dev \"$interface\" | grep -q \"inet $ip/$prefix \"; then\n"
        "                ip -4 addr flush dev \"$interface\"\n"
        "                ip -4 addr add \"$ip/$prefix\" ${broadcast:+broadcast \"$broadcast\"} dev \"$interface\" || exit 1\n"
        "        fi\n"
        "        while ip -4 route del default dev \"$interface\" 2>/dev/null; do :; done\n"
        "        for r in $router; do\n"
        "                ip -4 route add default via \"$r\" dev \"$interface\" && break\n"
        "        done\n"
        "        {\n"
        "                [ -n \"$domain\" ] && echo \"search $domain\"\n"
        "                for s in $dns; do echo \"nameserver $s\"; done\n"
        "        } > /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf\n"
        "        mkdir -p /run/metald\n"
        "        echo \"$ip/$prefix\" > /run/metald/address\n"
        "        ;;\n"
        "esac\n"
        "exit 0\n";

/*
 * A fixed list rather than `busybox --list`: the image must not depend on
 * running the configured binary (it may be for another architecture), and
 * the same busybox bytes must give the same image. The scripts use the
 * first group; the rest make a metald.debug=1 shell useful.
 */
const char *const initramfs_applets[] = {
        "[", "cat", "chmod", "cttyhack", "echo", "grep", "insmod", "ip", "mkdir", "mount", "mv",
        "poweroff", "reboot", "rm", "sed", "setsid", "sh", "sleep", "sync", "test", "tr", "udhcpc", "uname",
        "awk", "cp", "dd", "df", "dmesg", "free", "head", "hexdump", "kill", "less", "ln", "ls", "lsmod",
        "modinfo", "nslookup", "ping", "ps", "rmmod", "sha256sum", "tail", "umount", "vi", "wc", "wget",
};
const size_t initramfs_n_applets = ARRAY_SIZE(initramfs_applets);

static const char *unpack_suffix(enum initramfs_unpack u)
{
        switch (u) {
        case INITRAMFS_UNPACK_XZ:
                return ".xz";
        case INITRAMFS_UNPACK_ZSTD:
                return ".zst";
        case INITRAMFS_UNPACK_GZIP:
                return ".gz";
        default:
                return "";
        }
}

int initramfs_module_image_path(const char *moddir, const struct initramfs_module *m, char **ret)
{
        size_t len = strlen(m->path), sfx = strlen(unpack_suffix(m->unpack));
        char *p;

        if (sfx > len)
                return -EINVAL;
        if (asprintf(&p, "%s/%.*s", moddir, (int)(len - sfx), m->path) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int initramfs_module_list(const struct initramfs_modules *m, const char *moddir, struct buf *out)
{
        for (size_t i = 0; i < m->n; i++) {
                _cleanup_free_ char *p = NULL;
                int r = initramfs_module_image_path(moddir, &m->mods[i], &p);

                if (r < 0 || (r = buf_printf(out, "/%s\n", p)) < 0)
                        return r;
        }
        return 0;
}
