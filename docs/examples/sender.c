/*
 * A complete frames/1 sender in C (libzmq only), written from docs/protocol.md: it streams a synthetic movie
 * to a livedenoise server, keeps at most MAX_IN_FLIGHT frames without a reply, checks that every frame gets
 * exactly one reply in order, and prints what came back.
 *
 *   cc -O2 -o sender sender.c -lzmq
 *   ./sender tcp://127.0.0.1:5555 cam0 100 64 48 [SERVER_KEY CLIENT_PUBLIC CLIENT_SECRET]
 *
 * The three optional arguments are Z85 CURVE keys (40 characters each), for a server bound beyond loopback.
 * Frame i holds uint16 pixels (i * 7 + y * 3 + x) % 4096. Output, one line:
 *   frames N replies N frame F skipped S errors E refused R sum SUM
 * where SUM is the sum of all denoised pixels (float32, as received). Exit status 0 when every frame got exactly
 * one reply, in order, and the series' end reply arrived; 1 otherwise.
 */
#include <zmq.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IN_FLIGHT 16
#define REPLY_TIMEOUT_MS 30000

typedef struct {
    long long items[MAX_IN_FLIGHT + 1];
    int head, size;
} fifo_t;

static void fifo_push(fifo_t *f, long long v) { f->items[(f->head + f->size++) % (MAX_IN_FLIGHT + 1)] = v; }
static long long fifo_front(const fifo_t *f) { return f->items[f->head]; }
static void fifo_pop(fifo_t *f) { f->head = (f->head + 1) % (MAX_IN_FLIGHT + 1); f->size--; }
static int fifo_remove(fifo_t *f, long long v) { /* a refusal: wherever it is */
    for (int i = 0; i < f->size; i++) {
        int at = (f->head + i) % (MAX_IN_FLIGHT + 1);
        if (f->items[at] != v) continue;
        for (int j = i; j < f->size - 1; j++)
            f->items[(f->head + j) % (MAX_IN_FLIGHT + 1)] = f->items[(f->head + j + 1) % (MAX_IN_FLIGHT + 1)];
        f->size--;
        return 1;
    }
    return 0;
}

/* The server writes compact JSON: "key":"value" and "key":123. Enough for a sample; use a JSON parser in earnest. */
static int json_str(const char *json, const char *key, char *out, size_t n) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *at = strstr(json, pattern);
    if (!at) return 0;
    at += strlen(pattern);
    size_t i = 0;
    while (at[i] && at[i] != '"' && i + 1 < n) { out[i] = at[i]; i++; }
    out[i] = 0;
    return 1;
}

static int json_int(const char *json, const char *key, long long *out) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (!at) return 0;
    return sscanf(at + strlen(pattern), "%lld", out) == 1;
}

static int is_ordered(const char *code) {
    return !strcmp(code, "no_model") || !strcmp(code, "model_mismatch") || !strcmp(code, "inference_failed") ||
           !strcmp(code, "shutdown");
}

typedef struct {
    long long replies, frames, skipped, errors, refused, out_of_order;
    double sum;
    int ended;
} tally_t;

/* Read one reply (two parts). Returns 0 on timeout. */
static int handle_one_reply(void *sock, fifo_t *waiting, tally_t *t, int timeout_ms) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0) return 0;
    zmq_msg_t hdr, payload;
    zmq_msg_init(&hdr);
    zmq_msg_init(&payload);
    zmq_msg_recv(&hdr, sock, 0);
    zmq_msg_recv(&payload, sock, 0);
    size_t n = zmq_msg_size(&hdr);
    char *json = malloc(n + 1);
    memcpy(json, zmq_msg_data(&hdr), n);
    json[n] = 0;
    char type[16] = "", code[64] = "", message[512] = "";
    long long index = -1;
    int has_index = json_int(json, "index", &index);
    json_str(json, "type", type, sizeof type);
    if (!strcmp(type, "end")) {
        t->ended = 1;
    } else if (!strcmp(type, "error") && json_str(json, "code", code, sizeof code) && !is_ordered(code) &&
               !(has_index && waiting->size && index == fifo_front(waiting) && !strcmp(code, "internal"))) {
        json_str(json, "message", message, sizeof message);
        fprintf(stderr, "refused (%s): %s\n", code, message);
        t->refused++;
        if (!has_index || !fifo_remove(waiting, index)) t->out_of_order++; /* a start/end, or not ours */
    } else {
        t->replies++;
        if (!has_index || !waiting->size || index != fifo_front(waiting)) t->out_of_order++;
        else fifo_pop(waiting);
        if (!strcmp(type, "frame")) {
            const float *px = (const float *)zmq_msg_data(&payload); /* little-endian float32, input units */
            for (size_t i = 0; i < zmq_msg_size(&payload) / sizeof(float); i++) t->sum += px[i];
            t->frames++;
        } else if (!strcmp(type, "skipped")) {
            t->skipped++;
        } else {
            t->errors++;
        }
    }
    free(json);
    zmq_msg_close(&hdr);
    zmq_msg_close(&payload);
    return 1;
}

