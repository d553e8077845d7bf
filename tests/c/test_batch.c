/* Batch handlers (signalr_connection_on_batch): every call exactly once and in order across
 * batches, count and JSON agreeing, the batch cap, the global callback order with plain handlers
 * and completions, removal, client-result routing and userdata_free exactly once.
 *
 * To make batches deterministic, a plain "Gate" handler holds the callback thread while the
 * server's messages queue up behind it; a blocking call (whose answer does not pass through the
 * callback thread) then proves that everything the server sent before its answer is queued. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "tests.h"

#define BATCH_CAP 1024

/* ---- the gate ---- */

/* Plain handler: counts the call, then waits until the test opens the gate (flag = 1). */
static void gate_cb(void *ud, const char *method, size_t method_len, const char *args, size_t args_len) {
    (void)method, (void)method_len, (void)args, (void)args_len;
    probe *p = ud;
    probe_enter(p);
    probe_record(p, "gate", 4);
    pthread_mutex_lock(&p->mu);
    while (!p->flag) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    probe_leave(p);
}

static void gate_open(probe *gate) {
    pthread_mutex_lock(&gate->mu);
    gate->flag = 1;
    pthread_cond_broadcast(&gate->cv);
    pthread_mutex_unlock(&gate->mu);
}

/* Sends "Gate" to itself and waits until the callback thread is held in it. */
static probe *gate_close(signalr_connection *c, conn_watch *w) {
    probe *gate = probe_new(w);
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on(c, "Gate", gate_cb, gate, probe_free_cb, &id)));
    CHECK_OK(signalr_connection_send_blocking(c, "SendToCaller", "[\"Gate\"]", WAIT_GUARD_MS));
    WAIT_CALLS(gate, 1);
    return gate;
}

/* Everything the server sent before answering this is queued once it returns. */
static void fence(signalr_connection *c) {
    free(invoke_ok(c, "Echo", "[\"fence\"]"));
}

static void send_to_caller(signalr_connection *c, const char *args) {
    CHECK_OK(signalr_connection_send_blocking(c, "SendToCaller", args, WAIT_GUARD_MS));
}

/* ---- flood: order, exactly once, count = JSON ---- */

typedef struct flood_rx {
    long next;       /* index expected next */
    size_t payload;  /* length of the "xxx…" string */
    int batches, max_batch, bad;
} flood_rx;

static void flood_bad(flood_rx *f, const char *why, long at) {
    if (f->bad++ < 5) check_fail(__FILE__, __LINE__, "flood batch: %s (call %ld)", why, at);
}

/* Checks `[[i,"xxx"],[i+1,"xxx"],…]` with i = f->next; returns the number of calls in it. */
static size_t flood_parse(flood_rx *f, const char *s) {
    size_t n = 0;
    if (*s++ != '[') return flood_bad(f, "not an array", f->next), 0;
    while (*s == '[') {
        char *end;
        long i = strtol(s + 1, &end, 10);
        if (end == s + 1 || i != f->next) flood_bad(f, "index out of order", f->next);
        s = end;
        if (strncmp(s, ",\"", 2) != 0) return flood_bad(f, "no payload", i), n;
        s += 2;
        size_t len = strspn(s, "x");
        if (len != f->payload) flood_bad(f, "payload length", i);
        s += len;
        if (strncmp(s, "\"]", 2) != 0) return flood_bad(f, "payload end", i), n;
        s += 2;
        f->next = i + 1;
        n++;
        if (*s == ',') s++;
    }
    if (strcmp(s, "]") != 0) flood_bad(f, "array end", f->next);
    return n;
}

