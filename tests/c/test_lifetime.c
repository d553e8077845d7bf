/* Lifetime rules: free with calls in flight, free from inside a handler / completion / item /
 * closed callback, exactly-once completion with CANCELED, userdata_free exactly once everywhere,
 * handles that outlive their connection, blocking calls inside callbacks → WOULD_DEADLOCK. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tests.h"

/* Everything a connection can have pending at once. The hub runs one non-streaming invocation
 * of a connection at a time (as ASP.NET's MaximumParallelInvocationsPerClient = 1) and stops
 * reading that connection while a second one waits, so one long Delay is the pending invoke; the
 * others are a running stream and an invoke waiting for its upload stream (neither holds the
 * hub's invocation slot). */
enum { N_DELAYS = 1 };
typedef struct in_flight {
    conn_watch w;
    probe *delays[N_DELAYS];
    probe *stream;
    probe *upload_call;
    probe *handler;
    probe *closed;
    probe *states;
    signalr_stream *s;
    signalr_upload *u[1];
} in_flight;

static void start_in_flight(signalr_connection *c, in_flight *f) {
    for (int i = 0; i < N_DELAYS; i++) {
        f->delays[i] = probe_new(&f->w);
        CHECK_OK(REG(signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, f->delays[i], probe_free_cb)));
    }
    f->stream = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[1000000, 2]", probe_item_cb, probe_completion_cb, f->stream, probe_free_cb, &f->s)));
    f->upload_call = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, f->u, probe_completion_cb, f->upload_call, probe_free_cb)));
    CHECK_OK(signalr_upload_write(f->u[0], "1"));
    uint64_t id;
    f->handler = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_on(c, "Tick", probe_handler_cb, f->handler, probe_free_cb, &id)));
    f->closed = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, f->closed, probe_free_cb)));
    f->states = probe_new(&f->w);
    CHECK_OK(REG(signalr_connection_on_state_changed(c, probe_state_cb, f->states, probe_free_cb)));
    WAIT_CALLS(f->stream, 1); /* the calls have reached the hub */
}

/* After the connection's teardown: each pending completion ran exactly once with CANCELED, all
 * user data released exactly once, the leftover handles still safe to use and free. */
static void finish_in_flight(in_flight *f, bool teardown_done) {
    probe *pending[] = {f->delays[0], f->stream, f->upload_call};
    for (size_t i = 0; i < sizeof pending / sizeof pending[0]; i++) {
        if (!teardown_done) WAIT_FREED(pending[i]);
        CHECK(probe_completions(pending[i]) == 1);
        CHECK_RC(pending[i]->result, SIGNALR_RESULT_CANCELED);
    }
    if (!teardown_done) {
        WAIT_FREED(f->handler);
        WAIT_FREED(f->closed);
        WAIT_FREED(f->states);
    }
    int items = probe_calls(f->stream);
    /* handles of a freed connection: operations fail with CONNECTION_CLOSED or INVALID_STATE */
    signalr_result rc = signalr_upload_write(f->u[0], "2");
    if (rc != SIGNALR_RESULT_CONNECTION_CLOSED && rc != SIGNALR_RESULT_INVALID_STATE)
        check_fail(__FILE__, __LINE__, "upload_write after free = %s", signalr_result_name(rc));
    rc = signalr_upload_complete(f->u[0]);
    if (rc != SIGNALR_RESULT_CONNECTION_CLOSED && rc != SIGNALR_RESULT_INVALID_STATE)
        check_fail(__FILE__, __LINE__, "upload_complete after free = %s", signalr_result_name(rc));
    signalr_upload_free(f->u[0]);
    rc = signalr_stream_cancel(f->s);
    CHECK(rc == SIGNALR_RESULT_OK || rc == SIGNALR_RESULT_CONNECTION_CLOSED || rc == SIGNALR_RESULT_INVALID_STATE);
    signalr_stream_free(f->s);
    CHECK(probe_calls(f->stream) == items);
    CHECK(atomic_load(&f->w.overlaps) == 0);
    for (int i = 0; i < N_DELAYS; i++) PROBE_DONE(f->delays[i]);
    PROBE_DONE(f->stream);
    PROBE_DONE(f->upload_call);
    PROBE_DONE(f->handler);
    PROBE_DONE(f->closed);
    PROBE_DONE(f->states);
}

TEST(free_with_calls_in_flight) {
    in_flight f = {0};
    signalr_connection *c = connect_started("/hub");
    start_in_flight(c, &f);
    signalr_connection_free(c);
    /* From outside a callback, free waited for every completion and userdata_free. */
    for (int i = 0; i < N_DELAYS; i++) CHECK(probe_frees(f.delays[i]) == 1);
    CHECK(probe_frees(f.stream) == 1 && probe_frees(f.upload_call) == 1 && probe_frees(f.handler) == 1 &&
          probe_frees(f.closed) == 1 && probe_frees(f.states) == 1);
    finish_in_flight(&f, true);
}

/* Frees the connection kept in p->user from inside whatever callback calls it. */
static void free_conn_inside(probe *p) {
    pthread_mutex_lock(&p->mu);
    signalr_connection *c = p->flag ? NULL : p->user;
    p->flag = 1;
    pthread_mutex_unlock(&p->mu);
    if (c) {
        signalr_connection_free(c);
        /* after free (inside a callback) no new callback starts; this one carries on */
    }
}
static void free_on_call(probe *p, const char *s, size_t len) {
    (void)s, (void)len;
    free_conn_inside(p);
}
static void free_on_done(probe *p, signalr_result r) {
    (void)r;
    free_conn_inside(p);
}

