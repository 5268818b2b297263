/* fuzz.h - what every harness shares: FAIL, and a scratch directory. */
#ifndef SUKI_FUZZ_H
#define SUKI_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

/* A property the harness checks does not hold: libFuzzer keeps the input. */
#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
        abort();                                                               \
    } while (0)

/* mkdtemp of TMPDIR/suki-fuzz-NAME-XXXXXX into dir (run.sh points TMPDIR
 * into the build dir, so what a crash leaves stays there). */
static inline void fuzz_tmpdir(char *dir, size_t size, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/suki-fuzz-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
             name);
    if (!mkdtemp(dir))
        FAIL("mkdtemp failed");
}

#endif