static void flood_batch_cb(void *ud, const char *method, size_t method_len, const char *calls, size_t calls_len,
                           size_t count) {
    probe *p = ud;
    flood_rx *f = p->user;
    probe_enter(p);
    char *m = copy_borrowed(method, method_len);
    char *j = copy_borrowed(calls, calls_len);
    CHECK_STR(m, "flood"); /* as registered */
    size_t parsed = j ? flood_parse(f, j) : 0;
    if (parsed != count) check_fail(__FILE__, __LINE__, "batch count %zu, JSON holds %zu calls", count, parsed);
    if (count == 0 || count > BATCH_CAP) check_fail(__FILE__, __LINE__, "batch of %zu calls", count);
    f->batches++;
    if ((int)count > f->max_batch) f->max_batch = (int)count;
    free(m);
    free(j);
    pthread_mutex_lock(&p->mu);
    p->calls += (int)count; /* calls = messages here */
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    probe_leave(p);
}

/* Completion hook: how many flood calls had arrived when the invoke's completion ran. */
static void note_received(probe *p, signalr_result r) {
    (void)r;
    p->flag = (int)((flood_rx *)p->user)->next;
}

static signalr_connection *connect_protocol(uint32_t protocol) {
    char url[256];
    hub_url(&the_hub, "/hub", url, sizeof url);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    CHECK_OK(signalr_builder_set_protocol(b, protocol));
    signalr_connection *c = NULL;
    CHECK_OK(signalr_builder_build(b, &c));
    if (c == NULL) exit(2);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    return c;
}

TEST(batch_handler_flood_in_order_exactly_once) {
    for (uint32_t protocol = SIGNALR_PROTOCOL_JSON; protocol <= SIGNALR_PROTOCOL_MESSAGEPACK; protocol++) {
        conn_watch w = {0};
        signalr_connection *c = connect_protocol(protocol);
        flood_rx f = {.payload = 10};
        probe *fp = probe_new(&w);
        fp->user = &f;
        uint64_t id;
        CHECK_OK(REG(signalr_connection_on_batch(c, "flood", flood_batch_cb, fp, probe_free_cb, &id)));
        CHECK(id != 0);

        /* 1. All queued before the first batch: batches are full up to the cap, and the
         * invoke's completion comes after the last call. */
        probe *gate = gate_close(c, &w);
        probe *done = probe_new(&w);
        done->user = &f;
        done->on_done = note_received;
        CHECK_OK(REG(signalr_connection_invoke(c, "Flood", "[3000, 10]", probe_completion_cb, done, probe_free_cb)));
        fence(c);
        gate_open(gate);
        WAIT_DONE(done);
        CHECK(done->result == SIGNALR_RESULT_OK);
        CHECK_STR(done->json, "3000");
        CHECK(done->flag == 3000);
        CHECK(f.next == 3000 && f.bad == 0);
        CHECK(f.batches == 3 && f.max_batch == BATCH_CAP); /* 1024 + 1024 + 952 */
        WAIT_FREED(done);
        PROBE_DONE(done);

        /* 2. At full speed, well above the cap and the backlog limit: still each call once, in
         * order (how they split into batches depends on timing). */
        f.next = 0;
        f.payload = 100;
        char *r = invoke_ok(c, "Flood", "[10000, 100]");
        CHECK_STR(r, "10000");
        free(r);
        WAIT_CALLS(fp, 3000 + 10000);
        CHECK(f.next == 10000 && f.bad == 0);
        printf("    protocol %u: %d batches for 13000 calls\n", (unsigned)protocol, f.batches);

        signalr_connection_free(c);
        CHECK(atomic_load(&w.overlaps) == 0);
        PROBE_DONE(gate);
        PROBE_DONE(fp); /* userdata_free exactly once, at free */
    }
}

/* ---- order with other callbacks ---- */

/* Batch and plain handlers and completions, all logging into one sequence probe (user). */
static void seq_batch_cb(void *ud, const char *method, size_t method_len, const char *calls, size_t calls_len,
                         size_t count) {
    probe *p = ud;
    probe_enter(p);
    char *m = copy_borrowed(method, method_len), *j = copy_borrowed(calls, calls_len);
    char line[512];
    snprintf(line, sizeof line, "batch %s %zu %s", m, count, j);
    probe_record(p->user, line, strlen(line));
    probe_record(p, line, strlen(line));
    free(m);
    free(j);
    probe_leave(p);
}

