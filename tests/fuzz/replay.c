/* SPDX-License-Identifier: Apache-2.0 */
/* Replays a fuzz target's corpus without libFuzzer, so every compiler and sanitizer build can run it. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf = malloc(1 << 20);
        size_t n;

        if (!f || !buf) {
                fprintf(stderr, "replay: cannot read %s\n", path);
                free(buf);
                if (f)
                        fclose(f);
                return -1;
        }
        n = fread(buf, 1, 1 << 20, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        unsigned files = 0;

        for (int i = 1; i < argc; i++) {
                DIR *d = opendir(argv[i]);
                struct dirent *e;

                if (!d) {
                        if (run_file(argv[i]) < 0)
                                return 1;
                        files++;
                        continue;
                }
                while ((e = readdir(d))) {
                        char path[4096];

                        if (e->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                        if (run_file(path) < 0) {
                                closedir(d);
                                return 1;
                        }
                        files++;
                }
                closedir(d);
        }
        if (files == 0) {
                fprintf(stderr, "replay: empty corpus\n");
                return 1;
        }
        printf("%s: replayed %u inputs\n", argv[0], files);
        return 0;
}