static void send_control(void *sock, const char *header) {
    zmq_send(sock, header, strlen(header), ZMQ_SNDMORE); /* strlen, not sizeof: no trailing NUL */
    zmq_send(sock, "", 0, 0);
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 9) {
        fprintf(stderr, "usage: %s ENDPOINT STREAM FRAMES HEIGHT WIDTH [SERVER_KEY CLIENT_PUBLIC CLIENT_SECRET]\n", argv[0]);
        return 2;
    }
    const char *endpoint = argv[1], *stream = argv[2];
    long long frames = atoll(argv[3]);
    int height = atoi(argv[4]), width = atoi(argv[5]);
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (argc == 9) { /* CURVE: the server's public key, then our own pair */
        zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, argv[6], 40);
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, argv[7], 40);
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, argv[8], 40);
    }
    if (zmq_connect(sock, endpoint) != 0) {
        fprintf(stderr, "connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    char header[512];
    snprintf(header, sizeof header,
             "{\"proto\":\"frames/1\",\"type\":\"start\",\"stream\":\"%s\",\"series\":\"c-sender\","
             "\"dtype\":\"<u2\",\"shape\":[%d,%d],\"meta\":{\"mode\":\"lossless\"}}",
             stream, height, width);
    send_control(sock, header);

    uint16_t *px = malloc(sizeof(uint16_t) * height * width); /* little-endian hosts: x86, ARM */
    fifo_t waiting = {{0}, 0, 0};
    tally_t t = {0};
    for (long long i = 0; i < frames; i++) {
        while (waiting.size >= MAX_IN_FLIGHT) /* credit: wait for a reply first */
            if (!handle_one_reply(sock, &waiting, &t, REPLY_TIMEOUT_MS)) {
                fprintf(stderr, "server silent for %d ms\n", REPLY_TIMEOUT_MS);
                return 1;
            }
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) px[y * width + x] = (uint16_t)((i * 7 + y * 3 + x) % 4096);
        int n = snprintf(header, sizeof header,
                         "{\"proto\":\"frames/1\",\"type\":\"frame\",\"stream\":\"%s\",\"series\":\"c-sender\","
                         "\"index\":%lld,\"t_ns\":%lld,\"dtype\":\"<u2\",\"shape\":[%d,%d]}",
                         stream, i, i * 1000000LL, height, width);
        zmq_send(sock, header, n, ZMQ_SNDMORE);
        zmq_send(sock, px, sizeof(uint16_t) * height * width, 0);
        fifo_push(&waiting, i);
        while (handle_one_reply(sock, &waiting, &t, 0)) {} /* drain what already arrived */
    }
    snprintf(header, sizeof header, "{\"proto\":\"frames/1\",\"type\":\"end\",\"stream\":\"%s\",\"series\":\"c-sender\"}", stream);
    send_control(sock, header);
    while (!t.ended)
        if (!handle_one_reply(sock, &waiting, &t, REPLY_TIMEOUT_MS)) {
            fprintf(stderr, "no end reply within %d ms\n", REPLY_TIMEOUT_MS);
            return 1;
        }
    printf("frames %lld replies %lld frame %lld skipped %lld errors %lld refused %lld sum %.6e\n", frames, t.replies,
           t.frames, t.skipped, t.errors, t.refused, t.sum);
    free(px);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return (t.replies == frames && waiting.size == 0 && t.out_of_order == 0 && t.refused == 0) ? 0 : 1;
}