static void seq_handler_cb(void *ud, const char *method, size_t method_len, const char *args, size_t args_len) {
    probe *p = ud;
    probe_enter(p);
    char *m = copy_borrowed(method, method_len), *a = copy_borrowed(args, args_len);
    char line[512];
    snprintf(line, sizeof line, "call %s %s", m, a);
    probe_record(p->user, line, strlen(line));
    probe_record(p, line, strlen(line));
    free(m);
    free(a);
    probe_leave(p);
}

static void seq_done(probe *p, signalr_result r) {
    char line[512];
    snprintf(line, sizeof line, "done %s %s", signalr_result_name(r), p->json ? p->json : "(null)");
    probe_record(p->user, line, strlen(line));
}

TEST(batch_handler_keeps_order_with_other_handlers_and_completions) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *seq = probe_new(NULL), *tick = probe_new(&w), *tock = probe_new(&w), *done = probe_new(&w);
    tick->user = tock->user = done->user = seq;
    done->on_done = seq_done;
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on_batch(c, "Tick", seq_batch_cb, tick, probe_free_cb, &id)));
    CHECK_OK(REG(signalr_connection_on(c, "Tock", seq_handler_cb, tock, probe_free_cb, &id)));

    probe *gate = gate_close(c, &w);
    send_to_caller(c, "[\"Tick\", 0]");
    send_to_caller(c, "[\"Tick\", 1, \"one\"]");
    send_to_caller(c, "[\"Tick\"]");
    send_to_caller(c, "[\"Tock\", 3]");
    send_to_caller(c, "[\"Tick\", 4]");
    send_to_caller(c, "[\"Tick\", {\"five\": [5]}]");
    CHECK_OK(REG(signalr_connection_invoke(c, "Echo", "[6]", probe_completion_cb, done, probe_free_cb)));
    send_to_caller(c, "[\"Tick\", 7]");
    fence(c);
    gate_open(gate);
    WAIT_CALLS(tick, 3);
    WAIT_DONE(done);
    char *log = probe_log(seq);
    CHECK_STR(log, "batch Tick 3 [[0],[1,\"one\"],[]]\n"
                   "call Tock [3]\n"
                   "batch Tick 2 [[4],[{\"five\": [5]}]]\n"
                   "done SIGNALR_RESULT_OK 6\n"
                   "batch Tick 1 [[7]]");
    free(log);

    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(gate);
    PROBE_DONE(tick);
    PROBE_DONE(tock);
    PROBE_DONE(done);
    probe_free_cb(seq); /* never registered */
    PROBE_DONE(seq);
}

/* ---- removal ---- */

typedef struct self_remover {
    signalr_connection *c;
    uint64_t id;
    int frees_inside; /* userdata frees seen right after removing itself, inside the callback */
} self_remover;

static void remove_self_cb(void *ud, const char *method, size_t method_len, const char *calls, size_t calls_len,
                           size_t count) {
    probe *p = ud;
    self_remover *s = p->user;
    probe_batch_cb(ud, method, method_len, calls, calls_len, count);
    CHECK_OK(signalr_connection_remove_handler(s->c, s->id));
    s->frees_inside = probe_frees(p);
}