TEST(free_inside_handler) {
    in_flight f = {0};
    signalr_connection *c = connect_started("/hub");
    char *r = invoke_ok(c, "JoinGroup", "[\"free-inside-handler\"]");
    free(r);
    probe *h = probe_new(&f.w);
    uint64_t id;
    h->user = c;
    h->on_call = free_on_call;
    CHECK_OK(REG(signalr_connection_on(c, "FreeMe", probe_handler_cb, h, probe_free_cb, &id)));
    start_in_flight(c, &f);
    /* c's own invocation slot is taken by the Delay: a second connection triggers the handler */
    signalr_connection *other = connect_started("/hub");
    r = invoke_ok(other, "SendToGroup", "[\"free-inside-handler\", \"FreeMe\"]");
    free(r);
    signalr_connection_free(other);
    WAIT_FREED(h);
    CHECK(probe_calls(h) == 1);
    finish_in_flight(&f, false);
    PROBE_DONE(h);
}

TEST(free_inside_completion) {
    in_flight f = {0};
    signalr_connection *c = connect_started("/hub");
    start_in_flight(c, &f);
    /* a second upload invoke whose completion frees the connection (uploads do not wait for the
     * Delay holding the hub's invocation slot) */
    probe *e = probe_new(&f.w);
    e->user = c;
    e->on_done = free_on_done;
    signalr_upload *u[1] = {NULL};
    CHECK_OK(REG(signalr_connection_invoke_with_uploads(c, "Sum", "[]", 1, u, probe_completion_cb, e, probe_free_cb)));
    CHECK_OK(signalr_upload_write(u[0], "20"));
    CHECK_OK(signalr_upload_write(u[0], "22"));
    CHECK_OK(signalr_upload_complete(u[0]));
    WAIT_FREED(e);
    CHECK(probe_completions(e) == 1);
    CHECK_RC(e->result, SIGNALR_RESULT_OK);
    CHECK_STR(e->json, "42");
    signalr_upload_free(u[0]);
    finish_in_flight(&f, false);
    PROBE_DONE(e);
}

TEST(free_inside_stream_item) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *d = probe_new(&w), *s = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, d, probe_free_cb)));
    s->user = c;
    s->on_call = free_on_call;
    signalr_stream *st = NULL;
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[1000000, 1]", probe_item_cb, probe_completion_cb, s, probe_free_cb, &st)));
    WAIT_FREED(s);
    WAIT_FREED(d);
    CHECK(probe_calls(s) == 1); /* no item after the one that freed */
    CHECK(probe_completions(s) == 1 && probe_completions(d) == 1);
    CHECK_RC(s->result, SIGNALR_RESULT_CANCELED);
    CHECK_RC(d->result, SIGNALR_RESULT_CANCELED);
    signalr_stream_free(st);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(d);
    PROBE_DONE(s);
}

static void free_in_closed(void *ud, signalr_result result, const char *error, size_t error_len) {
    probe_closed_cb(ud, result, error, error_len);
    free_conn_inside(ud);
}

TEST(free_inside_closed_callback) {
    signalr_connection *c = connect_started("/hub");
    probe *cl = probe_new(NULL);
    cl->user = c;
    CHECK_OK(REG(signalr_connection_on_closed(c, free_in_closed, cl, probe_free_cb)));
    probe *d = probe_new(NULL);
    CHECK_OK(REG(signalr_connection_invoke(c, "CloseWithError", "[\"bye\", false]", probe_completion_cb, d, probe_free_cb)));
    WAIT_FREED(cl);
    WAIT_FREED(d);
    CHECK(probe_calls(cl) == 1 && probe_completions(d) == 1);
    PROBE_DONE(cl);
    PROBE_DONE(d);
}

