// rask.hpp under C++20: the options structs take designated initializers,
// as docs/cpp.md shows (`rask::Cluster cluster({.workers = 2});`). Built
// with -std=c++20 -Wall -Wextra -Werror -pedantic when the compiler has it.
//
// expect: cluster of 2 workers: inc\(1\) = 2
// expect: 1 passed, 0 failed

#include <cstdint>
#include <iostream>

#include "rask.hpp"

int main() {
    using namespace std::chrono_literals;
    try {
        rask::Cluster cluster({.workers = 2, .timeout = 10s});
        rask::Client client = cluster.client();
        size_t workers = 0;
        client.wait_for_workers(2, 10s, &workers);
        rask::Future f = client.submit("inc", {1}, {.key = "inc-one"});
        int64_t v = f.result<int64_t>();
        std::cout << "cluster of " << workers << " workers: inc(1) = " << v << "\n";
        bool ok = v == 2 && f.key() == "inc-one";
        std::cout << (ok ? 1 : 0) << " passed, " << (ok ? 0 : 1) << " failed\n";
        return ok ? 0 : 1;
    } catch (const rask::Error& e) {
        std::cerr << e.status_name() << ": " << e.what() << "\n";
        return 1;
    }
}
