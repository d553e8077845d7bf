#!/usr/bin/env bash
# The C API suite (issue 5): header freshness and hygiene, the C test suite against the test hub
# linked with the cdylib (run under valgrind memcheck) and with the staticlib (built with
# AddressSanitizer + UBSan), the C++ RAII test, and the C chat example built with pkg-config and
# with CMake's find_package(signalr), run in --demo mode.
#
# Expects the shared build of scripts/test-all.sh (`cargo build --workspace --all-targets`):
# target/debug/libsignalr_native.{so,a}, target/debug/test-hub and the package files the build
# writes to target/debug/{pkgconfig,cmake}. It builds no Rust itself.
#
# Environment: TEST_HUB_BIN (default target/debug/test-hub); C_TESTS_FILTER (test-name substrings,
# space separated, for the C suite); VALGRIND=0 runs the cdylib suite without valgrind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

lib_dir="$root/target/debug"
out="$root/target/c-tests"
export TEST_HUB_BIN="${TEST_HUB_BIN:-$lib_dir/test-hub}"
for f in "$lib_dir/libsignalr_native.so" "$lib_dir/libsignalr_native.a" "$TEST_HUB_BIN" \
         "$lib_dir/pkgconfig/signalr.pc" "$lib_dir/cmake/signalrConfig.cmake"; do
  [ -e "$f" ] || { echo "test-c: $f is missing: run 'cargo build --workspace --all-targets' first" >&2; exit 1; }
done
mkdir -p "$out"

warn=(-Wall -Wextra -Werror -Wpedantic)
cflags=(-std=c11 "${warn[@]}" -g -O1 -pthread -I"$root/include")
static_libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl)
suite=(tests/c/main.c tests/c/harness.c tests/c/test_api.c tests/c/test_connection.c
       tests/c/test_options.c tests/c/test_lifetime.c tests/c/test_batch.c)
failed=()

echo "== C API: committed include/signalr.h equals the one the build generated"
git diff --exit-code -- include/signalr.h || failed+=("header is stale: commit the regenerated include/signalr.h")

echo "== C API: header hygiene (included twice; C99, C11, C++17; prefixed names)"
for std in c99 c11; do
  cc -std=$std "${warn[@]}" -I"$root/include" -fsyntax-only tests/c/header_twice.c || failed+=("header as $std")
done
c++ -std=c++17 "${warn[@]}" -I"$root/include" -x c++ -fsyntax-only tests/c/header_twice.c || failed+=("header as c++17")
python3 tests/c/check_header_names.py include/signalr.h || failed+=("header names")

echo "== C API: building the C suite (cdylib and staticlib), the C++ test"
cc "${cflags[@]}" "${suite[@]}" -L"$lib_dir" -lsignalr_native -Wl,-rpath,"$lib_dir" -o "$out/c-tests-shared"
cc "${cflags[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
   "${suite[@]}" "$lib_dir/libsignalr_native.a" "${static_libs[@]}" -o "$out/c-tests-static-asan"
c++ -std=c++17 "${warn[@]}" -g -O1 -pthread -I"$root/include" tests/c/cpp_raii.cpp \
   -L"$lib_dir" -lsignalr_native -Wl,-rpath,"$lib_dir" -o "$out/cpp-raii"

# shellcheck disable=SC2206
filter=(${C_TESTS_FILTER:-})
# memcheck: every invalid access is an error; leaks "definitely", "indirectly" and "possibly" lost
# are errors too, except the process-lifetime caches named in tests/c/valgrind.supp (justified
# there). Still-reachable blocks are listed as well, to check that no connection object survives
# its signalr_connection_free (see below).
valgrind_cmd=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
              --show-leak-kinds=all --errors-for-leak-kinds=definite,indirect,possible
              --num-callers=40 --suppressions="$root/tests/c/valgrind.supp")
[ "${VALGRIND:-1}" = 0 ] && valgrind_cmd=()

summarize_valgrind() { # $1 = log file
  grep -E "ERROR SUMMARY|(definitely|indirectly|possibly) lost:|still reachable:|suppressed:" "$1" \
    | sed 's/^==[0-9]*== */  valgrind: /'
}

echo "== C API: C suite against the cdylib${valgrind_cmd:+ under valgrind memcheck}"
if [ ${#valgrind_cmd[@]} -gt 0 ]; then
  log="$out/valgrind-c-suite.log"
  "${valgrind_cmd[@]}" --log-file="$log" "$out/c-tests-shared" "${filter[@]}" || failed+=("C suite (cdylib, valgrind)")
  summarize_valgrind "$log"
  # Every connection the suite builds is freed before it ends: none may still be alive at exit
  # (a task or cycle keeping one would not count as a leak, being reachable).
  alive=$(grep -c "signalr_native::ffi::connection::Connection::new" "$log" || true)
  echo "  valgrind: stack frames of connection objects still alive at exit: $alive"
  [ "$alive" = 0 ] || failed+=("C suite (cdylib): a freed connection is still alive at exit (see $log)")
else
  "$out/c-tests-shared" "${filter[@]}" || failed+=("C suite (cdylib)")
fi

echo "== C API: C suite against the staticlib with AddressSanitizer + UBSan"
if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$out/c-tests-static-asan" "${filter[@]}"; then
  failed+=("C suite (staticlib, ASan+UBSan)")
fi

echo "== C API: C++17 RAII test${valgrind_cmd:+ under valgrind memcheck}"
if [ ${#valgrind_cmd[@]} -gt 0 ]; then
  "${valgrind_cmd[@]}" --log-file="$out/valgrind-cpp.log" "$out/cpp-raii" || failed+=("C++ RAII test (valgrind)")
  summarize_valgrind "$out/valgrind-cpp.log"
else
  "$out/cpp-raii" || failed+=("C++ RAII test")
fi

echo "== C API: examples/c/chat.c built with pkg-config and with find_package(signalr)"
export PKG_CONFIG_PATH="$lib_dir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046
cc -std=c11 "${warn[@]}" -pthread examples/c/chat.c $(pkg-config --cflags --libs signalr) \
   -Wl,-rpath,"$(pkg-config --variable=libdir signalr)" -o "$out/chat-pkgconfig" || failed+=("chat via pkg-config")
# shellcheck disable=SC2046
cc -std=c11 "${warn[@]}" -pthread examples/c/chat.c $(pkg-config --cflags --libs signalr-static) \
   -o "$out/chat-pkgconfig-static" || failed+=("chat via pkg-config (static)")
cmake -S examples/c -B "$out/cmake-chat" -DCMAKE_PREFIX_PATH="$lib_dir" -DCMAKE_C_FLAGS="${warn[*]}" >/dev/null \
  && cmake --build "$out/cmake-chat" >/dev/null || failed+=("chat via CMake find_package(signalr)")

coproc HUB { exec "$TEST_HUB_BIN" --port 0 --exit-on-stdin-eof; }
hub_pid=$HUB_PID
trap 'kill "$hub_pid" 2>/dev/null || true' EXIT
read -r hub_url <&"${HUB[0]}"
for chat in chat-pkgconfig chat-pkgconfig-static cmake-chat/chat cmake-chat/chat-static; do
  if [ -x "$out/$chat" ]; then
    echo "-- $chat --demo"
    "$out/$chat" --demo --name "$chat" "$hub_url/hub" || failed+=("$chat --demo")
  fi
done
"$out/chat-pkgconfig" --demo --messagepack --name mp "$hub_url/hub" || failed+=("chat --demo --messagepack")

if [ ${#failed[@]} -gt 0 ]; then
  printf 'test-c: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "test-c: all C API checks passed"
