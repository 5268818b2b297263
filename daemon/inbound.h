/* inbound.h - replies and bounces: sukid reads the mailbox its mail is
 * answered to over IMAP (libcurl's multi interface on the daemon's loop)
 * and turns what it finds into events (DESIGN Part 3, "Replies and
 * bounces").
 *
 * Storage (docs/ARCHITECTURE.md, P = redis.prefix):
 *   P:inbound-lease  string: the token of the one sukid that polls (SET PX,
 *                    renewed by every poll and every message done)
 *   P:inbound        hash: uidvalidity, last (the highest UID done: UIDs
 *                    are taken in order), polled_at, ok_at, error,
 *                    done_at, uids (messages done), n:<kind> counters,
 *                    suppressed, holder
 *
 * Every poll (inbound.poll): take or renew the lease; NOOP (the mailbox's
 * new mail into the session's view), STATUS (MESSAGES UIDNEXT
 * UIDVALIDITY: a new UIDVALIDITY starts again from 0); list the messages
 * above last with their sizes, a window of 50 sequence numbers at a time
 * from where the first of them must be (FETCH a:b (UID RFC822.SIZE)),
 * up to SUKI_INBOUND_BATCH a poll; one message at a time, in UID order:
 * fetch it
 * (;UIDVALIDITY=V/;UID=n,
 * so a mailbox recreated meanwhile fails the fetch), classify it
 * (inbound_parse.c), look up what it names among the records of sent mail
 * (the P:sent:<Message-ID> values), and in one script
 * (inbound-apply.lua) add its events, suppress the address, count it and
 * mark its UID done; then flag it \Seen. A kill -9 before the script
 * leaves the UID to be fetched again; after it, the UID is done and only
 * flagged (the fetch, BODY[], has set \Seen already). Nothing is deleted.
 *
 * What becomes what (the labels of suki_inbound_messages_total{kind} and
 * of the n:<kind> counters): reply (contact.email, direction "in", for the
 * client the answered message was about), bounce (a 5.x.x DSN: the address
 * suppressed for campaigns, email.bounced), delay (4.x.x: counted only),
 * complaint (suppressed, email.complained), autoreply (counted only: an
 * out-of-office is not the client answering), other (left alone: not
 * about mail suki sent, or from the client's own manager), malformed
 * (too large, unparsable, or failing to fetch three times: skipped), gone
 * (expunged before it was fetched). */
#ifndef SUKI_INBOUND_H
#define SUKI_INBOUND_H

#include <stddef.h>

struct suki_daemon;
struct suki_inbound;

/* Messages done in one poll; more wait for the next, at once. */
#define SUKI_INBOUND_BATCH 1000
/* A message that fails to fetch this many times running is skipped as
 * malformed, so that one message never stalls the mailbox. */
#define SUKI_INBOUND_FETCH_TRIES 3

/* Create the poller on D (borrowed; must outlive it). It reads D->conf at
 * the start of every poll, so a reload needs no call; without an inbound
 * section it only checks now and then whether one appeared. Never NULL. */
struct suki_inbound *suki_inbound_new(struct suki_daemon *D);

/* Stop polling: the transfer in flight is abandoned (its message is done
 * by the next poller, once), the lease released. Synchronous. */
void suki_inbound_stop(struct suki_inbound *in);

/* Free (NULL is fine), before D->redis: its calls there are cancelled.
 * Closes the IMAP connection without waiting on the server. */
void suki_inbound_free(struct suki_inbound *in);

#endif
