// hello.cpp: the classic graph with rask.hpp, the C++17 wrapper of rask.
//
//     a = 1, x = 10, b = my_inc(a), y = my_inc(x), z = add(b, y)  -> 13
//
// `my_inc` is a C++ lambda registered as a task function (rask runs it on
// its threads); `add` is a rask builtin. Then the same work on a local
// cluster: a scheduler and two workers in this process, and a client.
//
// expect: z = 13
// expect: tasks run: 3 of 3
// expect: on the cluster: my_inc\(41\) = 42, sum of squares 0\.\.9 = 285

#include <cstdint>
#include <iostream>
#include <vector>

#include "rask.hpp"

int main() {
    try {
        rask::check_abi_version();

        rask::Registry registry;
        registry.add("my_inc", [](int64_t x) { return x + 1; });
        registry.add("square", [](int64_t x) { return x * x; });

        rask::Graph g;
        g.value("a", 1)
            .value("x", 10)
            .task("b", "my_inc", {rask::ref("a")})
            .task("y", "my_inc", {rask::ref("x")})
            .task("z", "add", {rask::ref("b"), rask::ref("y")});

        rask::ComputeStats stats{};
        std::vector<rask::Value> results = rask::compute(g, {"z"}, registry, {}, &stats);
        std::cout << "z = " << results[0].as_int() << "\n";
        std::cout << "tasks run: " << stats.tasks_run << " of " << stats.tasks << "\n";

        rask::ClusterOptions options;
        options.workers = 2;
        rask::Cluster cluster(options, registry);
        rask::Client client = cluster.client();

        rask::Future x = client.submit("my_inc", {41});
        std::vector<rask::Future> squares = client.map("square", std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        std::vector<rask::Arg> parts(squares.begin(), squares.end());
        rask::Future total = client.submit("sum", {rask::list(parts)});
        std::cout << "on the cluster: my_inc(41) = " << x.result<int64_t>()
                  << ", sum of squares 0..9 = " << total.result<int64_t>() << "\n";
        return 0;
    } catch (const rask::Error& e) {
        std::cerr << "rask error " << e.status_name() << ": " << e.what() << "\n";
        return 1;
    }
}
