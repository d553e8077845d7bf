// The C API from C++17 through small RAII wrappers: unique_ptr deleters for every handle, and
// std::function callbacks whose heap box is released by the library's userdata_free.
// Runs against the test hub; prints "N passed, N failed".
#include <signalr.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace signalr {

struct Error : std::runtime_error {
    signalr_result code;
    Error(signalr_result c, const std::string &what)
        : std::runtime_error(std::string(signalr_result_name(c)) + ": " + what), code(c) {}
};

inline void check(signalr_result rc) {
    if (rc != SIGNALR_RESULT_OK) throw Error(rc, signalr_last_error_message());
}

struct BuilderDeleter {
    void operator()(signalr_builder *b) const noexcept { signalr_builder_free(b); }
};
struct ConnectionDeleter {
    void operator()(signalr_connection *c) const noexcept { signalr_connection_free(c); }
};
struct StreamDeleter {
    void operator()(signalr_stream *s) const noexcept { signalr_stream_free(s); }
};
struct UploadDeleter {
    void operator()(signalr_upload *u) const noexcept { signalr_upload_free(u); }
};
struct StringDeleter {
    void operator()(char *s) const noexcept { signalr_string_free(s); }
};
using BuilderPtr = std::unique_ptr<signalr_builder, BuilderDeleter>;
using ConnectionPtr = std::unique_ptr<signalr_connection, ConnectionDeleter>;
using StreamPtr = std::unique_ptr<signalr_stream, StreamDeleter>;
using UploadPtr = std::unique_ptr<signalr_upload, UploadDeleter>;
using StringPtr = std::unique_ptr<char, StringDeleter>;

inline std::string view(const char *p, size_t n) { return p ? std::string(p, n) : std::string(); }

// A callback box handed to the library as user data; the library deletes it via `release`.
template <class F> struct Box {
    F fn;
    static void release(void *ud) noexcept { delete static_cast<Box *>(ud); }
};

using Completion = std::function<void(signalr_result, std::string error, std::string json)>;
using Handler = std::function<void(const std::string &args)>;
using Item = std::function<void(const std::string &json)>;

struct StreamCallbacks {
    Item item;
    Completion done;
};

extern "C" void completion_trampoline(void *ud, signalr_result r, const char *e, size_t el, const char *j,
                                      size_t jl) {
    static_cast<Box<Completion> *>(ud)->fn(r, view(e, el), view(j, jl));
}
extern "C" void handler_trampoline(void *ud, const char *, size_t, const char *a, size_t al) {
    static_cast<Box<Handler> *>(ud)->fn(view(a, al));
}
extern "C" void item_trampoline(void *ud, const char *j, size_t jl) {
    static_cast<Box<StreamCallbacks> *>(ud)->fn.item(view(j, jl));
}
extern "C" void stream_done_trampoline(void *ud, signalr_result r, const char *e, size_t el, const char *j,
                                       size_t jl) {
    static_cast<Box<StreamCallbacks> *>(ud)->fn.done(r, view(e, el), view(j, jl));
}