/* Blocking calls inside callbacks return WOULD_DEADLOCK at once; async ones work. */
static signalr_connection *deadlock_conn;
static void blocking_inside(probe *p) {
    char *out = NULL;
    CHECK_RC(signalr_connection_invoke_blocking(deadlock_conn, "Echo", "[1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK(out == NULL);
    CHECK(*signalr_last_error_message() != '\0');
    CHECK_RC(signalr_connection_send_blocking(deadlock_conn, "Record", "[1]", WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK_RC(signalr_connection_stop_blocking(deadlock_conn, WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK_RC(signalr_connection_start_blocking(deadlock_conn, WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    /* non-blocking calls are fine from here */
    CHECK(signalr_connection_get_state(deadlock_conn) == SIGNALR_CONNECTION_STATE_CONNECTED);
    probe *inner = p->user;
    CHECK_OK(signalr_connection_invoke(deadlock_conn, "Echo", "[\"inner\"]", probe_completion_cb, inner, probe_free_cb));
}
static void blocking_on_call(probe *p, const char *s, size_t len) {
    (void)s, (void)len;
    blocking_inside(p);
}
static void blocking_on_done(probe *p, signalr_result r) {
    (void)r;
    blocking_inside(p);
}

TEST(blocking_inside_callbacks_would_deadlock) {
    conn_watch w = {0};
    deadlock_conn = connect_started("/hub");
    probe *h = probe_new(&w), *h_inner = probe_new(&w), *d = probe_new(&w), *d_inner = probe_new(&w);
    h->user = h_inner;
    h->on_call = blocking_on_call;
    d->user = d_inner;
    d->on_done = blocking_on_done;
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on(deadlock_conn, "Block", probe_handler_cb, h, probe_free_cb, &id)));
    char *r = invoke_ok(deadlock_conn, "SendToCaller", "[\"Block\"]");
    free(r);
    WAIT_DONE(h_inner);
    CHECK_STR(h_inner->json, "\"inner\"");
    CHECK_OK(REG(signalr_connection_invoke(deadlock_conn, "Echo", "[2]", probe_completion_cb, d, probe_free_cb)));
    WAIT_DONE(d_inner);
    CHECK_STR(d_inner->json, "\"inner\"");
    /* the connection is still healthy from outside */
    r = invoke_ok(deadlock_conn, "Echo", "[3]");
    CHECK_STR(r, "3");
    free(r);
    signalr_connection_free(deadlock_conn);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(h);
    PROBE_DONE(h_inner);
    PROBE_DONE(d);
    PROBE_DONE(d_inner);
}

static void stop_on_call(probe *p, const char *s, size_t len) {
    (void)s, (void)len;
    probe *stop = p->user;
    CHECK_OK(signalr_connection_stop((signalr_connection *)stop->user, probe_completion_cb, stop, probe_free_cb));
}

TEST(stop_with_pending_calls_and_from_inside) {
    conn_watch w = {0};
    signalr_connection *c = connect_started("/hub");
    probe *d = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, d, probe_free_cb)));
    /* a short stream (streams do not wait for the Delay) proves the Delay reached the hub */
    probe *sync = probe_new(&w);
    signalr_stream *s = NULL;
    CHECK_OK(REG(signalr_connection_stream(c, "Counter", "[1, 0]", probe_item_cb, probe_completion_cb, sync, probe_free_cb, &s)));
    WAIT_DONE(sync);
    signalr_stream_free(s);
    CHECK_OK(signalr_connection_stop_blocking(c, WAIT_GUARD_MS));
    WAIT_DONE(d);
    CHECK(d->result == SIGNALR_RESULT_CANCELED || d->result == SIGNALR_RESULT_CONNECTION_CLOSED);

    /* stop (async) from inside a handler with a Delay pending; the connection can start again
     * afterwards. The Delay holds c's invocation slot at the hub, so a second connection triggers
     * the handler through a group. */
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    char *r = invoke_ok(c, "JoinGroup", "[\"stop-inside\"]");
    free(r);
    probe *h = probe_new(&w), *stop = probe_new(&w), *d2 = probe_new(&w);
    stop->user = c;
    h->user = stop;
    h->on_call = stop_on_call;
    uint64_t id;
    CHECK_OK(REG(signalr_connection_on(c, "StopMe", probe_handler_cb, h, probe_free_cb, &id)));
    CHECK_OK(REG(signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, d2, probe_free_cb)));
    signalr_connection *other = connect_started("/hub");
    r = invoke_ok(other, "SendToGroup", "[\"stop-inside\", \"StopMe\"]");
    free(r);
    signalr_connection_free(other);
    WAIT_DONE(stop);
    CHECK_RC(stop->result, SIGNALR_RESULT_OK);
    WAIT_DONE(d2);
    CHECK(d2->result == SIGNALR_RESULT_CANCELED || d2->result == SIGNALR_RESULT_CONNECTION_CLOSED);
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    r = invoke_ok(c, "Echo", "[\"again\"]");
    CHECK_STR(r, "\"again\"");
    free(r);
    signalr_connection_free(c);
    CHECK(probe_completions(d) == 1 && probe_completions(d2) == 1 && probe_completions(stop) == 1);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(d);
    PROBE_DONE(sync);
    PROBE_DONE(h);
    PROBE_DONE(stop);
    PROBE_DONE(d2);
}

/* 200 invokes issued from a second thread, then free while their completions are arriving:
 * every accepted call completes exactly once (OK or CANCELED), every rejected one released its
 * user data before returning and never completes. */
enum { RACE_N = 200 };
typedef struct race {
    signalr_connection *c;
    probe *probes[RACE_N];
    signalr_result rcs[RACE_N];
} race;

static void *race_invoker(void *arg) {
    race *r = arg;
    for (int i = 0; i < RACE_N; i++)
        r->rcs[i] = REG(signalr_connection_invoke(r->c, "Echo", "[\"race\"]", probe_completion_cb, r->probes[i], probe_free_cb));
    return NULL;
}

TEST(free_races_with_completions) {
    race r = {0};
    conn_watch w = {0};
    r.c = connect_started("/hub");
    for (int i = 0; i < RACE_N; i++) r.probes[i] = probe_new(&w);
    run_on_thread(race_invoker, &r);
    signalr_connection_free(r.c);
    int ok = 0, canceled = 0;
    for (int i = 0; i < RACE_N; i++) {
        probe *p = r.probes[i];
        CHECK(probe_frees(p) == 1);
        CHECK_RC(r.rcs[i], SIGNALR_RESULT_OK);
        CHECK(probe_completions(p) == 1);
        if (p->result == SIGNALR_RESULT_OK) {
            CHECK_STR(p->json, "\"race\"");
            ok++;
        } else {
            CHECK_RC(p->result, SIGNALR_RESULT_CANCELED);
            canceled++;
        }
        PROBE_DONE(p);
    }
    CHECK(ok + canceled == RACE_N);
    CHECK(atomic_load(&w.overlaps) == 0);
}

/* The server vanishes while the client writes: writes to the dead socket fail (EPIPE) — a C host
 * keeps SIGPIPE's default action (terminate), so the library must not let it kill the process. */
TEST(server_gone_while_writing) {
    static const int transports[] = {SIGNALR_TRANSPORT_WEBSOCKETS, SIGNALR_TRANSPORT_LONG_POLLING};
    for (size_t t = 0; t < sizeof transports / sizeof transports[0]; t++) {
        hub h;
        hub_start(&h, false, NULL);
        char url[256];
        hub_url(&h, "/hub", url, sizeof url);
        signalr_builder *b = NULL;
        CHECK_OK(signalr_builder_new(url, &b));
        CHECK_OK(signalr_builder_set_transports(b, (uint32_t)transports[t]));
        signalr_connection *c = NULL;
        CHECK_OK(signalr_builder_build(b, &c));
        probe *closed = probe_new(NULL);
        CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
        CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
        hub_stop(&h);
        /* keep writing until the library reports the loss (each send waits for its write) */
        signalr_result rc = SIGNALR_RESULT_OK;
        for (int i = 0; i < 10000 && rc == SIGNALR_RESULT_OK; i++)
            rc = signalr_connection_send_blocking(c, "Record", "[\"into the void\"]", WAIT_GUARD_MS);
        CHECK(rc != SIGNALR_RESULT_OK);
        WAIT_CALLS(closed, 1);
        CHECK(closed->result != SIGNALR_RESULT_OK);
        signalr_connection_free(c);
        PROBE_DONE(closed);
    }
}

/* ---- free from a third thread while another thread keeps issuing calls ------------------- */

/* Two issuer threads keep calling invoke (Echo, every 10th a short Delay) and send (Record, with a completion) on one
 * connection while a third thread frees it. A C host must not use a handle once its _free has
 * begun, so the issuers take a read lock around each call and the freeing thread the write lock
 * around signalr_connection_free (with a "free wanted" flag so that the issuers cannot starve
 * it): the calls are being issued right up to the free, hundreds are still in flight when it
 * begins, and the issuers find the connection gone right after it. */
enum { ISSUE_MAX = 1000, ISSUE_BEFORE_FREE = 40 };
typedef struct issuer {
    struct free_race *race;
    bool send;
    probe *probes[ISSUE_MAX];
    signalr_result rcs[ISSUE_MAX];
    int issued;
} issuer;
typedef struct free_race {
    signalr_connection *c;
    conn_watch w;
    pthread_rwlock_t handle_lock;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool want_free, freed;
    int issued_total;
    issuer iss[2];
} free_race;

static void *free_race_issue(void *arg) {
    issuer *is = arg;
    free_race *fr = is->race;
    for (;;) {
        pthread_mutex_lock(&fr->mu);
        while ((fr->want_free || is->issued == ISSUE_MAX) && !fr->freed) pthread_cond_wait(&fr->cv, &fr->mu);
        bool freed = fr->freed;
        pthread_mutex_unlock(&fr->mu);
        if (freed) break;
        pthread_rwlock_rdlock(&fr->handle_lock);
        if (fr->c != NULL) {
            int i = is->issued;
            probe *p = is->probes[i] = probe_new(&fr->w);
            if (is->send)
                is->rcs[i] = REG(signalr_connection_send(fr->c, "Record", "[\"issued\"]", probe_completion_cb, p, probe_free_cb));
            else /* every 10th a short Delay, behind which the next invokes wait at the hub */
                is->rcs[i] = REG(signalr_connection_invoke(fr->c, i % 10 == 9 ? "Delay" : "Echo", i % 10 == 9 ? "[200]" : "[\"issued\"]",
                                                           probe_completion_cb, p, probe_free_cb));
            is->issued++;
        }
        pthread_rwlock_unlock(&fr->handle_lock);
        pthread_mutex_lock(&fr->mu);
        fr->issued_total++;
        pthread_cond_broadcast(&fr->cv);
        pthread_mutex_unlock(&fr->mu);
    }
    return NULL;
}

static void *free_race_free(void *arg) {
    free_race *fr = arg;
    pthread_mutex_lock(&fr->mu);
    while (fr->iss[0].issued < ISSUE_BEFORE_FREE || fr->iss[1].issued < ISSUE_BEFORE_FREE) pthread_cond_wait(&fr->cv, &fr->mu);
    fr->want_free = true;
    pthread_mutex_unlock(&fr->mu);
    pthread_rwlock_wrlock(&fr->handle_lock);
    signalr_connection_free(fr->c);
    fr->c = NULL;
    pthread_rwlock_unlock(&fr->handle_lock);
    pthread_mutex_lock(&fr->mu);
    fr->freed = true;
    pthread_cond_broadcast(&fr->cv);
    pthread_mutex_unlock(&fr->mu);
    return NULL;
}

TEST(free_from_another_thread_while_calls_are_issued) {
    free_race *fr = calloc(1, sizeof *fr);
    pthread_rwlock_init(&fr->handle_lock, NULL);
    pthread_mutex_init(&fr->mu, NULL);
    pthread_cond_init(&fr->cv, NULL);
    fr->c = connect_started("/hub");
    pthread_t t[3];
    for (int k = 0; k < 2; k++) {
        fr->iss[k].race = fr;
        fr->iss[k].send = k == 1;
        pthread_create(&t[k], NULL, free_race_issue, &fr->iss[k]);
    }
    pthread_create(&t[2], NULL, free_race_free, fr);
    for (int k = 0; k < 3; k++) pthread_join(t[k], NULL);
    /* free (outside a callback) returned after every completion and userdata_free */
    int ok = 0, canceled = 0;
    for (int k = 0; k < 2; k++) {
        issuer *is = &fr->iss[k];
        CHECK(is->issued >= ISSUE_BEFORE_FREE);
        for (int i = 0; i < is->issued; i++) {
            probe *p = is->probes[i];
            CHECK(probe_frees(p) == 1);
            CHECK_RC(is->rcs[i], SIGNALR_RESULT_OK); /* every call was made before the free */
            CHECK(probe_completions(p) == 1);
            if (p->result == SIGNALR_RESULT_OK) {
                if (is->send) CHECK(p->json == NULL);
                else CHECK_STR(p->json, i % 10 == 9 ? "200" : "\"issued\"");
                ok++;
            } else {
                if (p->result != SIGNALR_RESULT_CANCELED)
                    check_fail(__FILE__, __LINE__, "%s #%d completed with %s (%s), want OK or CANCELED",
                               is->send ? "send" : "invoke", i, signalr_result_name(p->result), p->error ? p->error : "");
                canceled++;
            }
            PROBE_DONE(p);
        }
    }
    printf("    %d invokes + %d sends issued: %d OK, %d CANCELED\n", fr->iss[0].issued, fr->iss[1].issued, ok, canceled);
    CHECK(atomic_load(&fr->w.overlaps) == 0);
    pthread_rwlock_destroy(&fr->handle_lock);
    pthread_mutex_destroy(&fr->mu);
    pthread_cond_destroy(&fr->cv);
    free(fr);
}

/* ---- a start that never finishes: free during it, start_blocking timing out --------------- */

/* A TCP listener that never answers: the client's connect succeeds (kernel backlog) and its
 * request then waits forever, so a start against it stays in progress. */
typedef struct silent_server {
    int fd;
    int port;
    int accepted[8];
    int n_accepted;
} silent_server;

static void silent_start(silent_server *s) {
    memset(s, 0, sizeof *s);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) != 0) {
        perror("silent server");
        exit(2);
    }
    s->port = ntohs(a.sin_port);
}

