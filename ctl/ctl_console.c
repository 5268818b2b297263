/* ctl_console.c - sukictl console passwd NAME: a console account. */
#include "ctl.h"
#include "console_users.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* One line of standard input, without its newline; no echo on a terminal.
 * Returns owned, or NULL at end of input. */
static char *read_password(void)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fputs("Password: ", stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

int sukictl_console(struct sukictl *ctl, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "passwd") != 0) {
        sukictl_errx("usage: sukictl console passwd NAME");
        return SUKICTL_USAGE;
    }
    const char *name = argv[1];
    if (!suki_console_user_name_ok(name)) {
        sukictl_errx("user name '%s' must be 1 to %d of A-Z a-z 0-9 . _ @ -",
                     name, SUKI_CONSOLE_NAME_MAX);
        return SUKICTL_USAGE;
    }
    const char *path = ctl->conf->console_users_file;
    if (!path) {
        sukictl_errx("%s: no console.users_file configured", ctl->conf_path);
        return SUKICTL_FAILED;
    }
    char *pw = read_password();
    if (!pw || !pw[0]) {
        sukictl_errx("no password on standard input");
        free(pw);
        return SUKICTL_FAILED;
    }
    struct suki_err err = {{0}};
    int rc = suki_console_users_set(path, name, pw, &err);
    explicit_bzero(pw, strlen(pw));
    free(pw);
    if (rc < 0) {
        sukictl_errx("%s", err.msg);
        return SUKICTL_FAILED;
    }
    if (ctl->json) {
        json_t *o = json_pack("{s:s,s:s}", "user", name, "users_file", path);
        char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (js)
            puts(js);
        free(js);
        json_decref(o);
    } else
        printf("password of %s set in %s\n", name, path);
    return SUKICTL_OK;
}