class Connection {
  public:
    explicit Connection(const std::string &url) {
        signalr_builder *raw = nullptr;
        check(signalr_builder_new(url.c_str(), &raw));
        BuilderPtr b(raw);
        check(signalr_builder_set_protocol(b.get(), SIGNALR_PROTOCOL_MESSAGEPACK));
        signalr_connection *c = nullptr;
        check(signalr_builder_build(b.release(), &c)); // consumes the builder even on failure
        conn_.reset(c);
    }
    void start() { check(signalr_connection_start_blocking(conn_.get(), 60000)); }
    std::string invoke(const std::string &method, const std::string &args) {
        char *out = nullptr;
        check(signalr_connection_invoke_blocking(conn_.get(), method.c_str(), args.c_str(), 60000, &out));
        return StringPtr(out).get();
    }
    void invoke_async(const std::string &method, const std::string &args, Completion done) {
        auto *box = new Box<Completion>{std::move(done)};
        check(signalr_connection_invoke(conn_.get(), method.c_str(), args.c_str(), completion_trampoline, box,
                                        Box<Completion>::release));
    }
    uint64_t on(const std::string &method, Handler h) {
        uint64_t id = 0;
        auto *box = new Box<Handler>{std::move(h)};
        check(signalr_connection_on(conn_.get(), method.c_str(), handler_trampoline, box, Box<Handler>::release, &id));
        return id;
    }
    StreamPtr stream(const std::string &method, const std::string &args, Item item, Completion done) {
        auto *box = new Box<StreamCallbacks>{{std::move(item), std::move(done)}};
        signalr_stream *s = nullptr;
        check(signalr_connection_stream(conn_.get(), method.c_str(), args.c_str(), item_trampoline,
                                        stream_done_trampoline, box, Box<StreamCallbacks>::release, &s));
        return StreamPtr(s);
    }
    UploadPtr invoke_with_upload(const std::string &method, Completion done) {
        auto *box = new Box<Completion>{std::move(done)};
        signalr_upload *u = nullptr;
        check(signalr_connection_invoke_with_uploads(conn_.get(), method.c_str(), "[]", 1, &u, completion_trampoline,
                                                     box, Box<Completion>::release));
        return UploadPtr(u);
    }
    std::string connection_id() const {
        char *id = nullptr;
        check(signalr_connection_get_connection_id(conn_.get(), &id));
        return id ? std::string(StringPtr(id).get()) : std::string();
    }
    uint32_t state() const { return signalr_connection_get_state(conn_.get()); }

  private:
    ConnectionPtr conn_;
};

} // namespace signalr

// ---- a tiny test runner ----

static int failures = 0;
#define EXPECT(cond)                                                                                              \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            std::fprintf(stderr, "    FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);                           \
            ++failures;                                                                                           \
        }                                                                                                         \
    } while (0)

struct Latch {
    std::mutex mu;
    std::condition_variable cv;
    int count = 0;
    void hit() {
        std::lock_guard<std::mutex> g(mu);
        ++count;
        cv.notify_all();
    }
    bool wait(int n) {
        std::unique_lock<std::mutex> g(mu);
        return cv.wait_for(g, std::chrono::seconds(60), [&] { return count >= n; });
    }
};

struct Hub {
    pid_t pid = 0;
    int in = -1, out = -1;
    std::string base;
    Hub() {
        const char *bin = std::getenv("TEST_HUB_BIN");
        if (!bin || !*bin) bin = "target/debug/test-hub";
        int ip[2], op[2];
        if (pipe(ip) || pipe(op)) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, ip[0], 0);
        posix_spawn_file_actions_adddup2(&fa, op[1], 1);
        posix_spawn_file_actions_addclose(&fa, ip[1]);
        posix_spawn_file_actions_addclose(&fa, op[0]);
        std::string a0 = bin;
        char port[] = "--port", zero[] = "0", eof[] = "--exit-on-stdin-eof";
        char *argv[] = {&a0[0], port, zero, eof, nullptr};
        if (posix_spawn(&pid, bin, &fa, nullptr, argv, environ)) throw std::runtime_error("cannot start test hub");
        posix_spawn_file_actions_destroy(&fa);
        close(ip[0]);
        close(op[1]);
        in = ip[1];
        out = op[0];
        char ch;
        while (read(out, &ch, 1) == 1 && ch != '\n') base += ch;
        if (base.empty()) throw std::runtime_error("test hub printed no URL");
    }
    ~Hub() {
        close(in);
        kill(pid, SIGTERM);
        int st;
        waitpid(pid, &st, 0);
        close(out);
    }
};