/* Waits (guarded) until the client opened a TCP connection to it: the start is in progress. */
static bool silent_accept(silent_server *s, const char *file, int line) {
    struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
    int r = poll(&pfd, 1, WAIT_GUARD_MS);
    if (r != 1) {
        check_fail(file, line, "the client did not connect to the silent server within %d ms", WAIT_GUARD_MS);
        return false;
    }
    int fd = accept(s->fd, NULL, NULL);
    if (fd >= 0 && s->n_accepted < 8) s->accepted[s->n_accepted++] = fd;
    else if (fd >= 0) close(fd);
    return fd >= 0;
}

static void silent_stop(silent_server *s) {
    for (int i = 0; i < s->n_accepted; i++) close(s->accepted[i]);
    close(s->fd);
}

static signalr_connection *connect_silent(const silent_server *s, bool websocket_only) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hub", s->port);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    if (websocket_only) {
        CHECK_OK(signalr_builder_set_transports(b, SIGNALR_TRANSPORT_WEBSOCKETS));
        CHECK_OK(signalr_builder_set_skip_negotiation(b, true));
    }
    signalr_connection *c = NULL;
    CHECK_OK(signalr_builder_build(b, &c));
    return c;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *free_on_thread(void *c) {
    signalr_connection_free(c);
    return NULL;
}

