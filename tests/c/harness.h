/* Test harness of the C suite: a spawned test hub, checks that count failures, and "probes" —
 * user data that records what the library did with it (calls, completions, userdata_free) and lets
 * the test wait for an event without sleeping. Plain C11 + POSIX threads. */
#ifndef SIGNALR_C_TESTS_HARNESS_H
#define SIGNALR_C_TESTS_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "signalr.h"

/* ---- checks ---------------------------------------------------------------------------- */

extern atomic_int harness_failures; /* failed checks of the running test (any thread) */

void check_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) check_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                      \
    } while (0)

/* Checks a signalr_result against the expected code, printing both names and the last error. */
#define CHECK_RC(expr, want)                                                                  \
    do {                                                                                      \
        signalr_result rc_ = (expr);                                                          \
        signalr_result want_ = (want);                                                        \
        if (rc_ != want_)                                                                     \
            check_fail(__FILE__, __LINE__, "%s = %s (%s), want %s", #expr,                    \
                       signalr_result_name(rc_), signalr_last_error_message(),                \
                       signalr_result_name(want_));                                           \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, SIGNALR_RESULT_OK)

#define CHECK_STR(got, want)                                                                  \
    do {                                                                                      \
        const char *g_ = (got), *w_ = (want);                                                 \
        if (g_ == NULL || strcmp(g_, w_) != 0)                                                \
            check_fail(__FILE__, __LINE__, "%s = \"%s\", want \"%s\"", #got,                  \
                       g_ ? g_ : "(null)", w_);                                               \
    } while (0)

#define CHECK_CONTAINS(got, part)                                                             \
    do {                                                                                      \
        const char *g_ = (got), *p_ = (part);                                                 \
        if (g_ == NULL || strstr(g_, p_) == NULL)                                             \
            check_fail(__FILE__, __LINE__, "%s = \"%s\" does not contain \"%s\"", #got,       \
                       g_ ? g_ : "(null)", p_);                                               \
    } while (0)

/* ---- the test hub ---------------------------------------------------------------------- */

typedef struct hub {
    pid_t pid;
    int stdin_fd;  /* the hub runs with --exit-on-stdin-eof: closing this ends it */
    int stdout_fd;
    char base[128]; /* http://127.0.0.1:PORT */
    char cert_path[256];
} hub;

/* Starts $TEST_HUB_BIN (default target/debug/test-hub) with extra arguments (NULL-terminated
 * list, may be NULL); tls adds --tls with a certificate file. Aborts the suite on failure. */
void hub_start(hub *h, bool tls, const char *const *extra_args);
void hub_stop(hub *h);
/* "<base><path>" in a static-per-call buffer owned by the caller (size 256). */
void hub_url(const hub *h, const char *path, char *out, size_t out_size);

extern hub the_hub; /* plain hub shared by most tests */

/* ---- waiting --------------------------------------------------------------------------- */

/* Generous guard for "this event must happen": a test that hits it fails (never passes). */
#define WAIT_GUARD_MS 60000

/* ---- probes ---------------------------------------------------------------------------- */

/* A connection-wide record used to prove callbacks of one connection never overlap. */
typedef struct conn_watch {
    atomic_int active;   /* callbacks of this connection running now */
    atomic_int overlaps; /* times a callback started while another ran */
} conn_watch;

#define PROBE_MAGIC 0x5167a1u

typedef struct probe {
    unsigned magic;
    conn_watch *watch; /* may be NULL */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* counters */
    int calls;        /* handler / item / log / state / lifecycle calls */
    int completions;  /* completion callback calls */
    int frees;        /* userdata_free calls */
    int calls_after_free;
    int calls_inside_registration; /* called synchronously inside the registering call */
    /* last completion */
    signalr_result result;
    char *error; /* copied; NULL when the library passed NULL */
    char *json;
    /* every string received by calls, '\n'-joined (copied) */
    char *log;
    size_t log_len;
    /* state callbacks: sequence of new states */
    uint32_t states[32];
    int state_count;
    /* free-form hooks for tests */
    void *user;
    int flag;
    void (*on_call)(struct probe *p, const char *s, size_t len);
    void (*on_done)(struct probe *p, signalr_result r);
} probe;

