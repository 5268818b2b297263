/* wire.h - the delivery agent's channel (private to daemon/deliver/): one
 * encoder and one decoder per frame, used by both ends, on plain bytes so
 * that the decoding can be tested and fuzzed without a channel, a lane or
 * an agent.
 *
 * A frame is a u32 length of what follows, a u8 type, then typed fields:
 * u64 numbers (i64 and bool as their u64 bit pattern), strings as a u32
 * length and the bytes, 0xffffffff for NULL. Host order: both ends are the
 * same binary on the same host. sukid to agent: D (Redis settings and log
 * level; always the first frame), C (transport settings), U (forget
 * settings), L (new lane), P (a message for a lane), S (stop a lane).
 * Agent to sukid: R (a message's outcome), X (a lane has exited).
 *
 * Reading follows OpenSMTPD's m_get_* / m_end: each get takes a field off
 * the front of the frame, a field that runs past the end marks the reader
 * bad, and deliver_wire_end marks it bad when bytes are left over. Every
 * decoder below ends with it, so a frame that is one field short or long
 * is an error, never half a message; the receiving end then drops the link
 * (and says so). */
#ifndef SUKI_DELIVER_WIRE_H
#define SUKI_DELIVER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "lane.h"
#include "util.h"

/* Longest frame (a sanity bound, far above any message). */
#define DELIVER_WIRE_MAX (256u << 20)

enum deliver_wire_type {
    DELIVER_WIRE_REDIS = 'D',
    DELIVER_WIRE_CONF = 'C',
    DELIVER_WIRE_UNCONF = 'U',
    DELIVER_WIRE_LANE = 'L',
    DELIVER_WIRE_POST = 'P',
    DELIVER_WIRE_STOP = 'S',
    DELIVER_WIRE_RESULT = 'R',
    DELIVER_WIRE_EXITED = 'X',
};

/* ---- fields ---- */

/* Start frame type in b (emptied); deliver_wire_close fills in its length
 * once every field is in. */
void deliver_wire_begin(struct suki_buf *b, char type);
void deliver_wire_put_u64(struct suki_buf *b, uint64_t v);
void deliver_wire_put_i64(struct suki_buf *b, int64_t v);
void deliver_wire_put_bool(struct suki_buf *b, bool v);
/* s borrowed; NULL is sent as NULL */
void deliver_wire_put_str(struct suki_buf *b, const char *s);
void deliver_wire_put_mem(struct suki_buf *b, const char *s, size_t n);
void deliver_wire_close(struct suki_buf *b);

/* A reader over a frame's fields; bad once a field ran past the end (or,
 * after deliver_wire_end, when bytes were left). */
struct deliver_wire_rd {
    const char *p;
    size_t n;
    bool bad;
};

/* The frame at the start of p[0..have) (borrowed). 1: a whole one, with
 * its *type, a reader r over its fields (pointing into p) and its size
 * *whole; 0: not all there yet; -1: garbage (a length no frame has). */
int deliver_wire_split(const char *p, size_t have, char *type,
                       struct deliver_wire_rd *r, size_t *whole);

uint64_t deliver_wire_get_u64(struct deliver_wire_rd *r);
int64_t deliver_wire_get_i64(struct deliver_wire_rd *r);
/* an i64 that must fit an int */
int deliver_wire_get_int(struct deliver_wire_rd *r);
bool deliver_wire_get_bool(struct deliver_wire_rd *r);
/* Owned copy (NUL-terminated; NULL for a NULL string); *len (may be NULL)
 * its length. */
char *deliver_wire_get_str(struct deliver_wire_rd *r, size_t *len);
/* The end of the frame: false (and r bad) when a field was missing or
 * bytes are left over. */
bool deliver_wire_end(struct deliver_wire_rd *r);

/* ---- frames ----
 * Each get_* returns false (or NULL) for a garbled frame, having freed
 * whatever it had decoded. */

/* D: the Redis settings of c and the log level. The decoded conf holds
 * only those (refs 1, free with suki_conf_unref). */
void deliver_wire_put_redis(struct suki_buf *b, const struct suki_conf *c,
                            int log_level);
struct suki_conf *deliver_wire_get_redis(struct deliver_wire_rd *r,
                                         int *log_level);

/* C: settings c known as id. The decoded one has refs 1 and no backend. */
void deliver_wire_put_conf(struct suki_buf *b, uint64_t id,
                           const struct deliver_tconf *c);
struct deliver_tconf *deliver_wire_get_conf(struct deliver_wire_rd *r,
                                            uint64_t *id);

/* U, L, X: one id. */
void deliver_wire_put_id(struct suki_buf *b, char type, uint64_t id);
bool deliver_wire_get_id(struct deliver_wire_rd *r, uint64_t *id);

/* S: stop lane id. */
void deliver_wire_put_stop(struct suki_buf *b, uint64_t lane_id, bool abort);
bool deliver_wire_get_stop(struct deliver_wire_rd *r, uint64_t *lane_id,
                           bool *abort);

/* P: message x (its token, message, sent marker) for lane lane_id, with
 * settings conf_id. The decoded xfer (owned, free with deliver_xfer_clear
 * and free) has no conf and its trace ready for a transfer. */
void deliver_wire_put_post(struct suki_buf *b, uint64_t lane_id,
                           uint64_t conf_id, const struct deliver_xfer *x);
struct deliver_xfer *deliver_wire_get_post(struct deliver_wire_rd *r,
                                           uint64_t *lane_id,
                                           uint64_t *conf_id);

/* R: the outcome of x (token, result, per-recipient trace) on lane_id. */
void deliver_wire_put_result(struct suki_buf *b, uint64_t lane_id,
                             const struct deliver_xfer *x);

/* The fields of an R frame. */
struct deliver_wire_result {
    uint64_t lane_id, token;
    int st;
    int code;
    char *reply; /* owned or NULL */
    int64_t retry_after;
    bool cancelled, local;
    size_t rcpt_sent;
    uint64_t n;     /* recipients */
    int *codes;     /* owned, n + 1 entries */
    char **replies; /* owned, n + 1 entries, each owned or NULL */
};

/* Read an R frame's fields from r into res (zeroed first; free it with
 * deliver_wire_result_clear, also after a failure). False when the frame
 * is garbled (r->bad is set then). */
bool deliver_wire_get_result(struct deliver_wire_rd *r,
                             struct deliver_wire_result *res);
void deliver_wire_result_clear(struct deliver_wire_result *res);

/* ---- on the channel ---- */

struct bufferevent;
struct evbuffer;

/* Queue the frame in b (closed) on bev. */
void deliver_wire_send(struct bufferevent *bev, const struct suki_buf *b);

/* Take the next whole frame off in (only a whole frame is pulled up into
 * one piece): *type and a reader over its fields, valid until the caller
 * drains *whole bytes. 1 = one, 0 = not all there yet, -1 = garbage. */
int deliver_wire_next(struct evbuffer *in, char *type,
                      struct deliver_wire_rd *r, size_t *whole);

#endif