TEST(free_while_start_in_progress) {
    /* negotiate (or, with skipNegotiation, the WebSocket upgrade) never answered; freed from
     * this thread and from another one */
    for (int k = 0; k < 4; k++) {
        bool ws = k & 1, other_thread = k & 2;
        silent_server s;
        silent_start(&s);
        conn_watch w = {0};
        signalr_connection *c = connect_silent(&s, ws);
        probe *start = probe_new(&w), *states = probe_new(&w), *closed = probe_new(&w);
        CHECK_OK(REG(signalr_connection_on_state_changed(c, probe_state_cb, states, probe_free_cb)));
        CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
        CHECK_OK(REG(signalr_connection_start(c, probe_completion_cb, start, probe_free_cb)));
        silent_accept(&s, __FILE__, __LINE__);
        CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_CONNECTING);
        CHECK(probe_completions(start) == 0);
        double t0 = now_ms();
        if (other_thread) run_on_thread(free_on_thread, c);
        else signalr_connection_free(c);
        double took = now_ms() - t0;
        /* free returned after the start's completion (exactly once, CANCELED) and every release */
        CHECK(probe_frees(start) == 1 && probe_frees(states) == 1 && probe_frees(closed) == 1);
        CHECK(probe_completions(start) == 1);
        CHECK_RC(start->result, SIGNALR_RESULT_CANCELED);
        if (took > 4000) check_fail(__FILE__, __LINE__, "free during a start took %.0f ms", took);
        CHECK(atomic_load(&w.overlaps) == 0);
        PROBE_DONE(start);
        PROBE_DONE(states);
        PROBE_DONE(closed);
        silent_stop(&s);
    }
    /* against the real hub, freed right after the start was issued */
    for (int i = 0; i < 5; i++) {
        signalr_connection *c = connect_new("/hub");
        probe *start = probe_new(NULL);
        CHECK_OK(REG(signalr_connection_start(c, probe_completion_cb, start, probe_free_cb)));
        signalr_connection_free(c);
        CHECK(probe_frees(start) == 1 && probe_completions(start) == 1);
        CHECK_RC(start->result, SIGNALR_RESULT_CANCELED);
        PROBE_DONE(start);
    }
}

