#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

atomic_int harness_failures;
_Thread_local int in_registration;
_Thread_local signalr_result registered_rc_;
hub the_hub;

void check_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    flockfile(stderr);
    fprintf(stderr, "    FAILED %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    atomic_fetch_add(&harness_failures, 1);
}

static void die(const char *what) {
    fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* ---- hub ---- */

void hub_start(hub *h, bool tls, const char *const *extra_args) {
    const char *bin = getenv("TEST_HUB_BIN");
    if (bin == NULL || *bin == '\0') bin = "target/debug/test-hub";
    memset(h, 0, sizeof *h);

    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--exit-on-stdin-eof";
    if (tls) {
        snprintf(h->cert_path, sizeof h->cert_path, "/tmp/signalr-ctests-%d-%p.pem", (int)getpid(),
                 (void *)h);
        argv[n++] = "--tls";
        argv[n++] = h->cert_path;
    }
    for (int i = 0; extra_args && extra_args[i] && n < 30; i++) argv[n++] = extra_args[i];
    argv[n] = NULL;

    int in_pipe[2], out_pipe[2];
    if (pipe(in_pipe) || pipe(out_pipe)) die("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_addclose(&fa, in_pipe[1]);
    posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
    int err = posix_spawn(&h->pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        errno = err;
        fprintf(stderr, "harness: cannot start test hub '%s' (set TEST_HUB_BIN)\n", bin);
        die("posix_spawn");
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    fcntl(in_pipe[1], F_SETFD, FD_CLOEXEC);
    fcntl(out_pipe[0], F_SETFD, FD_CLOEXEC);
    h->stdin_fd = in_pipe[1];
    h->stdout_fd = out_pipe[0];

    /* First line of stdout is the base URL. */
    size_t len = 0;
    for (;;) {
        char ch;
        ssize_t r = read(h->stdout_fd, &ch, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("test hub exited before printing its URL");
        if (ch == '\n') break;
        if (len + 1 < sizeof h->base) h->base[len++] = ch;
    }
    h->base[len] = '\0';
}

void hub_stop(hub *h) {
    if (h->pid <= 0) return;
    close(h->stdin_fd);
    kill(h->pid, SIGTERM);
    int status;
    while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR) {
    }
    close(h->stdout_fd);
    if (h->cert_path[0]) unlink(h->cert_path);
    h->pid = 0;
}

void hub_url(const hub *h, const char *path, char *out, size_t out_size) {
    snprintf(out, out_size, "%s%s", h->base, path);
}

/* ---- probes ---- */

probe *probe_new(conn_watch *watch) {
    probe *p = calloc(1, sizeof *p);
    if (!p) die("calloc");
    p->magic = PROBE_MAGIC;
    p->watch = watch;
    p->result = (signalr_result)-1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

void probe_check_and_delete(probe *p, const char *file, int line) {
    pthread_mutex_lock(&p->mu);
    int frees = p->frees, after = p->calls_after_free, inside = p->calls_inside_registration;
    pthread_mutex_unlock(&p->mu);
    if (frees != 1) check_fail(file, line, "userdata_free called %d times, want exactly 1", frees);
    if (after) check_fail(file, line, "%d callback calls after userdata_free", after);
    if (inside) check_fail(file, line, "%d callback calls inside the registering call", inside);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->error);
    free(p->json);
    free(p->log);
    p->magic = 0;
    free(p);
}

static struct timespec deadline_after(int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static bool wait_field(probe *p, const int *field, int n, const char *what, const char *file,
                       int line) {
    struct timespec dl = deadline_after(WAIT_GUARD_MS);
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (*field < n && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&p->cv, &p->mu, &dl);
    int got = *field;
    pthread_mutex_unlock(&p->mu);
    if (got < n) {
        check_fail(file, line, "waited %d ms for %d %s, got %d", WAIT_GUARD_MS, n, what, got);
        return false;
    }
    return true;
}

bool probe_wait_completions(probe *p, int n, const char *file, int line) {
    return wait_field(p, &p->completions, n, "completions", file, line);
}
bool probe_wait_calls(probe *p, int n, const char *file, int line) {
    return wait_field(p, &p->calls, n, "calls", file, line);
}
bool probe_wait_frees(probe *p, int n, const char *file, int line) {
    return wait_field(p, &p->frees, n, "userdata frees", file, line);
}

static int read_field(probe *p, const int *field) {
    pthread_mutex_lock(&p->mu);
    int v = *field;
    pthread_mutex_unlock(&p->mu);
    return v;
}
int probe_completions(probe *p) { return read_field(p, &p->completions); }
int probe_calls(probe *p) { return read_field(p, &p->calls); }
int probe_frees(probe *p) { return read_field(p, &p->frees); }

char *probe_log(probe *p) {
    pthread_mutex_lock(&p->mu);
    char *s = strdup(p->log ? p->log : "");
    pthread_mutex_unlock(&p->mu);
    return s;
}

void probe_enter(probe *p) {
    if (p->magic != PROBE_MAGIC) {
        check_fail(__FILE__, __LINE__, "callback got a user data pointer that is not a live probe");
        abort();
    }
    if (p->watch && atomic_fetch_add(&p->watch->active, 1) != 0)
        atomic_fetch_add(&p->watch->overlaps, 1);
    pthread_mutex_lock(&p->mu);
    if (p->frees) p->calls_after_free++;
    if (in_registration) p->calls_inside_registration++;
    pthread_mutex_unlock(&p->mu);
}

void probe_leave(probe *p) {
    if (p->watch) atomic_fetch_sub(&p->watch->active, 1);
}

char *copy_borrowed(const char *s, size_t len) {
    if (s == NULL) {
        if (len != 0) check_fail(__FILE__, __LINE__, "NULL string with length %zu", len);
        return NULL;
    }
    if (s[len] != '\0') check_fail(__FILE__, __LINE__, "borrowed string not NUL-terminated at len");
    if (strlen(s) != len) check_fail(__FILE__, __LINE__, "borrowed string length mismatch");
    char *c = malloc(len + 1);
    if (!c) die("malloc");
    memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

static void append_log_locked(probe *p, const char *s, size_t len) {
    size_t need = p->log_len + len + 2;
    char *n = realloc(p->log, need);
    if (!n) die("realloc");
    p->log = n;
    if (p->log_len) p->log[p->log_len++] = '\n';
    memcpy(p->log + p->log_len, s, len);
    p->log_len += len;
    p->log[p->log_len] = '\0';
}

void probe_free_cb(void *ud) {
    probe *p = ud;
    if (p->magic != PROBE_MAGIC) {
        check_fail(__FILE__, __LINE__, "userdata_free got a pointer that is not a live probe");
        abort();
    }
    pthread_mutex_lock(&p->mu);
    p->frees++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void probe_completion_cb(void *ud, signalr_result result, const char *error, size_t error_len,
                         const char *json, size_t json_len) {
    probe *p = ud;
    probe_enter(p);
    char *e = copy_borrowed(error, error_len);
    char *j = copy_borrowed(json, json_len);
    if (result == SIGNALR_RESULT_OK && e != NULL)
        check_fail(__FILE__, __LINE__, "completion OK with an error text \"%s\"", e);
    if (result != SIGNALR_RESULT_OK && (e == NULL || *e == '\0'))
        check_fail(__FILE__, __LINE__, "completion %s without an error text", signalr_result_name(result));
    pthread_mutex_lock(&p->mu);
    free(p->error);
    free(p->json);
    p->error = e;
    p->json = j;
    p->result = result;
    pthread_mutex_unlock(&p->mu);
    if (p->on_done) p->on_done(p, result);
    pthread_mutex_lock(&p->mu);
    p->completions++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    probe_leave(p);
}

static void record_call(probe *p, const char *s, size_t len) {
    if (p->on_call) p->on_call(p, s, len);
    pthread_mutex_lock(&p->mu);
    append_log_locked(p, s, len);
    p->calls++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void probe_record(probe *p, const char *s, size_t len) { record_call(p, s, len); }

/* Records "METHOD INFIX TEXT" (the borrowed method and text copied first). */
static void record_method_text(probe *p, const char *method, size_t method_len, const char *infix,
                               const char *text, size_t text_len) {
    char *m = copy_borrowed(method, method_len);
    char *t = copy_borrowed(text, text_len);
    size_t n = strlen(m ? m : "") + strlen(infix) + strlen(t ? t : "") + 2;
    char *line = malloc(n);
    snprintf(line, n, "%s %s%s", m ? m : "", infix, t ? t : "");
    record_call(p, line, strlen(line));
    free(line);
    free(m);
    free(t);
}

void probe_batch_cb(void *ud, const char *method, size_t method_len, const char *calls,
                    size_t calls_len, size_t count) {
    probe *p = ud;
    probe_enter(p);
    char infix[32];
    snprintf(infix, sizeof infix, "%zu ", count);
    record_method_text(p, method, method_len, infix, calls, calls_len);
    probe_leave(p);
}

void probe_handler_cb(void *ud, const char *method, size_t method_len, const char *args,
                      size_t args_len) {
    probe *p = ud;
    probe_enter(p);
    record_method_text(p, method, method_len, "", args, args_len);
    probe_leave(p);
}

void probe_item_cb(void *ud, const char *json, size_t json_len) {
    probe *p = ud;
    probe_enter(p);
    char *j = copy_borrowed(json, json_len);
    record_call(p, j ? j : "", j ? strlen(j) : 0);
    free(j);
    probe_leave(p);
}

void probe_state_cb(void *ud, uint32_t old_state, uint32_t new_state) {
    probe *p = ud;
    probe_enter(p);
    char line[32];
    snprintf(line, sizeof line, "%u>%u", (unsigned)old_state, (unsigned)new_state);
    pthread_mutex_lock(&p->mu);
    if (p->state_count < 32) p->states[p->state_count++] = new_state;
    pthread_mutex_unlock(&p->mu);
    record_call(p, line, strlen(line));
    probe_leave(p);
}

void probe_closed_cb(void *ud, signalr_result result, const char *error, size_t error_len) {
    probe *p = ud;
    probe_enter(p);
    char *e = copy_borrowed(error, error_len);
    char line[512];
    snprintf(line, sizeof line, "%s %s", signalr_result_name(result), e ? e : "(null)");
    pthread_mutex_lock(&p->mu);
    p->result = result;
    free(p->error);
    p->error = e;
    pthread_mutex_unlock(&p->mu);
    record_call(p, line, strlen(line));
    probe_leave(p);
}

void probe_reconnected_cb(void *ud, const char *id, size_t len) {
    probe *p = ud;
    probe_enter(p);
    char *s = copy_borrowed(id, len);
    record_call(p, s ? s : "(null)", s ? strlen(s) : 6);
    free(s);
    probe_leave(p);
}

void probe_token_cb(void *ud, signalr_token_request *request) {
    probe *p = ud;
    probe_enter(p);
    CHECK_OK(signalr_token_request_complete(request, "probe-token", NULL));
    record_call(p, "token", 5);
    probe_leave(p);
}

void probe_invocation_cb(void *ud, const char *method, size_t method_len, const char *args,
                         size_t args_len, signalr_responder *responder) {
    probe_handler_cb(ud, method, method_len, args, args_len);
    signalr_responder_free(responder);
}

int64_t probe_policy_cb(void *ud, uint64_t previous_retry_count, uint64_t elapsed_ms,
                        const char *reason, size_t reason_len) {
    (void)previous_retry_count;
    (void)elapsed_ms;
    probe_item_cb(ud, reason, reason_len);
    return -1;
}

/* ---- API helpers ---- */

signalr_connection *connect_new(const char *path) {
    char url[256];
    hub_url(&the_hub, path, url, sizeof url);
    signalr_builder *b = NULL;
    CHECK_OK(signalr_builder_new(url, &b));
    signalr_connection *c = NULL;
    CHECK_OK(signalr_builder_build(b, &c));
    if (c == NULL) {
        fprintf(stderr, "harness: cannot build a connection to %s\n", url);
        exit(2);
    }
    return c;
}

signalr_connection *connect_started(const char *path) {
    signalr_connection *c = connect_new(path);
    CHECK_OK(signalr_connection_start_blocking(c, WAIT_GUARD_MS));
    return c;
}

char *invoke_ok(signalr_connection *c, const char *method, const char *args) {
    char *out = NULL;
    CHECK_OK(signalr_connection_invoke_blocking(c, method, args, WAIT_GUARD_MS, &out));
    char *copy = strdup(out ? out : "(null)");
    signalr_string_free(out);
    return copy;
}

void run_on_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg)) die("pthread_create");
    pthread_join(t, NULL);
}
