// Tests of rask.hpp, the C++17 wrapper: a small self-contained harness (no
// test framework to download). Each TEST runs in its own try block; an
// exception that escapes a test is a failure. The last line printed is
// "N passed, M failed"; the exit status is 0 only when M is 0.
//
// expect: [0-9]+ passed, 0 failed

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "rask.hpp"

using namespace std::chrono_literals;

// ------------------------------------------------------------------ harness

static int g_passed = 0;
static int g_failed = 0;

static void check(bool ok, const char* file, int line, const std::string& what) {
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        std::cerr << file << ":" << line << ": FAILED: " << what << "\n";
    }
}

template <class A, class B>
static void check_eq(const A& a, const B& b, const char* file, int line, const char* ea, const char* eb) {
    std::ostringstream os;
    bool ok = a == b;
    if (!ok) os << ea << " == " << eb << " (" << a << " vs " << b << ")";
    check(ok, file, line, os.str());
}

#define CHECK(cond) check(static_cast<bool>(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ(a, b) check_eq((a), (b), __FILE__, __LINE__, #a, #b)
// Runs `expr`, which must throw `Type` whose what() contains `substr`.
#define CHECK_THROWS(Type, expr, substr)                                                                      \
    do {                                                                                                      \
        bool caught_ = false;                                                                                 \
        std::string msg_;                                                                                     \
        try {                                                                                                 \
            (void)(expr);                                                                                     \
        } catch (const Type& e_) {                                                                            \
            caught_ = true;                                                                                   \
            msg_ = e_.what();                                                                                 \
        }                                                                                                     \
        check(caught_, __FILE__, __LINE__, #expr " throws " #Type);                                           \
        if (caught_)                                                                                          \
            check(msg_.find(substr) != std::string::npos, __FILE__, __LINE__,                                 \
                  std::string("message of " #expr " contains \"") + (substr) + "\": " + msg_);                \
    } while (0)

struct TestCase {
    const char* name;
    void (*fn)();
};
static std::vector<TestCase>& tests() {
    static std::vector<TestCase> t;
    return t;
}
struct Registrar {
    Registrar(const char* name, void (*fn)()) { tests().push_back({name, fn}); }
};
#define TEST(name)                                  \
    static void test_##name();                      \
    static Registrar registrar_##name(#name, test_##name); \
    static void test_##name()

// ------------------------------------------------------------------ values

TEST(version) {
    rask::check_abi_version();
    CHECK(!rask::version().empty());
}

TEST(scalar_roundtrip) {
    rask::Value t = true, f = false;
    CHECK(t.is_bool());
    CHECK_EQ(t.as_bool(), true);
    CHECK_EQ(f.to<bool>(), false);

    rask::Value i = -42;
    CHECK(i.kind() == rask::Kind::Int);
    CHECK_EQ(i.as_int(), -42);
    CHECK_EQ(i.to<int8_t>(), -42);
    CHECK_EQ(i.to<long long>(), -42LL);
    CHECK_THROWS(rask::TypeError, i.to<uint32_t>(), "");  // negative -> unsigned

    rask::Value big = std::numeric_limits<uint64_t>::max();
    CHECK(big.kind() == rask::Kind::UInt);
    CHECK_EQ(big.as_uint(), std::numeric_limits<uint64_t>::max());
    CHECK_THROWS(rask::TypeError, big.as_int(), "");

    rask::Value small_u = static_cast<uint16_t>(7);
    CHECK(small_u.kind() == rask::Kind::Int);  // <= INT64_MAX is an int
    CHECK_EQ(small_u.to<uint16_t>(), 7);

    rask::Value wide = 300;
    CHECK_THROWS(rask::TypeError, wide.to<int8_t>(), "does not fit in int8_t");

    rask::Value d = 2.5;
    CHECK(d.is_float());
    CHECK_EQ(d.as_double(), 2.5);
    CHECK_EQ(d.to<float>(), 2.5f);
    CHECK_EQ(i.as_double(), -42.0);  // any number reads as double
    CHECK_THROWS(rask::TypeError, d.as_int(), "");

    rask::Value n = nullptr;
    CHECK(n.is_nil());
    rask::Value n2 = rask::Value::nil();
    CHECK(n2.is_nil());
    CHECK_EQ(n2.repr(), std::string("nil"));
}

TEST(string_and_bytes_roundtrip) {
    rask::Value s = "héllo";
    CHECK(s.is_str());
    CHECK_EQ(s.as_string(), std::string("héllo"));
    CHECK_EQ(s.size(), std::string("héllo").size());

    std::string with_nul("a\0b", 3);
    rask::Value s2 = with_nul;
    CHECK_EQ(s2.as_string_view().size(), 3u);
    CHECK(s2.to<std::string>() == with_nul);

    rask::Value s3 = std::string_view("view");
    CHECK_EQ(s3.to<std::string_view>(), std::string_view("view"));
    CHECK_THROWS(rask::TypeError, s3.as_int(), "str");

    rask::Bytes raw = {0, 1, 2, 255};
    rask::Value b = raw;
    CHECK(b.is_bin());
    CHECK(b.as_bytes() == raw);
    CHECK(b.to<rask::Bytes>() == raw);
    CHECK_EQ(b.repr(), std::string("bin[4]"));
    CHECK_THROWS(rask::TypeError, b.as_string(), "");

    rask::Value empty = rask::Bytes{};
    CHECK(empty.is_bin());
    CHECK_EQ(empty.size(), 0u);
}

TEST(containers_roundtrip) {
    rask::Value a = std::vector<int64_t>{1, 2, 3};
    CHECK(a.is_array());
    CHECK_EQ(a.size(), 3u);
    CHECK_EQ(a[2].as_int(), 3);
    CHECK(a.to<std::vector<int>>() == (std::vector<int>{1, 2, 3}));
    CHECK(a.to<std::vector<double>>() == (std::vector<double>{1, 2, 3}));
    CHECK_THROWS(rask::Error, a[3], "");
    int64_t sum = 0;
    for (rask::ValueRef x : a) sum += x.as_int();
    CHECK_EQ(sum, 6);

    rask::Value nested = std::vector<std::vector<std::string>>{{"a", "b"}, {}, {"c"}};
    CHECK_EQ(nested.repr(), std::string("[[\"a\", \"b\"], [], [\"c\"]]"));
    auto back = nested.to<std::vector<std::vector<std::string>>>();
    CHECK_EQ(back.size(), 3u);
    CHECK_EQ(back[0][1], std::string("b"));

    rask::Value mixed = rask::Value::array({1, "two", 3.5, nullptr, true});
    CHECK_EQ(mixed.repr(), std::string("[1, \"two\", 3.5, nil, true]"));

    std::map<std::string, int> m = {{"a", 1}, {"b", 2}};
    rask::Value mv = m;
    CHECK(mv.is_map());
    CHECK_EQ(mv.size(), 2u);
    CHECK_EQ(mv.at("b").as_int(), 2);
    CHECK(!mv.find("zzz").has_value());
    CHECK_THROWS(rask::Error, mv.at("zzz"), "zzz");
    CHECK((mv.to<std::map<std::string, int>>() == m));
    CHECK_EQ(mv.repr(), std::string("{\"a\": 1, \"b\": 2}"));

    rask::Value built = rask::Value::map({{"x", 1}, {2, "y"}});
    CHECK_EQ(built.key_at(1).as_int(), 2);
    CHECK_EQ(built.value_at(1).as_string(), std::string("y"));
    auto entries = built.entries();
    CHECK_EQ(entries.size(), 2u);

    rask::Value pushed = rask::Value::array();
    pushed.push(1).push("x").push(std::vector<int>{});
    CHECK_EQ(pushed.repr(), std::string("[1, \"x\", []]"));
    CHECK_THROWS(rask::TypeError, rask::Value(5).push(1), "");

    // vectors of owned values: moved in, or cloned from a const vector
    std::vector<rask::Value> vals;
    vals.emplace_back(1);
    vals.emplace_back("s");
    const std::vector<rask::Value>& cref = vals;
    rask::Value copied = cref;
    rask::Value moved = std::move(vals);
    CHECK_EQ(copied.repr(), moved.repr());

    std::optional<int> none, some = 4;
    rask::Value vn = none, vs = some;
    CHECK(vn.is_nil());
    CHECK(!vn.to<std::optional<int>>().has_value());
    CHECK_EQ(*vs.to<std::optional<int>>(), 4);
}

TEST(tensor_without_a_copy) {
    std::vector<double> data(1 << 16);
    for (size_t i = 0; i < data.size(); i++) data[i] = double(i);
    const double* where = data.data();
    rask::Value v = rask::Value::tensor(std::move(data), {256, 256});  // taken over, not copied
    rask::TensorView view = v.as_tensor();
    CHECK(view.raw_data() == static_cast<const void*>(where));
    CHECK_EQ(view.shape()[0], 256u);
    CHECK_EQ(view.data<double>()[300], 300.0);
    rask::Value c = v.clone();
    v = rask::Value();  // the clone keeps the memory
    CHECK(c.as_tensor().raw_data() == static_cast<const void*>(where));
    CHECK_EQ(c.as_tensor().data<double>()[65535], 65535.0);
    // A shape that does not fit: an error, and the vector is freed (ASan/valgrind see it).
    CHECK_THROWS(rask::Error, rask::Value::tensor(std::vector<float>(10), {3, 3}), "40");
}

TEST(tensor_roundtrip) {
    rask::Tensor<double> t{{1, 2, 3, 4, 5, 6}, {2, 3}};
    rask::Value v = t;
    CHECK(v.is_tensor());
    CHECK_EQ(v.size(), 6u);
    CHECK_EQ(v.repr(), std::string("tensor<float64>[2, 3]"));
    rask::TensorView view = v.as_tensor();
    CHECK(view.dtype() == rask::Dtype::Float64);
    CHECK_EQ(view.ndim(), 2u);
    CHECK_EQ(view.shape()[1], 3u);
    CHECK_EQ(view.nbytes(), 48u);
    CHECK_EQ(view.data<double>()[4], 5.0);
    CHECK_THROWS(rask::TypeError, view.data<float>(), "float64");

    auto back = v.to<rask::Tensor<double>>();
    CHECK(back.data == t.data);
    CHECK(back.shape == t.shape);
    CHECK(v.to<std::vector<double>>() == t.data);  // flattened
    CHECK_THROWS(rask::TypeError, v.to<rask::Tensor<int32_t>>(), "");

    rask::Value i32 = rask::Value::tensor(std::vector<int32_t>{7, 8, 9});
    CHECK(i32.as_tensor().dtype() == rask::Dtype::Int32);
    CHECK_EQ(i32.as_tensor().shape()[0], 3u);
    CHECK(i32.to<std::vector<int32_t>>() == (std::vector<int32_t>{7, 8, 9}));

    uint8_t flags[2] = {1, 0};
    rask::Value bools = rask::Value::tensor(rask::Dtype::Bool, {2}, flags, 2);
    CHECK(bools.as_tensor().dtype() == rask::Dtype::Bool);

    CHECK_THROWS(rask::Error, rask::Value::tensor(rask::Dtype::Float64, {2, 2}, t.data.data(), 8), "");
}

TEST(msgpack_roundtrip) {
    rask::Value v = rask::Value::map({{"k", std::vector<int>{1, 2}}, {"t", rask::Tensor<float>{{1.5f}, {1}}}});
    rask::Bytes bytes = v.to_msgpack();
    CHECK(!bytes.empty());
    rask::Value back = rask::Value::from_msgpack(bytes);
    CHECK_EQ(back.repr(), v.repr());
    CHECK_THROWS(rask::Error, rask::Value::from_msgpack(rask::Bytes{0xc1}), "");
}

TEST(value_move_semantics) {
    rask::Value a = 5;
    rask::Value b = std::move(a);
    CHECK(!a.valid());  // NOLINT(bugprone-use-after-move): moved-from is defined here
    CHECK(a.is_nil());
    CHECK_EQ(b.as_int(), 5);
    a = rask::Value("again");  // a moved-from value can be assigned to
    CHECK_EQ(a.as_string(), std::string("again"));
    rask::Value c = b.clone();
    CHECK_EQ(c.as_int(), 5);
    rask::Value empty;
    rask::Value arr = rask::Value::array();
    arr.push(std::move(empty));  // an empty value is pushed as nil
    CHECK(arr[0].is_nil());
    rask_value* raw = c.release();
    CHECK(!c.valid());
    rask::Value adopt(raw);
    CHECK_EQ(adopt.as_int(), 5);
    static_assert(!std::is_copy_constructible_v<rask::Value>, "Value is move-only");
    static_assert(std::is_nothrow_move_constructible_v<rask::Value>, "Value moves without throwing");
}

// ------------------------------------------------------------------ graphs, lambdas, errors

static rask::Graph classic_graph(const char* inc = "inc") {
    rask::Graph g;
    g.value("a", 1)
        .value("x", 10)
        .task("b", inc, {rask::ref("a")})
        .task("y", inc, {rask::ref("x")})
        .task("z", "add", {rask::ref("b"), rask::ref("y")});
    return g;
}

TEST(classic_graph_builtins) {
    rask::Graph g = classic_graph();
    CHECK_EQ(g.size(), 5u);
    g.validate();
    std::vector<rask::Value> out = rask::compute(g, {"z", "b"});
    CHECK_EQ(out.size(), 2u);
    CHECK_EQ(out[0].as_int(), 13);
    CHECK_EQ(out[1].as_int(), 2);
    std::vector<std::string> keys = {"y"};
    CHECK_EQ(rask::compute(g, keys)[0].as_int(), 11);
}

TEST(lambdas_as_task_functions) {
    std::atomic<int> calls{0};
    rask::Registry reg;
    reg.add("my_inc", [&calls](int64_t x) {
        calls++;
        return x + 1;
    });
    // all arguments, any number
    reg.add("total", [](const rask::Args& args) {
        double s = 0;
        for (rask::ValueRef a : args) s += a.as_double();
        return s;
    });
    reg.add("greet", [](const std::string& who, int times) {
        std::string s;
        for (int i = 0; i < times; i++) s += "hi " + who + ";";
        return s;
    });
    reg.add("pair", [](rask::ValueRef a, rask::ValueRef b) { return rask::Value::array({a.clone(), b.clone()}); });
    reg.add("vec_len", [](const std::vector<int64_t>& v) { return v.size(); });
    reg.add("nothing", [](int64_t) {});
    reg.add("as_map", [](const std::string& k, int64_t v) { return std::map<std::string, int64_t>{{k, v}}; });
    CHECK(reg.contains("my_inc"));
    CHECK(reg.contains("add"));  // a builtin
    CHECK(!reg.contains("nope"));

    rask::Graph g = classic_graph("my_inc");
    g.task("t", "total", {rask::ref("a"), 2.5, rask::ref("z")})
        .task("g", "greet", {"bob", 2})
        .task("p", "pair", {rask::ref("a"), "s"})
        .task("n", "vec_len", {rask::list({1, 2, rask::ref("a")})})
        .task("v", "nothing", {7})
        .task("m", "as_map", {"k", rask::ref("z")});
    rask::ComputeOptions opts;
    opts.threads = 2;
    rask::ComputeStats stats{};
    auto out = rask::compute(g, {"z", "t", "g", "p", "n", "v", "m"}, reg, opts, &stats);
    CHECK_EQ(out[0].as_int(), 13);
    CHECK_EQ(calls.load(), 2);
    CHECK_EQ(out[1].as_double(), 16.5);
    CHECK_EQ(out[2].as_string(), std::string("hi bob;hi bob;"));
    CHECK_EQ(out[3].repr(), std::string("[1, \"s\"]"));
    CHECK_EQ(out[4].as_int(), 3);
    CHECK(out[5].is_nil());
    CHECK_EQ(out[6].at("k").as_int(), 13);
    CHECK_EQ(stats.tasks_run, 9u);  // b, y, z and the six above

    // a plain function pointer works too
    struct F {
        static int64_t twice(int64_t x) { return 2 * x; }
    };
    rask::Registry reg2;
    reg2.add("twice", &F::twice);
    rask::Graph g2;
    g2.value("a", 21).task("b", "twice", {rask::ref("a")});
    CHECK_EQ(rask::compute(g2, {"b"}, reg2)[0].as_int(), 42);
}

TEST(throwing_lambdas_fail_tasks) {
    rask::Registry reg;
    reg.add("boom", [](int64_t x) -> int64_t {
        if (x > 0) throw std::runtime_error("boom: x was " + std::to_string(x));
        return x;
    });
    reg.add("odd", [](int64_t) -> int64_t { throw 42; });
    reg.add("picky", [](int64_t) -> int64_t { throw rask::Error(RASK_ERR_INVALID_ARG, "picky says no"); });
    reg.add("one_arg", [](int64_t x) { return x; });

    rask::Graph g;
    g.value("a", 1)
        .value("s", "text")
        .task("b", "boom", {rask::ref("a")})
        .task("c", "add", {rask::ref("b"), 1})
        .task("d", "odd", {1})
        .task("e", "picky", {1})
        .task("f", "one_arg", {1, 2})
        .task("h", "one_arg", {rask::ref("s")});
    CHECK_THROWS(rask::TaskError, rask::compute(g, {"c"}, reg), "boom: x was 1");
    try {
        rask::compute(g, {"b"}, reg);
        CHECK(false);
    } catch (const rask::TaskError& e) {
        CHECK_EQ(e.status(), RASK_ERR_TASK_FAILED);
        CHECK_EQ(std::string(e.status_name()), std::string("RASK_ERR_TASK_FAILED"));
        CHECK(std::string(e.what()).find("'b'") != std::string::npos);  // names the task
    }
    CHECK_THROWS(rask::TaskError, rask::compute(g, {"d"}, reg), "unknown C++ exception");
    CHECK_THROWS(rask::TaskError, rask::compute(g, {"e"}, reg), "picky says no");
    CHECK_THROWS(rask::TaskError, rask::compute(g, {"f"}, reg), "expects 1 argument, got 2");
    CHECK_THROWS(rask::TaskError, rask::compute(g, {"h"}, reg), "args[0]: expected an int, the value is str");
    // the registry still works after all that
    g.task("ok", "one_arg", {5});
    CHECK_EQ(rask::compute(g, {"ok"}, reg)[0].as_int(), 5);
}

TEST(callable_is_deleted_with_its_last_user) {
    auto token = std::make_shared<int>(7);
    std::weak_ptr<int> watch = token;
    {
        rask::Registry reg;
        reg.add("peek", [token](int64_t x) { return x + *token; });
        token.reset();
        CHECK(!watch.expired());  // the registry holds the lambda
        rask::Graph g;
        g.value("a", 1).task("b", "peek", {rask::ref("a")});
        CHECK_EQ(rask::compute(g, {"b"}, reg)[0].as_int(), 8);
    }
    CHECK(watch.expired());  // drop_user_data deleted it

    // a failed registration deletes it too (before add() throws)
    auto token2 = std::make_shared<int>(1);
    std::weak_ptr<int> watch2 = token2;
    rask::Registry reg;
    CHECK_THROWS(rask::Error, reg.add("inc", [t = std::move(token2)](int64_t x) { return x; }), "inc");
    CHECK(watch2.expired());
    // move-only callables are fine
    auto owned = std::make_unique<int>(3);
    reg.add("plus3", [p = std::move(owned)](int64_t x) { return x + *p; });
    rask::Graph g;
    g.value("a", 1).task("b", "plus3", {rask::ref("a")});
    CHECK_EQ(rask::compute(g, {"b"}, reg)[0].as_int(), 4);
}

TEST(errors_are_exceptions_with_messages) {
    // a cycle
    rask::Graph cyc;
    cyc.task("p", "inc", {rask::ref("q")}).task("q", "inc", {rask::ref("p")});
    CHECK_THROWS(rask::GraphError, cyc.validate(), "'p' -> 'q'");
    CHECK_THROWS(rask::GraphError, rask::compute(cyc, {"p"}), "cycle");

    // a missing key: unknown output, and a missing reference
    rask::Graph g = classic_graph();
    CHECK_THROWS(rask::GraphError, rask::compute(g, {"nope"}), "nope");
    g.task("w", "inc", {rask::ref("missing")});
    CHECK_THROWS(rask::GraphError, rask::compute(g, {"w"}), "missing");

    // an unknown function
    rask::Graph u;
    u.value("a", 1).task("b", "no_such_fn", {rask::ref("a")});
    CHECK_THROWS(rask::UnknownFunctionError, rask::compute(u, {"b"}), "no_such_fn");

    // duplicate keys and bad names, caught when added; the graph is unchanged
    CHECK_THROWS(rask::GraphError, g.value("a", 2), "a");
    CHECK_THROWS(rask::GraphError, g.task("", "inc", {1}), "");
    CHECK_THROWS(rask::GraphError, g.task("k", "", {1}), "");
    CHECK_EQ(rask::compute(g, {"z"})[0].as_int(), 13);

    rask::Registry reg;
    reg.add_pulled("host_fn");
    CHECK_THROWS(rask::Error, reg.add_pulled("host_fn"), "host_fn");
    try {
        reg.add_pulled("");
        CHECK(false);
    } catch (const rask::Error& e) {
        CHECK_EQ(e.status(), RASK_ERR_REGISTRY);
    }
    // computing a pulled function with compute() is a state error
    rask::Graph p;
    p.value("a", 1).task("b", "host_fn", {rask::ref("a")});
    try {
        rask::compute(p, {"b"}, reg);
        CHECK(false);
    } catch (const rask::Error& e) {
        CHECK_EQ(e.status(), RASK_ERR_STATE);
    }
    // rask::Error is a std::runtime_error
    CHECK_THROWS(std::runtime_error, rask::compute(u, {"b"}), "no_such_fn");
}

TEST(args_lists_and_literals) {
    rask::Graph g;
    g.value("p0", 1).value("p1", 2);
    g.task("total", "sum", {rask::list({rask::ref("p0"), rask::ref("p1"), 5})});
    std::vector<rask::Arg> items = {rask::ref("p0"), 10};
    g.task("total2", "sum", {rask::list(items)});
    g.task("lit", "identity", {rask::Value::map({{"k", 1}})});
    rask::Value keep = std::vector<int>{4, 5};
    g.task("lit2", "len", {keep});  // an lvalue Value is copied
    CHECK_EQ(keep.size(), 2u);
    auto out = rask::compute(g, {"total", "total2", "lit", "lit2"});
    CHECK_EQ(out[0].as_int(), 8);
    CHECK_EQ(out[1].as_int(), 11);
    CHECK_EQ(out[2].at("k").as_int(), 1);
    CHECK_EQ(out[3].as_int(), 2);
}

TEST(handle_move_semantics) {
    rask::Graph g = classic_graph();
    rask::Graph g2 = std::move(g);
    CHECK(!g.valid());  // NOLINT(bugprone-use-after-move)
    CHECK_EQ(rask::compute(g2, {"z"})[0].as_int(), 13);
    g = std::move(g2);  // assign into a moved-from handle
    CHECK(g.valid());
    rask::Graph copy = g.clone();
    copy.value("extra", 0);
    CHECK_EQ(copy.size(), 6u);
    CHECK_EQ(g.size(), 5u);

    rask::Registry r;
    r.add("f", [](int64_t x) { return x; });
    rask::Registry r2 = std::move(r);
    CHECK(!r.valid());  // NOLINT(bugprone-use-after-move)
    CHECK(r2.contains("f"));
    r = rask::Registry();
    CHECK(!r.contains("f"));

    static_assert(!std::is_copy_constructible_v<rask::Graph>, "");
    static_assert(!std::is_copy_constructible_v<rask::Registry>, "");
    static_assert(!std::is_copy_constructible_v<rask::Computation>, "");
    static_assert(!std::is_copy_constructible_v<rask::Task>, "");
    static_assert(!std::is_copy_constructible_v<rask::Cluster>, "");
    static_assert(!std::is_copy_constructible_v<rask::Client>, "");
    static_assert(!std::is_copy_constructible_v<rask::AsCompleted>, "");
    static_assert(!std::is_copy_constructible_v<rask::Worker>, "");
    static_assert(std::is_copy_constructible_v<rask::Future>, "Future copies are references");
    static_assert(std::is_nothrow_move_constructible_v<rask::Graph>, "");
    static_assert(std::is_nothrow_move_constructible_v<rask::Future>, "");

    // moved-from handles of every kind are destroyed safely
    {
        rask::Future f;
        rask::Future f2 = std::move(f);
        rask::Task t;
        rask::Task t2 = std::move(t);
        rask::Graph gg;
        rask::Graph gg2 = std::move(gg);
        CHECK(!f2.valid());
        CHECK(!t2.valid());
        CHECK(f2.status() == rask::FutureStatus::Error);  // an empty future
    }
}

// ------------------------------------------------------------------ pull mode

static rask::Graph pulled_graph(int n) {
    rask::Graph g;
    std::vector<rask::Arg> parts;
    for (int i = 0; i < n; i++) {
        std::string key = "d-" + std::to_string(i);
        g.task(key, "host_double", {i});
        parts.push_back(rask::ref(key));
    }
    g.task("total", "sum", {rask::list(parts)});
    return g;
}

TEST(pull_mode_serve_on_two_threads) {
    rask::Registry reg;
    reg.add_pulled("host_double");
    rask::Graph g = pulled_graph(50);
    rask::Computation comp(g, {"total"}, reg);
    std::thread::id main_id = std::this_thread::get_id();
    std::atomic<int> off_main{0};
    rask::Functions fns = {{"host_double", [&](int64_t x) {
                                if (std::this_thread::get_id() != main_id) off_main++;
                                return 2 * x;
                            }}};
    size_t other = 0;
    std::thread t([&] { other = comp.serve(fns, 20ms); });
    size_t mine = comp.serve(fns, 20ms);
    t.join();
    CHECK_EQ(mine + other, 50u);
    CHECK_EQ(off_main.load(), static_cast<int>(other));
    comp.wait();
    CHECK(comp.done());
    CHECK_EQ(comp.results()[0].as_int(), 2450);
    CHECK_EQ(comp.results()[0].as_int(), 2450);  // again: fresh copies
    CHECK_EQ(comp.stats().tasks_run, 51u);
}

TEST(pull_mode_next_task_and_failures) {
    rask::Registry reg;
    reg.add_pulled("host_double");
    rask::Graph g = pulled_graph(3);
    {
        rask::Computation comp(g, {"total"}, reg);
        int seen = 0;
        while (std::optional<rask::Task> task = comp.next_task()) {
            CHECK_EQ(task->func(), std::string_view("host_double"));
            CHECK_EQ(task->key().substr(0, 2), std::string_view("d-"));
            CHECK_EQ(task->args().size(), 1u);
            int64_t x = task->arg(0).as_int();
            CHECK(task->complete(2 * x));
            CHECK(!task->valid());
            CHECK_THROWS(rask::Error, task->complete(1), "already ended");
            seen++;
        }
        CHECK_EQ(seen, 3);
        CHECK_EQ(comp.results()[0].as_int(), 6);
    }
    {
        // a failed task fails the computation with its message
        rask::Computation comp(g, {"total"}, reg);
        comp.serve([](rask::Task& t) {
            if (t.key() == "d-1") t.fail("host says no");
            else t.run([](int64_t x) { return 2 * x; });
        });
        CHECK_THROWS(rask::TaskError, comp.wait(), "host says no");
        CHECK_THROWS(rask::TaskError, comp.results(), "host says no");
    }
    {
        // an exception in Task::run becomes the failure; a dropped Task abandons its task
        rask::Computation comp(g, {"total"}, reg);
        std::optional<rask::Task> t = comp.next_task(5s);
        CHECK(t.has_value());
        t->run([](int64_t) -> int64_t { throw std::runtime_error("thrown on the host"); });
        CHECK_THROWS(rask::TaskError, comp.wait(), "thrown on the host");
    }
    {
        rask::Computation comp(g, {"total"}, reg);
        { std::optional<rask::Task> t = comp.next_task(5s); }  // destroyed unended
        CHECK_THROWS(rask::TaskError, comp.wait(), "");
    }
    {
        // cancel; a timeout is not an error
        rask::Computation comp(g, {"total"}, reg);
        CHECK(!comp.wait(10ms));
        comp.cancel();
        CHECK_THROWS(rask::CancelledError, comp.wait(), "");
        CHECK(!comp.next_task(10ms).has_value());
    }
    {
        // background computation without pulled functions
        rask::Computation comp(classic_graph(), {"z"}, nullptr);
        CHECK_EQ(comp.results()[0].as_int(), 13);
        rask::Computation moved = std::move(comp);
        CHECK(!comp.valid());  // NOLINT(bugprone-use-after-move)
        CHECK(moved.done());
    }
}

// ------------------------------------------------------------------ the distributed runtime

TEST(cluster_client) {
    rask::Registry reg;
    reg.add("square", [](int64_t x) { return x * x; });
    reg.add("join", [](const std::string& a, const std::string& b) { return a + "+" + b; });
    rask::ClusterOptions options{2};  // two workers (C++20: {.workers = 2})
    rask::Cluster cluster(options, reg);
    CHECK_EQ(cluster.address().rfind("tcp://127.0.0.1:", 0), 0u);
    rask::Client client = cluster.client();
    CHECK(client.wait_for_workers(2, 10s));
    CHECK_EQ(client.scheduler_address(), cluster.address());

    // submit, and futures as arguments
    rask::Future x = client.submit("inc", {1});
    CHECK_EQ(x.result<int64_t>(), 2);
    CHECK(x.status() == rask::FutureStatus::Finished);
    CHECK(x.done());
    CHECK(!x.key().empty());
    rask::Future y = client.submit("add", {x, 100});
    CHECK_EQ(y.result<int64_t>(), 102);
    std::optional<int64_t> quick = y.result<int64_t>(1s);
    CHECK(quick && *quick == 102);
    rask::Future same = client.submit("inc", {1});
    CHECK_EQ(same.key(), x.key());  // the same call is one task
    // ... in every language: the keys of tests/vectors/pure-keys.txt
    CHECK_EQ(x.key(), std::string_view("inc-1947b44a679fe4c234ac24d46ccbb2d0"));
    CHECK_EQ(client.submit("add", {2, 3}).key(), std::string_view("add-1c445a3a02b39b5ef50783175bde8c5d"));
    CHECK_EQ(client.submit("mul", {2.5, -1}).key(), std::string_view("mul-78af0688493ed884f7a1fafdf525a2b1"));
    CHECK_EQ(client.submit("len", {"abc"}).key(), std::string_view("len-1a8af0223c2b69788d6347cba7f21484"));
    CHECK_EQ(client.submit("add", {300, -200}).key(), std::string_view("add-e39f800594b49f8bee459e3a0444a0ae"));

    // a copy is another reference to the same key
    rask::Future x2 = x;
    CHECK_EQ(x2.key(), x.key());
    x = rask::Future();
    CHECK_EQ(x2.result<int64_t>(), 2);

    // map: one argument per call, and several
    std::vector<rask::Future> squares = client.map("square", std::vector<int>{0, 1, 2, 3, 4});
    CHECK((client.gather_as<int64_t>(squares) == std::vector<int64_t>{0, 1, 4, 9, 16}));
    std::vector<rask::Future> sums = client.map("add", {{1, 2}, {3, 4}});
    CHECK((client.gather_as<int>(sums) == std::vector<int>{3, 7}));
    std::vector<rask::Future> joined = client.map("join", {{"a", "b"}});
    CHECK_EQ(joined[0].result<std::string>(), std::string("a+b"));
    CHECK_THROWS(rask::Error, client.map("add", {{1, 2}, {3}}), "every call");

    // map_msgpack: every call's arguments in one buffer, the futures in one batch
    rask::Value calls = rask::Value::array({rask::Value::array({5}), rask::Value::array({6}), rask::Value::array({5})});
    rask::FutureBatch batch = client.map_msgpack("square", calls.to_msgpack());
    CHECK_EQ(batch.size(), 3u);
    std::vector<std::string> bkeys = batch.keys();
    CHECK_EQ(bkeys[0], bkeys[2]);  // the same call is one task
    CHECK_EQ(bkeys[0], std::string(client.submit("square", {5}).key()));
    rask::Value squared = batch.gather();
    CHECK_EQ(squared.size(), 3u);
    CHECK_EQ(squared[1].as_int(), 36);
    CHECK(batch.status()[1] == rask::FutureStatus::Finished);
    rask::Future third = batch.get(2);
    batch.release({2, 2});
    CHECK_EQ(third.result<int64_t>(), 25);  // a Future of its own outlives the entry
    CHECK_THROWS(rask::Error, batch.get(2), "released");
    CHECK_THROWS(rask::Error, batch.get(9), "out of range");
    rask::Value packed = rask::Value::from_msgpack(client.gather_msgpack({third, y}));
    CHECK_EQ(packed[0].as_int(), 25);
    CHECK_EQ(packed[1].as_int(), 102);

    // gather
    std::vector<rask::Value> got = client.gather({x2, y});
    CHECK_EQ(got[0].as_int(), 2);
    CHECK_EQ(got[1].as_int(), 102);
    auto maybe = client.gather({x2}, 5s);
    CHECK(maybe.has_value());

    // scatter
    std::vector<rask::Future> scattered = client.scatter({1000, "text"});
    CHECK_EQ(scattered.size(), 2u);
    rask::Future big = client.submit("add", {scattered[0], 5});
    CHECK_EQ(big.result<int64_t>(), 1005);
    CHECK_EQ(scattered[1].result<std::string>(), std::string("text"));
    std::vector<rask::Value> owned;
    owned.emplace_back(rask::Tensor<double>{{1, 2, 3}, {3}});
    std::vector<rask::Future> everywhere = client.scatter(std::move(owned), true);
    CHECK(everywhere[0].result().is_tensor());

    // a graph on the cluster
    rask::Graph g = classic_graph("square");
    std::vector<rask::Future> zs = client.compute(g, {"z"});
    CHECK_EQ(zs[0].result<int64_t>(), 101);
    CHECK_THROWS(rask::GraphError, client.compute(g, {"nope"}), "nope");

    // submit with a key of our own
    rask::SubmitOptions so;
    so.key = "my-key";
    rask::Future named = client.submit("inc", {41}, so);
    CHECK_EQ(named.key(), std::string_view("my-key"));
    CHECK_EQ(named.result<int64_t>(), 42);

    // wait
    std::vector<bool> done;
    CHECK(client.wait(squares, rask::WaitMode::AllCompleted, 10s, &done));
    CHECK(std::all_of(done.begin(), done.end(), [](bool b) { return b; }));
    CHECK(client.wait(squares, rask::WaitMode::FirstCompleted, 0ms));

    // a function no worker offers waits forever: timeouts are not errors
    rask::Future never = client.submit("offered_by_nobody", {1});
    CHECK(!never.result(50ms).has_value());
    CHECK(!client.gather({never}, 50ms).has_value());
    CHECK(!client.wait({never}, rask::WaitMode::AllCompleted, 20ms));
    client.cancel({never});
    CHECK(never.status() == rask::FutureStatus::Cancelled);
    CHECK_THROWS(rask::CancelledError, never.result(), "");
}

TEST(cluster_as_completed) {
    rask::Registry reg;
    reg.add("square", [](int64_t x) { return x * x; });
    rask::Cluster cluster(rask::ClusterOptions{2}, reg);
    rask::Client client = cluster.client();

    std::vector<rask::Future> squares = client.map("square", std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    rask::AsCompleted ac = client.as_completed(squares);
    CHECK_EQ(ac.count(), 10u);
    int yielded = 0, added = 0;
    int64_t sum_squares = 0, sum_incs = 0;
    for (rask::Future& f : ac) {
        yielded++;
        int64_t v = f.result<int64_t>();
        if (f.key().rfind("inc", 0) == 0) {
            sum_incs += v;
            continue;
        }
        sum_squares += v;
        if (v < 20) {  // add more work while iterating
            ac.add(client.submit("inc", {v}));
            added++;
        }
    }
    CHECK_EQ(yielded, 15);
    CHECK_EQ(added, 5);
    CHECK_EQ(sum_squares, 285);
    CHECK_EQ(sum_incs, 35);  // (0+1+4+9+16) + 5
    CHECK_EQ(ac.count(), 0u);
    CHECK(!ac.next(0ms).has_value());

    // next() with a timeout, and an iterator that starts empty
    rask::AsCompleted later = client.as_completed();
    CHECK(!later.next().has_value());  // nothing added: done at once
    later.add(squares[3]);
    std::optional<rask::Future> f = later.next(10s);
    CHECK(f.has_value() && f->result<int>() == 9);
}

TEST(remote_errors) {
    rask::Registry reg;
    reg.add("fragile", [](int64_t x) -> int64_t {
        if (x == 3) throw std::invalid_argument("fragile cannot take 3");
        return x;
    });
    rask::Cluster cluster(rask::ClusterOptions{1}, reg);
    rask::Client client = cluster.client();

    rask::Future ok = client.submit("fragile", {1});
    rask::Future bad = client.submit("fragile", {3});
    CHECK_EQ(ok.result<int64_t>(), 1);
    CHECK_THROWS(rask::TaskError, bad.result(), "fragile cannot take 3");
    try {
        bad.result();
    } catch (const rask::TaskError& e) {
        std::string m = e.what();
        CHECK(m.find(std::string(bad.key())) != std::string::npos);  // names the key
        CHECK(m.find("(fragile)") != std::string::npos);            // and the function
        CHECK(m.find("tcp://") != std::string::npos);               // and the worker
    }
    CHECK(bad.status() == rask::FutureStatus::Error);

    // a task depending on a failed one fails too, naming the dependency
    rask::Future dependent = client.submit("inc", {bad});
    CHECK_THROWS(rask::TaskError, dependent.result(), "because its dependency");
    CHECK_THROWS(rask::TaskError, client.gather({ok, dependent}), "fragile cannot take 3");
    // a wrong argument type on a worker
    rask::Future typed = client.submit("fragile", {"three"});
    CHECK_THROWS(rask::TaskError, typed.result(), "str");

    // futures outlive their client: calls fail cleanly
    rask::Future keep = client.submit("inc", {5});
    CHECK_EQ(keep.result<int>(), 6);
    client = rask::Client(nullptr);
    CHECK_THROWS(rask::Error, keep.result(), "");
}

TEST(dashboard_links) {
    rask::ClusterOptions co;
    co.workers = 1;
    co.dashboard_address = "127.0.0.1:0";
    rask::Cluster cluster(co);
    std::string link = cluster.dashboard_link();
    CHECK_EQ(link.rfind("http://127.0.0.1:", 0), 0u);
    CHECK(link.find(":0/") == std::string::npos);
    CHECK_EQ(link.substr(link.size() - 7), std::string("/status"));
    rask::Client client = cluster.client();
    CHECK_EQ(client.dashboard_link(), link);  // from the scheduler's welcome

    rask::SchedulerOptions so;
    so.no_dashboard = true;
    rask::Scheduler quiet(so);
    CHECK_EQ(quiet.dashboard_link(), std::string(""));
    CHECK_EQ(rask::Client::connect(quiet.address()).dashboard_link(), std::string(""));
    so.no_dashboard = false;
    so.dashboard_address = "127.0.0.1:0";
    rask::Scheduler watched(so);
    CHECK_EQ(watched.dashboard_link().rfind("http://127.0.0.1:", 0), 0u);
    so.dashboard_address = "nonsense";
    CHECK_THROWS(rask::Error, rask::Scheduler{so}, "dashboard address");
}

TEST(worker_pull_mode) {
    rask::Cluster cluster(rask::ClusterOptions{1});
    rask::Registry reg;
    reg.add_pulled("host_label");
    reg.add("cpp_cube", [](int64_t x) { return x * x * x; });
    rask::WorkerOptions wo;
    wo.name = "cpp-worker";
    wo.threads = 1;
    rask::Worker worker(cluster.address(), reg, wo);
    CHECK_EQ(worker.name(), std::string("cpp-worker"));
    CHECK_EQ(worker.address().rfind("tcp://", 0), 0u);
    CHECK(!worker.stopped());
    CHECK(!worker.wait(0ms));

    std::thread host([&] {
        worker.serve(rask::Functions{{"host_label", [](int64_t x) { return "label-" + std::to_string(x); }}}, 20ms);
    });
    rask::Client client = cluster.client();
    rask::Future cube = client.submit("cpp_cube", {3});
    rask::Future label = client.submit("host_label", {cube});
    CHECK_EQ(label.result<std::string>(), std::string("label-27"));

    worker.stop();
    host.join();
    CHECK(worker.stopped());
    CHECK(worker.wait(1s));
    CHECK(worker.stop_reason().has_value());
}

TEST(worker_batches) {
    rask::Cluster cluster(rask::ClusterOptions{1});
    rask::Registry reg;
    reg.add_pulled("host_double");
    rask::Worker worker(cluster.address(), reg);
    rask::Client client = cluster.client();
    std::vector<rask::Future> fs;
    for (int64_t i = 0; i < 10; i++) fs.push_back(client.submit("host_double", {i}));
    size_t done = 0;
    bool detached = false;
    while (done < fs.size()) {
        std::optional<rask::Bytes> batch = worker.take_tasks(4, 30s);
        CHECK(batch.has_value());
        if (!batch) break;
        rask::Value tasks = rask::Value::from_msgpack(*batch);
        CHECK(tasks.size() >= 1 && tasks.size() <= 4);
        rask::Value results = rask::Value::array();
        for (size_t i = 0; i < tasks.size(); i++) {
            rask::ValueRef t = tasks.at(i);
            int64_t id = t.at(0).as_int();
            int64_t x = t.at(3).at(0).as_int();
            done++;
            if (!detached) {  // one through its own Task handle
                detached = true;
                rask::Task task = worker.detach_task(static_cast<uint64_t>(id));
                task.complete(rask::Value::integer(2 * x));
                continue;
            }
            results.push(rask::Value::array({rask::Value::integer(id), rask::Value::boolean(true), rask::Value::integer(2 * x)}));
        }
        CHECK(worker.complete_tasks(results.to_msgpack()));
    }
    for (size_t i = 0; i < fs.size(); i++) CHECK_EQ(fs[i].result<int64_t>(), static_cast<int64_t>(2 * i));
    CHECK_THROWS(rask::Error, worker.complete_tasks(rask::Bytes{0xc1}), "results");
    CHECK_THROWS(rask::Error, worker.detach_task(12345), "12345");
    CHECK(!worker.take_tasks(4, 0ms).has_value());
}

// fib with one task per call: each call submits its two calls through its
// worker's client and secedes while it waits (1 worker, 1 thread).
static int64_t cpp_fib(int64_t n) {
    if (n < 2) return n;
    rask::Client c = rask::callback_client();
    rask::SubmitOptions o;
    o.impure = true;
    rask::Future a = c.submit("cpp_fib", {n - 1}, o);
    rask::Future b = c.submit("cpp_fib", {n - 2}, o);
    rask::callback_secede();
    int64_t r = a.result<int64_t>() + b.result<int64_t>();
    rask::callback_rejoin();
    return r;
}

TEST(tasks_that_submit_tasks) {
    CHECK_THROWS(rask::Error, rask::callback_client(), "not inside a C callback");
    CHECK_THROWS(rask::Error, rask::callback_secede(), "not inside a C callback");
    rask::Cluster cluster(rask::ClusterOptions{1});
    rask::Registry reg;
    reg.add("cpp_fib", cpp_fib);
    reg.add_pulled("host_parent");
    rask::WorkerOptions wo;
    wo.threads = 1;
    rask::Worker worker(cluster.address(), reg, wo);
    rask::Client client = cluster.client();
    rask::SubmitOptions o;
    o.impure = true;
    CHECK_EQ(client.submit("cpp_fib", {15}, o).result<int64_t>(), 610);
    // A pulled task: its client, a child, secede.
    rask::Future p = client.submit("host_parent", {10});
    std::optional<rask::Task> t = worker.next_task();
    CHECK(t.has_value());
    rask::Client tc = t->client();
    rask::Future child = tc.submit("cpp_fib", {t->arg(0).as_int()}, o);
    CHECK(t->secede());
    int64_t r = child.result<int64_t>();
    CHECK_EQ(r, 55);
    t->complete(r + 1);
    CHECK_EQ(p.result<int64_t>(), 56);
}

TEST(worker_retire_hands_results_on) {
    rask::Cluster cluster(rask::ClusterOptions{1});
    rask::Registry reg;
    reg.add_pulled("host_label");
    rask::Worker worker(cluster.address(), reg, rask::WorkerOptions{});
    std::thread host([&] {
        worker.serve(rask::Functions{{"host_label", [](int64_t x) { return "label-" + std::to_string(x); }}}, 20ms);
    });
    rask::Client client = cluster.client();
    rask::Future label = client.submit("host_label", {4});
    CHECK_EQ(label.result<std::string>(), std::string("label-4"));
    worker.retire();
    worker.retire();  // again: nothing
    host.join();      // serve returns once the scheduler closed the worker
    CHECK(worker.stopped());
    CHECK(worker.wait(1s));
    // The result moved to the cluster's worker: a builtin there reads it
    // (lost, it could not be made again: nobody serves host_label now).
    rask::Future copy = client.submit("identity", {label});
    CHECK_EQ(copy.result<std::string>(), std::string("label-4"));
}

// replicate and rebalance: every result of cpp_label lands on the only
// worker that offers it; rebalance spreads them, replicate copies them.
TEST(replicate_and_rebalance) {
    rask::Cluster cluster(rask::ClusterOptions{1});
    rask::Registry reg;
    reg.add("cpp_label", [](int64_t x) { return "label-" + std::to_string(x); });
    rask::Worker worker(cluster.address(), reg, rask::WorkerOptions{});
    rask::Client client = cluster.client();
    CHECK(client.wait_for_workers(2, 10s));
    std::vector<rask::Future> fs;
    for (int64_t i = 0; i < 6; i++) fs.push_back(client.submit("cpp_label", {i}));
    // rebalance waits for the futures first.
    std::optional<rask::RebalanceReport> moved = client.rebalance(fs, 30s);
    CHECK(moved.has_value());
    if (moved) {
        CHECK(moved->moved >= 2);
        CHECK(moved->bytes > 0);
    }
    std::optional<rask::RebalanceReport> again = client.rebalance({}, 30s);
    CHECK(again.has_value() && again->moved == 0);  // balanced now
    std::vector<rask::Future> two{fs[0], fs[1]};
    std::optional<rask::ReplicateReport> rep = client.replicate(two, 2, 30s);
    CHECK(rep.has_value() && rep->short_keys == 0);
    rep = client.replicate(two, 2, 30s);  // both workers hold them already
    CHECK(rep.has_value() && rep->copied == 0 && rep->short_keys == 0);
    std::vector<rask::Value> got = client.gather(fs);
    for (size_t i = 0; i < got.size(); i++) CHECK_EQ(got[i].as_string(), "label-" + std::to_string(i));
    CHECK_THROWS(rask::Error, client.replicate(two, 0), "n must be");
    rask::Future gone = client.submit("cpp_label", {99});
    client.cancel({gone});
    CHECK_THROWS(rask::Error, client.rebalance({gone}), "");
}

TEST(scheduler_and_connect) {
    rask::Scheduler scheduler;
    CHECK_EQ(scheduler.address().rfind("tcp://127.0.0.1:", 0), 0u);
    rask::Worker worker(scheduler.address());
    rask::ClientOptions co;
    co.name = "cpp-test";
    rask::Client client = rask::Client::connect(scheduler.address(), co);
    CHECK(client.wait_for_workers(1, 10s));
    CHECK_EQ(client.submit("inc", {9}).result<int>(), 10);
    rask::ClientOptions quick;
    quick.timeout = 2s;
    CHECK_THROWS(rask::ConnectionError, rask::Client::connect("tcp://127.0.0.1:1", quick), "");
}

// The TLS fields reach rask: only some of the three, or a file that does
// not exist, is an invalid argument naming what is wrong; a tls:// address
// without them is a connection error saying so. (tests/tls.rs, the Python
// and the Julia suites run clusters over TLS with real certificates.)
TEST(tls_options) {
    rask::SchedulerOptions partial;
    partial.tls_ca_file = "ca.pem";
    CHECK_THROWS(rask::Error, rask::Scheduler{partial}, "missing: certificate file, key file");
    rask::ClientOptions missing;
    missing.tls_ca_file = "/nonexistent/ca.pem";
    missing.tls_cert_file = "/nonexistent/cert.pem";
    missing.tls_key_file = "/nonexistent/key.pem";
    CHECK_THROWS(rask::Error, rask::Client::connect("tls://127.0.0.1:1", missing), "/nonexistent/ca.pem");
    rask::ClusterOptions cluster_partial{1};
    cluster_partial.tls_key_file = "key.pem";
    CHECK_THROWS(rask::Error, rask::Cluster{cluster_partial}, "missing: CA file, certificate file");
    rask::Scheduler plain;
    rask::WorkerOptions worker_partial;
    worker_partial.tls_cert_file = "cert.pem";
    CHECK_THROWS(rask::Error, rask::Worker(plain.address(), worker_partial), "missing: CA file, key file");
    std::string tls_address = "tls://" + plain.address().substr(6);
    CHECK_THROWS(rask::ConnectionError, rask::Client::connect(tls_address), "no TLS configuration");
}

// ------------------------------------------------------------------ main

TEST(coordination_objects) {
    rask::Cluster cluster(rask::ClusterOptions{1});
    rask::Client a = cluster.client();
    rask::Client b = cluster.client();
    // A queue carries values and futures; a full put and an empty get time out naming the queue.
    a.queue_create("q", 2);
    a.queue_put("q", rask::Value(int64_t(1)));
    {
        rask::Future f = a.submit("inc", {41});
        a.queue_put("q", f);
    }  // released here: the queue keeps its key alive
    CHECK_THROWS(rask::Error, a.queue_put("q", rask::Value(int64_t(3)), std::chrono::milliseconds(20)),
                 "queue 'q' is full (maxsize 2)");
    CHECK_EQ(b.queue_size("q"), uint64_t(2));
    rask::Item first = b.queue_get("q");
    CHECK(std::get<rask::Value>(first).to<int64_t>() == 1);
    rask::Item second = b.queue_get("q");
    CHECK(std::get<rask::Future>(second).result<int64_t>() == 42);
    CHECK_THROWS(rask::Error, b.queue_get("q", std::chrono::milliseconds(10)), "queue 'q': nothing to get");
    // Variables, events, locks.
    CHECK_THROWS(rask::Error, b.variable_get("stop", std::chrono::milliseconds(0)), "variable 'stop'");
    a.variable_set("stop", rask::Value(true));
    CHECK(std::get<rask::Value>(b.variable_get("stop")).to<bool>());
    a.variable_delete("stop");
    CHECK(!b.event_wait("go", std::chrono::milliseconds(0)));
    a.event_set("go");
    CHECK(b.event_wait("go"));
    a.event_clear("go");
    std::optional<uint64_t> lease = a.lease_acquire("L");
    CHECK(lease.has_value());
    CHECK(!b.lease_acquire("L", 1, std::chrono::milliseconds(0)).has_value());
    a.lease_release("L", *lease);
    // Datasets outlive their publisher; topics deliver to subscribers.
    {
        rask::Client p = cluster.client();
        p.publish_dataset("two", p.submit("inc", {1}));
    }
    CHECK(b.list_datasets() == std::vector<std::string>{"two"});
    CHECK(std::get<rask::Future>(b.get_dataset("two")).result<int64_t>() == 2);
    b.unpublish_dataset("two");
    rask::Subscription sub = b.subscribe("news");
    a.publish("news", rask::Value(int64_t(5)));
    std::optional<rask::Value> got = sub.get(std::chrono::milliseconds(20000));
    CHECK(got.has_value() && got->to<int64_t>() == 5);
    CHECK(!sub.get(std::chrono::milliseconds(0)).has_value());
    a.fire_and_forget({a.submit("inc", {7})});
}

int main() {
    for (const TestCase& t : tests()) {
        int before = g_failed;
        try {
            t.fn();
        } catch (const rask::Error& e) {
            g_failed++;
            std::cerr << t.name << ": unexpected rask::Error " << e.status_name() << ": " << e.what() << "\n";
        } catch (const std::exception& e) {
            g_failed++;
            std::cerr << t.name << ": unexpected exception: " << e.what() << "\n";
        }
        std::cout << (g_failed == before ? "ok     " : "FAILED ") << t.name << std::endl;
    }
    std::cout << g_passed << " passed, " << g_failed << " failed" << std::endl;
    return g_failed == 0 ? 0 : 1;
}