TEST(start_blocking_timeout_ends_disconnected) {
    for (int ws = 0; ws < 2; ws++) {
        silent_server s;
        silent_start(&s);
        signalr_connection *c = connect_silent(&s, ws);
        probe *states = probe_new(NULL);
        CHECK_OK(REG(signalr_connection_on_state_changed(c, probe_state_cb, states, probe_free_cb)));
        CHECK_RC(signalr_connection_start_blocking(c, 300), SIGNALR_RESULT_TIMEOUT);
        CHECK(*signalr_last_error_message() != '\0');
        CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
        /* the connection is DISCONNECTED again, so it may be started again (and times out again) */
        CHECK_RC(signalr_connection_start_blocking(c, 300), SIGNALR_RESULT_TIMEOUT);
        CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
        WAIT_CALLS(states, 4); /* 0>1, 1>0 twice */
        char *log = probe_log(states);
        CHECK_STR(log, "0>1\n1>0\n0>1\n1>0");
        free(log);
        signalr_connection_free(c);
        PROBE_DONE(states);
        silent_stop(&s);
    }
}

/* send_blocking and stop_blocking timing out against a stalled hub (Stall: the hub reads and
 * writes nothing on the connection; over Long Polling each send is a POST it answers only after
 * the stall). Both return TIMEOUT; the stop still goes on (the connection ends DISCONNECTED, its
 * closed callback called once); a send that timed out leaves the connection usable. */
TEST(send_and_stop_blocking_timeouts) {
    char url[256];
    hub_url(&the_hub, "/hub", url, sizeof url);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    CHECK_OK(signalr_builder_set_transports(b, SIGNALR_TRANSPORT_LONG_POLLING));
    signalr_connection *c = NULL;
    CHECK_OK(signalr_builder_build(b, &c));
    conn_watch w = {0};
    probe *states = probe_new(&w), *closed = probe_new(&w), *stall = probe_new(&w);
    CHECK_OK(REG(signalr_connection_on_state_changed(c, probe_state_cb, states, probe_free_cb)));
    CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, closed, probe_free_cb)));
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));

    /* send_blocking: sends until one meets the stall (at most the stall's length) */
    CHECK_OK(REG(signalr_connection_invoke(c, "Stall", "[1500]", probe_completion_cb, stall, probe_free_cb)));
    signalr_result rc = SIGNALR_RESULT_OK;
    int sends = 0;
    double t0 = now_ms();
    while (rc == SIGNALR_RESULT_OK && now_ms() - t0 < 2000) {
        rc = signalr_connection_send_blocking(c, "Record", "[\"stalled\"]", 250);
        sends++;
    }
    CHECK_RC(rc, SIGNALR_RESULT_TIMEOUT);
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_CONNECTED);
    /* once the stall is over the connection works */
    WAIT_DONE(stall);
    CHECK_RC(stall->result, SIGNALR_RESULT_OK);
    char *r = invoke_ok(c, "Echo", "[\"after the stall\"]");
    CHECK_STR(r, "\"after the stall\"");
    free(r);

    /* stop_blocking: the stop meets a stall (its Close message is a POST the hub holds) */
    probe *stall2 = probe_new(&w);
    CHECK_OK(REG(signalr_connection_invoke(c, "Stall", "[1500]", probe_completion_cb, stall2, probe_free_cb)));
    /* a send that times out proves the stall is in effect */
    rc = SIGNALR_RESULT_OK;
    t0 = now_ms();
    while (rc == SIGNALR_RESULT_OK && now_ms() - t0 < 2000) rc = signalr_connection_send_blocking(c, "Record", "[\"stalled\"]", 100);
    CHECK_RC(rc, SIGNALR_RESULT_TIMEOUT);
    CHECK_RC(signalr_connection_stop_blocking(c, 100), SIGNALR_RESULT_TIMEOUT);
    /* the stop goes on: closed once, the connection DISCONNECTED */
    WAIT_CALLS(closed, 1);
    WAIT_DONE(stall2);
    CHECK(signalr_connection_get_state(c) == SIGNALR_CONNECTION_STATE_DISCONNECTED);
    CHECK(probe_calls(closed) == 1);
    char *log = probe_log(states);
    for (char *q = log; *q; q++)
        if (*q == '\n') *q = ' ';
    printf("    %d sends before the first timeout; states %s; stall2 %s\n", sends, log, signalr_result_name(stall2->result));
    free(log);
    signalr_connection_free(c);
    CHECK(atomic_load(&w.overlaps) == 0);
    PROBE_DONE(states);
    PROBE_DONE(closed);
    PROBE_DONE(stall);
    PROBE_DONE(stall2);
}

/* ---- free and blocking calls inside the state / reconnecting / reconnected callbacks ------ */

enum { IN_STATE, IN_RECONNECTING, IN_RECONNECTED };
static const char *const in_names[] = {"state-changed", "reconnecting", "reconnected"};

/* One case: `which` callback frees `c` (once: it sets c to NULL); `inner` gets the invoke issued
 * in there just before the free. */
typedef struct lifecycle_free {
    signalr_connection *c;
    int which;
    conn_watch w;
    probe *states, *reconnecting, *reconnected, *closed, *inner;
    signalr_result inner_rc;
    atomic_int blocking_checked;
} lifecycle_free;
static lifecycle_free *lf_current;

/* Inside the callback: every _blocking call refuses, an asynchronous invoke is accepted (when
 * the state allows it), then the connection is freed from in here. */
