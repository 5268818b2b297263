/* fuzz_fds.h - "nothing was left open" for harnesses whose code under test
 * opens files. Only descriptors of files and directories are counted: the
 * sanitizers start llvm-symbolizer on pipes the first time they print or
 * match a stack (e.g. against lsan.supp), and those stay open. */
#ifndef SUKI_FUZZ_FDS_H
#define SUKI_FUZZ_FDS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Number of open descriptors naming a path; their paths go to out (may be
 * NULL), one a line, for the message. */
static inline int fuzz_file_fds(char *out, size_t size)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0, self = d ? dirfd(d) : -1;
    struct dirent *de;
    if (out && size)
        out[0] = '\0';
    while (d && (de = readdir(d)) != NULL) {
        char link[300], target[256];
        if (de->d_name[0] == '.' || atoi(de->d_name) == self)
            continue;
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t k = readlink(link, target, sizeof(target) - 1);
        if (k <= 0 || target[0] != '/')
            continue; /* pipe:, socket:, anon_inode: */
        target[k] = '\0';
        n++;
        size_t used = out ? strlen(out) : 0;
        if (out && used + strlen(target) + 2 < size)
            snprintf(out + used, size - used, "%s\n", target);
    }
    if (d)
        closedir(d);
    return n;
}

/* Abort when more files are open than before (count from fuzz_file_fds). */
static inline void fuzz_check_fds(int before, const char *what)
{
    char names[2048];
    if (fuzz_file_fds(names, sizeof(names)) > before) {
        fprintf(stderr, "%s left a file open; open now:\n%s", what, names);
        abort();
    }
}

#endif