static void test_invoke_handlers_stream_upload(const Hub &hub) {
    signalr::Connection c(hub.base + "/hub");
    c.start();
    EXPECT(c.state() == SIGNALR_CONNECTION_STATE_CONNECTED);
    EXPECT(c.invoke("Echo", R"([{"k":[1,2,"three"]}])") == R"({"k":[1,2,"three"]})");
    EXPECT(c.invoke("GetConnectionId", "[]") == "\"" + c.connection_id() + "\"");

    Latch got;
    std::string received;
    c.on("Greet", [&](const std::string &args) {
        received = args;
        got.hit();
    });
    c.invoke("SendToCaller", R"(["Greet", "hi", 2])");
    EXPECT(got.wait(1));
    EXPECT(received == R"(["hi",2])");

    Latch done;
    std::string result;
    c.invoke_async("Add", "[20, 22]", [&](signalr_result r, std::string, std::string json) {
        EXPECT(r == SIGNALR_RESULT_OK);
        result = json;
        done.hit();
    });
    EXPECT(done.wait(1));
    EXPECT(result == "42");

    Latch ended;
    std::vector<std::string> items;
    signalr_result end = SIGNALR_RESULT_INTERNAL;
    {
        auto s = c.stream(
            "Counter", "[3, 0]", [&](const std::string &j) { items.push_back(j); },
            [&](signalr_result r, std::string, std::string) {
                end = r;
                ended.hit();
            });
        EXPECT(ended.wait(1));
    } // StreamPtr freed here
    EXPECT(end == SIGNALR_RESULT_OK);
    EXPECT((items == std::vector<std::string>{"0", "1", "2"}));

    Latch summed;
    std::string sum;
    {
        auto u = c.invoke_with_upload("Sum", [&](signalr_result r, std::string, std::string json) {
            EXPECT(r == SIGNALR_RESULT_OK);
            sum = json;
            summed.hit();
        });
        for (int i = 1; i <= 4; i++) signalr::check(signalr_upload_write(u.get(), std::to_string(i).c_str()));
        signalr::check(signalr_upload_complete(u.get()));
        EXPECT(summed.wait(1));
    }
    EXPECT(sum == "10");

    try {
        c.invoke("Fail", R"(["nope"])");
        EXPECT(false);
    } catch (const signalr::Error &e) {
        EXPECT(e.code == SIGNALR_RESULT_HUB_ERROR);
        EXPECT(std::strstr(e.what(), "HubException: nope") != nullptr);
    }
}

// The Connection's destructor frees the connection with a call in flight: the completion runs
// exactly once with CANCELED and the std::function box is deleted (by userdata_free).
static void test_destructor_cancels(const Hub &hub) {
    static std::atomic<int> boxes_alive{0};
    struct Tracker {
        Tracker() { ++boxes_alive; }
        Tracker(const Tracker &) { ++boxes_alive; }
        ~Tracker() { --boxes_alive; }
    };
    std::atomic<int> completions{0};
    signalr_result last = SIGNALR_RESULT_OK;
    {
        signalr::Connection c(hub.base + "/hub");
        c.start();
        Tracker t;
        c.invoke_async("Delay", "[60000]", [t, &completions, &last](signalr_result r, std::string, std::string) {
            last = r;
            ++completions;
        });
    }
    EXPECT(completions == 1);
    EXPECT(last == SIGNALR_RESULT_CANCELED);
    EXPECT(boxes_alive == 0);
}

int main() {
    int passed = 0, failed = 0;
    try {
        Hub hub;
        struct {
            const char *name;
            void (*fn)(const Hub &);
        } tests[] = {{"cpp_invoke_handlers_stream_upload", test_invoke_handlers_stream_upload},
                     {"cpp_destructor_cancels", test_destructor_cancels}};
        for (auto &t : tests) {
            int before = failures;
            try {
                t.fn(hub);
            } catch (const std::exception &e) {
                std::fprintf(stderr, "    FAILED: exception %s\n", e.what());
                ++failures;
            }
            bool ok = failures == before;
            (ok ? passed : failed)++;
            std::printf("test %s ... %s\n", t.name, ok ? "ok" : "FAILED");
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "setup failed: %s\n", e.what());
        failed++;
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