static void lifecycle_block_then_free(void) {
    lifecycle_free *lf = lf_current;
    signalr_connection *c = lf->c;
    if (c == NULL) return;
    lf->c = NULL;
    char *out = NULL;
    CHECK_RC(signalr_connection_invoke_blocking(c, "Echo", "[1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK(out == NULL);
    CHECK_CONTAINS(signalr_last_error_message(), "inside a library callback");
    CHECK_RC(signalr_connection_send_blocking(c, "Record", "[1]", WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK_RC(signalr_connection_stop_blocking(c, WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    CHECK_RC(signalr_connection_start_blocking(c, WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
    atomic_store(&lf->blocking_checked, 1);
    /* an invoke issued in here, pending when the connection is freed: CANCELED (or, while
     * reconnecting, refused at once with INVALID_STATE, its user data released before return) */
    lf->inner_rc = signalr_connection_invoke(c, "Delay", "[60000]", probe_completion_cb, lf->inner, probe_free_cb);
    signalr_connection_free(c);
}

static void lf_state_cb(void *ud, uint32_t old_state, uint32_t new_state) {
    probe_state_cb(ud, old_state, new_state);
    if (lf_current->which == IN_STATE && new_state == SIGNALR_CONNECTION_STATE_RECONNECTING) lifecycle_block_then_free();
}
static void lf_reconnecting_cb(void *ud, signalr_result result, const char *error, size_t error_len) {
    probe_closed_cb(ud, result, error, error_len);
    if (lf_current->which == IN_RECONNECTING) lifecycle_block_then_free();
}
static void lf_reconnected_cb(void *ud, const char *id, size_t len) {
    probe_reconnected_cb(ud, id, len);
    if (lf_current->which == IN_RECONNECTED) lifecycle_block_then_free();
}

TEST(free_inside_lifecycle_callbacks) {
    for (int which = IN_STATE; which <= IN_RECONNECTED; which++) {
        lifecycle_free lf = {0};
        lf.which = which;
        lf_current = &lf;
        char url[256];
        hub_url(&the_hub, "/hub", url, sizeof url);
        signalr_builder *b = NULL;
        CHECK_OK(signalr_builder_new(url, &b));
        const uint64_t delays[] = {0, 0};
        CHECK_OK(signalr_builder_set_automatic_reconnect(b, delays, 2));
        signalr_connection *c = NULL;
        CHECK_OK(signalr_builder_build(b, &c));
        lf.states = probe_new(&lf.w);
        lf.reconnecting = probe_new(&lf.w);
        lf.reconnected = probe_new(&lf.w);
        lf.closed = probe_new(&lf.w);
        lf.inner = probe_new(&lf.w);
        CHECK_OK(REG(signalr_connection_on_state_changed(c, lf_state_cb, lf.states, probe_free_cb)));
        CHECK_OK(REG(signalr_connection_on_reconnecting(c, lf_reconnecting_cb, lf.reconnecting, probe_free_cb)));
        CHECK_OK(REG(signalr_connection_on_reconnected(c, lf_reconnected_cb, lf.reconnected, probe_free_cb)));
        CHECK_OK(REG(signalr_connection_on_closed(c, probe_closed_cb, lf.closed, probe_free_cb)));
        CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
        lf.c = c;
        /* the last use of c from here: the callback thread frees it once the transport drops */
        probe *drop = probe_new(&lf.w);
        CHECK_OK(REG(signalr_connection_send(c, "DropTransport", "[]", probe_completion_cb, drop, probe_free_cb)));
        /* the teardown finishes on the callback thread after the freeing callback returned */
        WAIT_FREED(lf.states);
        WAIT_FREED(lf.reconnecting);
        WAIT_FREED(lf.reconnected);
        WAIT_FREED(lf.closed);
        WAIT_FREED(lf.inner);
        WAIT_FREED(drop);
        if (!atomic_load(&lf.blocking_checked))
            check_fail(__FILE__, __LINE__, "%s: the freeing callback never ran", in_names[which]);
        CHECK(lf.c == NULL);
        CHECK(probe_completions(drop) == 1);
        if (lf.inner_rc == SIGNALR_RESULT_OK) {
            CHECK(probe_completions(lf.inner) == 1);
            if (lf.inner->result != SIGNALR_RESULT_CANCELED)
                check_fail(__FILE__, __LINE__, "%s: invoke issued inside the callback completed %s, want CANCELED",
                           in_names[which], signalr_result_name(lf.inner->result));
        } else {
            CHECK_RC(lf.inner_rc, SIGNALR_RESULT_INVALID_STATE);
            CHECK(probe_completions(lf.inner) == 0);
        }
        /* no lifecycle callback after the free: reconnecting stops, no reconnected nor closed */
        CHECK(probe_calls(lf.closed) == 0);
        /* freed inside the state callback (on RECONNECTING) the reconnecting callback may not
         * have run yet, and then never runs */
        CHECK(which == IN_STATE ? probe_calls(lf.reconnecting) <= 1 : probe_calls(lf.reconnecting) == 1);
        CHECK(probe_calls(lf.reconnected) == (which == IN_RECONNECTED ? 1 : 0));
        char *log = probe_log(lf.states);
        for (char *q = log; *q; q++)
            if (*q == '\n') *q = ' ';
        printf("    %s: states %s; inner invoke %s/%s\n", in_names[which], log, signalr_result_name(lf.inner_rc),
               lf.inner_rc == SIGNALR_RESULT_OK ? signalr_result_name(lf.inner->result) : "-");
        free(log);
        CHECK(atomic_load(&lf.w.overlaps) == 0);
        PROBE_DONE(lf.states);
        PROBE_DONE(lf.reconnecting);
        PROBE_DONE(lf.reconnected);
        PROBE_DONE(lf.closed);
        PROBE_DONE(lf.inner);
        PROBE_DONE(drop);
        lf_current = NULL;
    }
}

/* ---- the log callback: re-entrant set_callback, blocking calls, user data release --------- */

static signalr_connection *log_conn; /* a connection (not started) for blocking calls in there */
static probe *log_next;              /* what the first callback installs from inside */

/* Makes the library log a warning on this thread (a server timeout not above the keep-alive
 * interval, reported by signalr_builder_build). */
static void emit_library_warning(void) {
    char url[256];
    hub_url(&the_hub, "/hub", url, sizeof url);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    CHECK_OK(signalr_builder_set_keep_alive_interval_ms(b, 20000));
    CHECK_OK(signalr_builder_set_server_timeout_ms(b, 20000));
    signalr_connection *c = NULL;
    CHECK_OK(signalr_builder_build(b, &c));
    signalr_connection_free(c);
}

static void log_cb_second(void *ud, uint32_t level, const char *target, size_t target_len, const char *message, size_t message_len);

/* First callback: on its first record, the blocking calls refuse, then it replaces itself. */
static void log_cb_first(void *ud, uint32_t level, const char *target, size_t target_len, const char *message, size_t message_len) {
    (void)level, (void)target, (void)target_len;
    probe *p = ud;
    pthread_mutex_lock(&p->mu);
    bool first = p->flag == 0;
    p->flag = 1;
    pthread_mutex_unlock(&p->mu);
    if (first) {
        char *out = NULL;
        CHECK_RC(signalr_connection_invoke_blocking(log_conn, "Echo", "[1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_WOULD_DEADLOCK);
        CHECK(out == NULL);
        CHECK_RC(signalr_connection_send_blocking(log_conn, "Record", "[1]", WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
        CHECK_RC(signalr_connection_start_blocking(log_conn, WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
        CHECK_RC(signalr_connection_stop_blocking(log_conn, WAIT_GUARD_MS), SIGNALR_RESULT_WOULD_DEADLOCK);
        /* replaced from inside: returns at once; this callback's user data is released after it
         * returned (and after the records already queued for it) */
        CHECK_OK(signalr_log_set_callback(log_cb_second, log_next, probe_free_cb, SIGNALR_LOG_LEVEL_TRACE));
        pthread_mutex_lock(&p->mu);
        CHECK(p->frees == 0);
        pthread_mutex_unlock(&p->mu);
    }
    probe_item_cb(p, message, message_len);
}

/* Second callback: removes itself from inside on its first record. */
static void log_cb_second(void *ud, uint32_t level, const char *target, size_t target_len, const char *message, size_t message_len) {
    (void)level, (void)target, (void)target_len;
    probe *p = ud;
    pthread_mutex_lock(&p->mu);
    bool first = p->flag == 0;
    p->flag = 1;
    pthread_mutex_unlock(&p->mu);
    if (first) {
        char *out = NULL;
        CHECK_RC(signalr_connection_invoke_blocking(log_conn, "Echo", "[1]", WAIT_GUARD_MS, &out), SIGNALR_RESULT_WOULD_DEADLOCK);
        CHECK_OK(signalr_log_set_callback(NULL, NULL, NULL, SIGNALR_LOG_LEVEL_NONE));
        pthread_mutex_lock(&p->mu);
        CHECK(p->frees == 0);
        pthread_mutex_unlock(&p->mu);
    }
    probe_item_cb(p, message, message_len);
}

static void log_cb_plain(void *ud, uint32_t level, const char *target, size_t target_len, const char *message, size_t message_len) {
    (void)level, (void)target, (void)target_len;
    probe_item_cb(ud, message, message_len);
}

TEST(log_callback_reentrancy_and_release) {
    log_conn = connect_new("/hub");
    probe *first = probe_new(NULL), *second = probe_new(NULL);
    log_next = second;
    CHECK_OK(signalr_log_set_callback(log_cb_first, first, probe_free_cb, SIGNALR_LOG_LEVEL_TRACE));
    emit_library_warning();
    /* the first callback replaced itself from inside: released once, after it returned */
    WAIT_FREED(first);
    CHECK(probe_calls(first) >= 1);
    /* the second one gets the next record and removes itself from inside */
    emit_library_warning();
    WAIT_FREED(second);
    CHECK(probe_calls(second) >= 1);
    int first_calls = probe_calls(first), second_calls = probe_calls(second);
    emit_library_warning(); /* nobody is called any more */

    /* replaced and removed from outside: after each call returns the previous user data was
     * released (its log thread ended), exactly once */
    probe *third = probe_new(NULL), *fourth = probe_new(NULL);
    CHECK_OK(signalr_log_set_callback(log_cb_plain, third, probe_free_cb, SIGNALR_LOG_LEVEL_WARNING));
    emit_library_warning();
    CHECK_OK(signalr_log_set_callback(log_cb_plain, fourth, probe_free_cb, SIGNALR_LOG_LEVEL_WARNING));
    CHECK(probe_frees(third) == 1);
    CHECK(probe_calls(third) >= 1);
    emit_library_warning();
    /* the suite's state again: no log callback, level NONE */
    CHECK_OK(signalr_log_set_callback(NULL, NULL, NULL, SIGNALR_LOG_LEVEL_NONE));
    CHECK(probe_frees(fourth) == 1);
    CHECK(probe_calls(fourth) >= 1);
    emit_library_warning();
    CHECK(probe_calls(first) == first_calls && probe_calls(second) == second_calls);
    signalr_connection_free(log_conn);
    log_conn = NULL;
    PROBE_DONE(first);
    PROBE_DONE(second);
    PROBE_DONE(third);
    PROBE_DONE(fourth);
}