probe *probe_new(conn_watch *watch);
/* Checks frees == 1 and no contract violation, then releases the memory. */
void probe_check_and_delete(probe *p, const char *file, int line);
#define PROBE_DONE(p) probe_check_and_delete((p), __FILE__, __LINE__)

/* Wait helpers: true when reached, false (and a failed check) when the guard expired. */
bool probe_wait_completions(probe *p, int n, const char *file, int line);
bool probe_wait_calls(probe *p, int n, const char *file, int line);
bool probe_wait_frees(probe *p, int n, const char *file, int line);
#define WAIT_DONE(p) probe_wait_completions((p), 1, __FILE__, __LINE__)
#define WAIT_CALLS(p, n) probe_wait_calls((p), (n), __FILE__, __LINE__)
#define WAIT_FREED(p) probe_wait_frees((p), 1, __FILE__, __LINE__)

int probe_completions(probe *p);
int probe_calls(probe *p);
int probe_frees(probe *p);
/* copy of the '\n'-joined log (caller frees with free()) */
char *probe_log(probe *p);

/* Callbacks with a probe as user data (cast to the typedefs). */
void probe_free_cb(void *ud);
void probe_completion_cb(void *ud, signalr_result result, const char *error, size_t error_len,
                         const char *json, size_t json_len);
void probe_handler_cb(void *ud, const char *method, size_t method_len, const char *args,
                      size_t args_len);
void probe_item_cb(void *ud, const char *json, size_t json_len);
void probe_state_cb(void *ud, uint32_t old_state, uint32_t new_state);
void probe_closed_cb(void *ud, signalr_result result, const char *error, size_t error_len);
void probe_reconnected_cb(void *ud, const char *id, size_t len);
/* Count the call; the token request is answered with "probe-token", the responder freed
 * (unanswered) and the policy says stop. */
void probe_token_cb(void *ud, signalr_token_request *request);
void probe_invocation_cb(void *ud, const char *method, size_t method_len, const char *args,
                         size_t args_len, signalr_responder *responder);
/* Logs "<method> <count> <calls_json>" and counts one call per batch. */
void probe_batch_cb(void *ud, const char *method, size_t method_len, const char *calls,
                    size_t calls_len, size_t count);
/* Appends s to the log and counts one call, as the probe_* callbacks do (for own callbacks). */
void probe_record(probe *p, const char *s, size_t len);
int64_t probe_policy_cb(void *ud, uint64_t previous_retry_count, uint64_t elapsed_ms,
                        const char *reason, size_t reason_len);

/* Entering/leaving a callback of a watched connection (for own callbacks that do not use the
 * probe_* ones). Both take the probe that is the callback's user data. */
void probe_enter(probe *p);
void probe_leave(probe *p);

/* Set on the calling thread while it is inside a registering signalr_ call; a callback that sees
 * it set runs synchronously inside that call, which the contract forbids. */
extern _Thread_local int in_registration;
#define REG(expr) (in_registration = 1, registered_rc_ = (expr), in_registration = 0, registered_rc_)
extern _Thread_local signalr_result registered_rc_;

/* ---- helpers on top of the API --------------------------------------------------------- */

/* Builds a connection to <hub base><path> with the default options. */
signalr_connection *connect_new(const char *path);
/* connect_new + start_blocking, checked. */
signalr_connection *connect_started(const char *path);
/* invoke_blocking that must succeed; returns the owned result JSON (free with free()). */
char *invoke_ok(signalr_connection *c, const char *method, const char *args);
/* Runs fn on a new thread and joins it. */
void run_on_thread(void *(*fn)(void *), void *arg);
/* Copies a borrowed (ptr, len) string with checks that it is NUL-terminated at len. */
char *copy_borrowed(const char *s, size_t len);

/* ---- tests ------------------------------------------------------------------------------ */

typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

#define TEST(name) void name(void)

#endif
