/* A small chat client on the signalr-native C API.
 *
 *     chat [--demo] [--messagepack] [--name NAME] [URL]
 *
 * Connects to the hub at URL (default http://127.0.0.1:5000/hub), prints every `Message` the hub
 * broadcasts and broadcasts each line typed on stdin. With --demo it sends a few messages, waits
 * until they came back and exits.
 *
 * Build (see examples/c/README.md):
 *   cc chat.c $(pkg-config --cflags --libs signalr) -Wl,-rpath,$(pkg-config --variable=libdir signalr)
 * or with CMake: find_package(signalr) + target_link_libraries(chat PRIVATE signalr::signalr).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signalr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const DEMO_LINES[] = {"hello from signalr-native", "two hub protocols, one client", "bye"};
enum { DEMO_COUNT = sizeof DEMO_LINES / sizeof DEMO_LINES[0] };

/* What the Message handler shares with main: how many of our own messages came back. */
typedef struct chat {
    const char *name;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int mine;
} chat;

/* Appends s to out as a JSON string literal (quotes included). */
static void json_string(char *out, size_t size, const char *s) {
    size_t n = strlen(out);
    if (n + 1 < size) out[n++] = '"';
    for (; *s && n + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    if (n + 1 < size) out[n++] = '"';
    out[n] = '\0';
}

/* Reads the next JSON string of an array like ["user","text"] starting at *p; returns a
 * malloc'd UTF-8 copy or NULL. Handles the escapes a server produces (\uXXXX as UTF-8). */
static char *next_json_string(const char **p) {
    const char *s = strchr(*p, '"');
    if (!s) return NULL;
    char *out = malloc(strlen(s) + 1), *o = out;
    for (s++; *s && *s != '"'; s++) {
        if (*s != '\\') {
            *o++ = *s;
            continue;
        }
        switch (*++s) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            if (sscanf(s + 1, "%4x", &cp) != 1) break;
            s += 4;
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xc0 | cp >> 6);
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else { /* surrogate pairs are left as they are: enough for an example */
                *o++ = (char)(0xe0 | cp >> 12);
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        case '\0': s--; break;
        default: *o++ = *s; break; /* \" \\ \/ */
        }
    }
    *o = '\0';
    *p = *s ? s + 1 : s;
    return out;
}

/* Runs on a library thread for every Message(user, text). */
static void on_message(void *userdata, const char *method, size_t method_len, const char *args, size_t args_len) {
    (void)method, (void)method_len, (void)args_len;
    chat *c = userdata;
    const char *p = args;
    char *user = next_json_string(&p), *text = user ? next_json_string(&p) : NULL;
    if (!user || !text) {
        fprintf(stderr, "unexpected Message arguments: %s\n", args);
    } else {
        printf("%s: %s\n", user, text);
        fflush(stdout);
        if (strcmp(user, c->name) == 0) {
            pthread_mutex_lock(&c->mu);
            c->mine++;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
        }
    }
    free(user);
    free(text);
}

static void on_reconnecting(void *ud, signalr_result r, const char *error, size_t len) {
    (void)ud, (void)r, (void)len;
    fprintf(stderr, "connection lost (%s); reconnecting...\n", error ? error : "");
}
static void on_reconnected(void *ud, const char *id, size_t len) {
    (void)ud, (void)id, (void)len;
    fprintf(stderr, "reconnected\n");
}
static void on_closed(void *ud, signalr_result r, const char *error, size_t len) {
    (void)ud, (void)len;
    if (r == SIGNALR_RESULT_OK) fprintf(stderr, "connection closed\n");
    else fprintf(stderr, "connection closed: %s\n", error);
}

static int fail(const char *what, signalr_result rc) {
    fprintf(stderr, "chat: %s: %s (%s)\n", what, signalr_last_error_message(), signalr_result_name(rc));
    return 1;
}

static signalr_result broadcast(signalr_connection *conn, const char *name, const char *line) {
    char args[4096] = "[\"Message\",";
    json_string(args, sizeof args - 2, name);
    strcat(args, ",");
    json_string(args, sizeof args - 2, line);
    strcat(args, "]");
    char *result = NULL;
    signalr_result rc = signalr_connection_invoke_blocking(conn, "Broadcast", args, 30000, &result);
    signalr_string_free(result);
    return rc;
}

int main(int argc, char **argv) {
    const char *url = "http://127.0.0.1:5000/hub";
    uint32_t protocol = SIGNALR_PROTOCOL_JSON;
    int demo = 0;
    char default_name[32];
    snprintf(default_name, sizeof default_name, "user%ld", (long)getpid());
    chat c = {default_name, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--demo") == 0) demo = 1;
        else if (strcmp(argv[i], "--messagepack") == 0) protocol = SIGNALR_PROTOCOL_MESSAGEPACK;
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) c.name = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts("usage: chat [--demo] [--messagepack] [--name NAME] [URL]");
            return 0;
        } else if (strncmp(argv[i], "--", 2) == 0) {
            fprintf(stderr, "chat: unknown option %s\n", argv[i]);
            return 2;
        } else url = argv[i];
    }

    signalr_builder *b = NULL;
    signalr_connection *conn = NULL;
    signalr_result rc;
    if ((rc = signalr_builder_new(url, &b))) return fail("bad URL", rc);
    signalr_builder_set_protocol(b, protocol);
    signalr_builder_set_automatic_reconnect(b, NULL, 0); /* 0, 2, 10, 30 s */
    if ((rc = signalr_builder_build(b, &conn))) return fail("cannot build the connection", rc);

    uint64_t handler;
    signalr_connection_on(conn, "Message", on_message, &c, NULL, &handler);
    signalr_connection_on_reconnecting(conn, on_reconnecting, NULL, NULL);
    signalr_connection_on_reconnected(conn, on_reconnected, NULL, NULL);
    signalr_connection_on_closed(conn, on_closed, NULL, NULL);

    if ((rc = signalr_connection_start_blocking(conn, 30000))) {
        int r = fail("cannot connect", rc);
        signalr_connection_free(conn);
        return r;
    }
    char *id = NULL;
    signalr_connection_get_connection_id(conn, &id);
    fprintf(stderr, "connected to %s as %s (%s); connection id %s\n", url, c.name,
            protocol == SIGNALR_PROTOCOL_JSON ? "json" : "messagepack", id ? id : "-");
    signalr_string_free(id);

    int status = 0;
    if (demo) {
        for (int i = 0; i < DEMO_COUNT && status == 0; i++)
            if ((rc = broadcast(conn, c.name, DEMO_LINES[i]))) status = fail("broadcast", rc);
        /* Every broadcast comes back to us too: wait for our own ones (10 s at most). */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        pthread_mutex_lock(&c.mu);
        while (status == 0 && c.mine < DEMO_COUNT)
            if (pthread_cond_timedwait(&c.cv, &c.mu, &deadline) == ETIMEDOUT) break;
        if (status == 0 && c.mine < DEMO_COUNT) {
            fprintf(stderr, "chat: the hub did not echo the demo messages\n");
            status = 1;
        }
        pthread_mutex_unlock(&c.mu);
    } else {
        char line[2048];
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '\0') continue;
            if ((rc = broadcast(conn, c.name, line))) fail("broadcast", rc);
        }
    }
    signalr_connection_stop_blocking(conn, 30000);
    signalr_connection_free(conn); /* waits for running callbacks: `c` may go away after this */
    return status;
}
