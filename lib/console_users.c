/* console_users.c - console accounts, hashed with libsodium (Argon2id). */
#include "console_users.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The users file is read whole; a few hundred accounts fit easily. */
/* Argon2id's cost: OWASP's recommended minimum (19 MiB, 2 passes), not
 * libsodium's INTERACTIVE 64 MiB: each check of a login allocates that
 * much in sukid (whose RSS is some 20 MiB otherwise), on the console's one
 * hash thread, so one login at a time costs 19 MiB, and still ~30 ms of
 * CPU per guess. A hash keeps its own parameters: older lines verify. */
#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024 * 1024)
#define USERS_MAX (1024 * 1024)

bool suki_console_user_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= SUKI_CONSOLE_NAME_MAX &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789._@-") == n;
}

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok = -1;
/* A hash of nothing anyone types, verified for an unknown name. */
static char dummy_hash[crypto_pwhash_STRBYTES];

static void sodium_setup(void)
{
    sodium_ok = sodium_init() < 0 ? -1 : 0;
    if (sodium_ok == 0 &&
        crypto_pwhash_str(dummy_hash, "-", 1, PW_OPSLIMIT, PW_MEMLIMIT) != 0)
        sodium_ok = -1;
}

static int setup(struct suki_err *err)
{
    pthread_once(&sodium_once, sodium_setup);
    if (sodium_ok < 0)
        return suki_err_set(err, -ENOMEM,
                            "libsodium: cannot initialise (or out of memory "
                            "for a password hash)");
    return 0;
}

/* name's line in text (NUL-terminated): its start and length. */
static const char *find_line(const char *text, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        if (n > nl && memcmp(p, name, nl) == 0 && p[nl] == ':') {
            *len = n;
            return p;
        }
        p += n;
        if (*p == '\n')
            p++;
    }
    return NULL;
}

int suki_console_users_set(const char *path, const char *name,
                           const char *password, struct suki_err *err)
{
    if (!suki_console_user_name_ok(name))
        return suki_err_set(err, -EINVAL,
                            "user name '%s' must be 1 to %d of A-Z a-z 0-9 . "
                            "_ @ -",
                            name, SUKI_CONSOLE_NAME_MAX);
    size_t plen = strlen(password);
    if (plen == 0 || plen > SUKI_CONSOLE_PASSWORD_MAX)
        return suki_err_set(err, -EINVAL, "the password must be 1 to %d bytes",
                            SUKI_CONSOLE_PASSWORD_MAX);
    if (setup(err) < 0)
        return -ENOMEM;
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password, plen, PW_OPSLIMIT, PW_MEMLIMIT) != 0)
        return suki_err_set(err, -ENOMEM, "out of memory hashing the password");
    size_t len = 0;
    struct suki_err rerr = {{0}};
    char *old = suki_read_file(path, &len, USERS_MAX, &rerr);
    if (!old && access(path, F_OK) == 0)
        return suki_err_set(err, -EIO, "%s", rerr.msg);
    char *tmp = suki_asprintf("%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        suki_err_set(err, -e, "%s: cannot create: %s", tmp, strerror(e));
        free(tmp);
        free(old);
        return -e;
    }
    (void)fchmod(fd, 0600);
    FILE *f = fdopen(fd, "w");
    SUKI_ASSERT(f);
    const char *text = old ? old : "";
    size_t skip_len = 0;
    const char *skip = find_line(text, name, &skip_len);
    if (skip) {
        fwrite(text, 1, (size_t)(skip - text), f);
        fprintf(f, "%s:%s", name, hash);
        fputs(skip + skip_len, f);
        if (text[strlen(text) - 1] != '\n')
            fputc('\n', f);
    } else {
        fputs(text, f);
        if (*text && text[strlen(text) - 1] != '\n')
            fputc('\n', f);
        fprintf(f, "%s:%s\n", name, hash);
    }
    sodium_memzero(hash, sizeof(hash));
    int rc = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = -errno;
        suki_err_set(err, rc, "%s: cannot write: %s", tmp, strerror(-rc));
    }
    if (fclose(f) != 0 && rc == 0) {
        rc = -errno;
        suki_err_set(err, rc, "%s: cannot write: %s", tmp, strerror(-rc));
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
        suki_err_set(err, rc, "%s: cannot rename to %s: %s", tmp, path,
                     strerror(-rc));
    }
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    free(old);
    return rc;
}

int suki_console_users_check(const char *path, const char *name,
                             const char *password, struct suki_err *err)
{
    if (setup(err) < 0)
        return -ENOMEM;
    size_t len = 0;
    char *text = suki_read_file(path, &len, USERS_MAX, err);
    if (!text)
        return -EIO;
    char hash[crypto_pwhash_STRBYTES];
    suki_strlcpy(hash, dummy_hash, sizeof(hash));
    bool known = false;
    size_t ll = 0;
    const char *line =
        suki_console_user_name_ok(name) ? find_line(text, name, &ll) : NULL;
    size_t nl = strlen(name);
    if (line && ll - nl - 1 < sizeof(hash)) {
        memcpy(hash, line + nl + 1, ll - nl - 1);
        hash[ll - nl - 1] = '\0';
        known = true;
    }
    free(text);
    size_t plen = strnlen(password, SUKI_CONSOLE_PASSWORD_MAX + 1);
    int ok = plen <= SUKI_CONSOLE_PASSWORD_MAX &&
             crypto_pwhash_str_verify(hash, password, plen) == 0;
    return known && ok ? 1 : 0;
}
