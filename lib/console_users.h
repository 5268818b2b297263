/* console_users.h - the operator console's accounts: console.users_file
 * holds "name:HASH" lines, HASH an Argon2id string of libsodium's
 * crypto_pwhash_str (parameters inside it). Lines starting with # and
 * blank lines are kept as they are. */
#ifndef SUKI_CONSOLE_USERS_H
#define SUKI_CONSOLE_USERS_H

#include <stdbool.h>

#include "util.h"

#define SUKI_CONSOLE_NAME_MAX 64
#define SUKI_CONSOLE_PASSWORD_MAX 1024

/* 1 to 64 of A-Z a-z 0-9 . _ @ - */
bool suki_console_user_name_ok(const char *name);

/* Hash password and add or replace name's line in path, atomically: a
 * new file (mode 0600) beside it, synced, renamed over it. Slow (the
 * hash): sukictl only. 0, or -errno with err filled. */
int suki_console_users_set(const char *path, const char *name,
                           const char *password, struct suki_err *err);

/* Whether name's line in path verifies password: 1 yes, 0 no (an unknown
 * name costs a hash too, so the answer's time tells nothing), or -errno
 * when the file cannot be read (err filled). Slow (tens of ms) and reads
 * the file: never on the event loop. Thread-safe. */
int suki_console_users_check(const char *path, const char *name,
                             const char *password, struct suki_err *err);

#endif
