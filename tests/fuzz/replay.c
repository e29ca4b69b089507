/*
 * Copyright (c) Valkey Contributors
 * All rights reserved.
 * SPDX-License-Identifier: BSD-3-Clause
 */

/* A main() for a fuzz target without libFuzzer: runs the target once on
 * each file named, or on each file of each folder named, and says how many.
 * `make test` replays the regression corpus (tests/fuzz/regressions/) and
 * the seeds this way, in the normal build and under the sanitizers. */

#include "fuzz.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

static long replayed = 0;

static void replayFile(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        exit(2);
    }
    size_t cap = 4096, len = 0, n;
    uint8_t *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += n;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    replayed++;
}

int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            replayFile(argv[i]);
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) replayFile(path);
        }
        if (d) closedir(d);
    }
    fprintf(stderr, "%s: %ld input(s), no failure\n", argv[0], replayed);
    return 0;
}