TEST(batch_handler_removal) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *me = probe_new(&w), *news = probe_new(&w), *sentinel = probe_new(&w);
    self_remover s = {.c = c};
    me->user = &s;
    uint64_t idn, ids;
    CHECK_OK(REG(signalr_connection_on_batch(c, "Tick", remove_self_cb, me, probe_free_cb, &s.id)));
    CHECK_OK(REG(signalr_connection_on_batch(c, "News", probe_batch_cb, news, probe_free_cb, &idn)));
    CHECK_OK(REG(signalr_connection_on(c, "Sentinel", probe_handler_cb, sentinel, probe_free_cb, &ids)));

    /* Removed inside its first batch: the calls queued after that batch are dropped, and the
     * user data is released only after the callback returned. */
    probe *gate = gate_close(c, &w);
    send_to_caller(c, "[\"Tick\", 1]");
    send_to_caller(c, "[\"Tick\", 2]");
    send_to_caller(c, "[\"Sentinel\", 1]");
    send_to_caller(c, "[\"Tick\", 3]");
    send_to_caller(c, "[\"Sentinel\", 2]");
    fence(c);
    gate_open(gate);
    WAIT_CALLS(sentinel, 2);
    WAIT_FREED(me);
    CHECK(s.frees_inside == 0);
    CHECK(probe_calls(me) == 1);
    CHECK_STR(me->log, "Tick 2 [[1],[2]]");

    /* off (case-insensitive) from outside a callback */
    send_to_caller(c, "[\"News\", \"a\"]");
    WAIT_CALLS(news, 1);
    CHECK_OK(signalr_connection_off(c, "nEWS"));
    WAIT_FREED(news);
    send_to_caller(c, "[\"News\", \"b\"]");
    send_to_caller(c, "[\"Sentinel\", 3]");
    WAIT_CALLS(sentinel, 3);
    CHECK(probe_calls(news) == 1);
    CHECK_STR(news->log, "News 1 [[\"a\"]]");

    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(gate);
    PROBE_DONE(me);
    PROBE_DONE(news);
    PROBE_DONE(sentinel);
}

/* ---- calls that expect a result ---- */

static void answer_args_cb(void *ud, const char *method, size_t method_len, const char *args, size_t args_len,
                           signalr_responder *responder) {
    probe *p = ud;
    probe_enter(p);
    char *m = copy_borrowed(method, method_len), *a = copy_borrowed(args, args_len);
    char line[256];
    snprintf(line, sizeof line, "%s %s", m, a);
    CHECK_OK(signalr_responder_complete(responder, a));
    probe_record(p, line, strlen(line));
    free(m);
    free(a);
    probe_leave(p);
}

TEST(batch_handler_and_client_results) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *batch = probe_new(&w), *answer = probe_new(&w), *lonely = probe_new(&w);
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on_batch(c, "Ask", probe_batch_cb, batch, probe_free_cb, &id)));
    CHECK_OK(REG(signalr_connection_on_invocation(c, "Ask", answer_args_cb, answer, probe_free_cb, &id)));
    CHECK_OK(REG(signalr_connection_on_batch(c, "Lonely", probe_batch_cb, lonely, probe_free_cb, &id)));

    /* expecting a result: the client-result handler answers; never batched */
    char *r = invoke_ok(c, "AskClient", "[\"Ask\", 5]");
    CHECK_STR(r, "[5]");
    free(r);
    /* expecting none: the batch handler only */
    send_to_caller(c, "[\"Ask\", 1]");
    WAIT_CALLS(batch, 1);
    fence(c);
    CHECK(probe_calls(answer) == 1 && probe_calls(batch) == 1);
    CHECK_STR(answer->log, "Ask [5]");
    CHECK_STR(batch->log, "Ask 1 [[1]]");

    /* a batch handler alone cannot answer: the server hears "Client didn't provide a result." */
    char *out = NULL;
    CHECK_RC(signalr_connection_invoke_blocking(c, "AskClient", "[\"Lonely\", 1]", WAIT_GUARD_MS, &out),
             SIGNALR_RESULT_HUB_ERROR);
    CHECK_CONTAINS(signalr_last_error_message(), "Client didn't provide a result.");
    CHECK(out == NULL);
    fence(c);
    CHECK(probe_calls(lonely) == 0);

    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(batch);
    PROBE_DONE(answer);
    PROBE_DONE(lonely);
}
