/* console.h - the operator console (DESIGN Part 3, "Operator console"):
 * static pages and the JSON API under /api/v1/ on a listener of its own
 * (console.listen), never the public one.
 *
 * Accounts are console.users_file's lines (sukictl console passwd);
 * sessions live in Redis (P:csession:<sha256 of the cookie>) so that every
 * sukid on the same Redis accepts them. Every operation is lib/ops.c's,
 * the one sukictl runs. */
#ifndef SUKI_CONSOLE_H
#define SUKI_CONSOLE_H

#include "util.h"

struct suki_daemon;
struct suki_console;

/* Bind console.listen of D->conf (must not be "") and serve. D is
 * borrowed. NULL with err filled when it cannot bind. */
struct suki_console *suki_console_new(struct suki_daemon *D,
                                      struct suki_err *err);
/* The housekeeping tick: the listener's connection sweep. */
void suki_console_tick(struct suki_console *c);
/* Stop serving and free, before D->redis. NULL-safe. */
void suki_console_free(struct suki_console *c);
int suki_console_port(const struct suki_console *c);

#endif
