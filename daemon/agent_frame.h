/* agent_frame.h - reading the frames of the delivery agent's channel
 * (layout in agent.c), on plain bytes, so that the decoding can be tested
 * and fuzzed without a channel, a lane or an agent. */
#ifndef SUKI_AGENT_FRAME_H
#define SUKI_AGENT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A reader over a frame's fields; bad once a field ran past the end. */
struct suki_frame_rd {
    const char *p;
    size_t n;
    bool bad;
};

/* The frame at the start of p[0..have) (borrowed). 1: a whole one, with
 * its *type, a reader r over its fields (pointing into p) and its size
 * *whole; 0: not all there yet; -1: garbage (a length no frame has). */
int suki_frame_split(const char *p, size_t have, char *type,
                     struct suki_frame_rd *r, size_t *whole);

/* The fields of an R frame (a message's outcome, agent to sukid). */
struct suki_frame_result {
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
 * suki_frame_result_clear, also after a failure). False when the frame is
 * garbled (r->bad is set then). */
bool suki_frame_result_decode(struct suki_frame_rd *r,
                              struct suki_frame_result *res);
void suki_frame_result_clear(struct suki_frame_result *res);

#endif
