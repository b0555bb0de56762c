// rask.hpp: a header-only C++17 wrapper over the rask C API (rask.h).
//
//   #include <rask.hpp>           // link with librask (CMake: Rask::rask)
//
//   rask::Registry reg;
//   reg.add("my_inc", [](int64_t x) { return x + 1; });  // a lambda as a task function
//   rask::Graph g;
//   g.value("a", 1).value("x", 10)
//    .task("b", "my_inc", {rask::ref("a")})
//    .task("y", "my_inc", {rask::ref("x")})
//    .task("z", "add", {rask::ref("b"), rask::ref("y")});
//   int64_t z = rask::compute(g, {"z"}, reg)[0].as_int();   // 13
//
// What it adds to the C API (docs/cpp.md has the full story):
//  - Every handle is a move-only class that frees its handle in its
//    destructor (Value, Graph, Registry, Computation, Task, Scheduler,
//    Cluster, Client, AsCompleted, Worker). A moved-from object holds no
//    handle and is safe to destroy or assign to. Future is also copyable:
//    a copy is another reference to the same key (rask_future_clone).
//  - Failures throw rask::Error (a std::runtime_error with status() and
//    rask's message), or the subclass of its status: TypeError, GraphError,
//    UnknownFunctionError, TaskError, CancelledError, ConnectionError.
//    RASK_TIMEOUT and RASK_DONE are not errors: calls that can time out
//    return std::optional or bool instead.
//  - Any callable is a task function. Its C++ exceptions are caught inside
//    the C callback and become task failures with what() as the message;
//    they never cross into rask.
//
// Thread safety is the C API's: a Graph or Registry must not be changed by
// two threads at once; Computation, Client, Future, AsCompleted and Worker
// may be used from many threads at once (their destructor last).
//
// SPDX-License-Identifier: MIT OR Apache-2.0

#ifndef RASK_HPP
#define RASK_HPP

#include "rask.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace rask {

// ===================================================================== errors

// Why a call failed: the rask_status and rask's message (what()).
class Error : public std::runtime_error {
public:
    Error(rask_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    rask_status status() const noexcept { return status_; }
    // "RASK_ERR_GRAPH", ...
    const char* status_name() const noexcept { return rask_status_name(static_cast<int>(status_)); }

private:
    rask_status status_;
};

// RASK_ERR_TYPE: a value of the wrong kind, or a number that does not fit.
class TypeError : public Error {
public:
    using Error::Error;
};
// RASK_ERR_GRAPH: a cycle, a missing, duplicate or empty key; the message names the keys.
class GraphError : public Error {
public:
    using Error::Error;
};
// RASK_ERR_UNKNOWN_FUNCTION: a task names a function nobody provides.
class UnknownFunctionError : public Error {
public:
    using Error::Error;
};
// RASK_ERR_TASK_FAILED: a task's function failed (locally or on a worker);
// the message names the task, its function and the function's own message.
class TaskError : public Error {
public:
    using Error::Error;
};
// RASK_ERR_CANCELLED: the computation or future was cancelled.
class CancelledError : public Error {
public:
    using Error::Error;
};
// RASK_ERR_CONNECTION: connecting or listening failed, or a connection was lost.
class ConnectionError : public Error {
public:
    using Error::Error;
};

// The version of librask, e.g. "0.1.0".
inline std::string version() { return rask_version_string(); }

// Throws rask::Error if the library's ABI is not the one this header was written for.
inline void check_abi_version() {
    if (rask_abi_version() != RASK_ABI_VERSION) {
        throw Error(RASK_ERR_STATE, "librask has ABI version " + std::to_string(rask_abi_version()) +
                                        ", rask.h has " + std::to_string(RASK_ABI_VERSION));
    }
}

namespace detail {

[[noreturn]] inline void raise(rask_status status, std::string message) {
    if (message.empty()) message = rask_status_name(static_cast<int>(status));
    switch (status) {
        case RASK_ERR_TYPE: throw TypeError(status, message);
        case RASK_ERR_GRAPH: throw GraphError(status, message);
        case RASK_ERR_UNKNOWN_FUNCTION: throw UnknownFunctionError(status, message);
        case RASK_ERR_TASK_FAILED: throw TaskError(status, message);
        case RASK_ERR_CANCELLED: throw CancelledError(status, message);
        case RASK_ERR_CONNECTION: throw ConnectionError(status, message);
        default: throw Error(status, message);
    }
}

// The `rask_error **err` of one call: frees the error whatever happens.
class ErrorSlot {
public:
    ErrorSlot() = default;
    ErrorSlot(const ErrorSlot&) = delete;
    ErrorSlot& operator=(const ErrorSlot&) = delete;
    ~ErrorSlot() { rask_error_free(err_); }
    rask_error** out() noexcept { return &err_; }
    [[noreturn]] void raise(rask_status status) {
        std::string message = err_ ? rask_error_message(err_) : "";
        detail::raise(status, std::move(message));
    }
    // Throws for every status but RASK_OK.
    void check(rask_status status) {
        if (status != RASK_OK) raise(status);
    }

private:
    rask_error* err_ = nullptr;
};

template <class T>
T* not_null(T* p, const char* what) {
    if (!p) raise(RASK_ERR_PANIC, std::string(what) + " returned NULL (rask panicked)");
    return p;
}

inline int64_t to_ms(std::chrono::milliseconds t) { return t.count(); }  // rep is a 64-bit integer

}  // namespace detail

// A timeout that never ends.
inline constexpr std::chrono::milliseconds forever{-1};

// ===================================================================== enums

enum class Kind : int {
    Nil = RASK_KIND_NIL,
    Bool = RASK_KIND_BOOL,
    Int = RASK_KIND_INT,
    UInt = RASK_KIND_UINT,
    Float = RASK_KIND_FLOAT,
    Str = RASK_KIND_STR,
    Bin = RASK_KIND_BIN,
    Array = RASK_KIND_ARRAY,
    Map = RASK_KIND_MAP,
    Tensor = RASK_KIND_TENSOR,
};

enum class Dtype : int {
    Bool = RASK_DTYPE_BOOL,
    Int8 = RASK_DTYPE_INT8,
    Int16 = RASK_DTYPE_INT16,
    Int32 = RASK_DTYPE_INT32,
    Int64 = RASK_DTYPE_INT64,
    UInt8 = RASK_DTYPE_UINT8,
    UInt16 = RASK_DTYPE_UINT16,
    UInt32 = RASK_DTYPE_UINT32,
    UInt64 = RASK_DTYPE_UINT64,
    Float32 = RASK_DTYPE_FLOAT32,
    Float64 = RASK_DTYPE_FLOAT64,
};

inline const char* kind_name(Kind k) noexcept {
    switch (k) {
        case Kind::Nil: return "nil";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::UInt: return "uint";
        case Kind::Float: return "float";
        case Kind::Str: return "str";
        case Kind::Bin: return "bin";
        case Kind::Array: return "array";
        case Kind::Map: return "map";
        case Kind::Tensor: return "tensor";
    }
    return "?";
}

inline const char* dtype_name(Dtype d) noexcept {
    switch (d) {
        case Dtype::Bool: return "bool";
        case Dtype::Int8: return "int8";
        case Dtype::Int16: return "int16";
        case Dtype::Int32: return "int32";
        case Dtype::Int64: return "int64";
        case Dtype::UInt8: return "uint8";
        case Dtype::UInt16: return "uint16";
        case Dtype::UInt32: return "uint32";
        case Dtype::UInt64: return "uint64";
        case Dtype::Float32: return "float32";
        case Dtype::Float64: return "float64";
    }
    return "?";
}

// The tensor dtype of an arithmetic C++ type: dtype_of<double>::value == Dtype::Float64.
template <class T, class = void>
struct dtype_of {};
template <>
struct dtype_of<bool> {
    static constexpr Dtype value = Dtype::Bool;
};
template <class T>
struct dtype_of<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                    !std::is_same_v<T, char>>> {
    static constexpr Dtype value =
        std::is_signed_v<T>
            ? (sizeof(T) == 1 ? Dtype::Int8 : sizeof(T) == 2 ? Dtype::Int16 : sizeof(T) == 4 ? Dtype::Int32 : Dtype::Int64)
            : (sizeof(T) == 1 ? Dtype::UInt8 : sizeof(T) == 2 ? Dtype::UInt16 : sizeof(T) == 4 ? Dtype::UInt32 : Dtype::UInt64);
};
template <>
struct dtype_of<float> {
    static constexpr Dtype value = Dtype::Float32;
};
template <>
struct dtype_of<double> {
    static constexpr Dtype value = Dtype::Float64;
};

// ===================================================================== small views

// A read-only view of `size()` contiguous elements (std::span is C++20).
template <class T>
class Span {
public:
    Span() = default;
    Span(const T* data, size_t size) : data_(data), size_(size) {}
    const T* data() const noexcept { return data_; }
    size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const T* begin() const noexcept { return data_; }
    const T* end() const noexcept { return data_ + size_; }
    const T& operator[](size_t i) const {
        if (i >= size_) throw Error(RASK_ERR_INVALID_ARG, "index " + std::to_string(i) + " out of range (size " + std::to_string(size_) + ")");
        return data_[i];
    }
    std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

private:
    const T* data_ = nullptr;
    size_t size_ = 0;
};

// A tensor's contents, borrowed from its value (valid while the value lives).
class TensorView {
public:
    TensorView(Dtype dtype, Span<size_t> shape, const void* data, size_t nbytes)
        : dtype_(dtype), shape_(shape), data_(data), nbytes_(nbytes) {}
    Dtype dtype() const noexcept { return dtype_; }
    Span<size_t> shape() const noexcept { return shape_; }
    size_t ndim() const noexcept { return shape_.size(); }
    // The number of elements (1 for a 0-dimensional tensor).
    size_t size() const noexcept {
        size_t n = 1;
        for (size_t d : shape_) n *= d;
        return n;
    }
    const void* raw_data() const noexcept { return data_; }
    size_t nbytes() const noexcept { return nbytes_; }
    // The row-major elements as T; throws TypeError unless T is the dtype's type.
    template <class T>
    Span<T> data() const {
        if (dtype_of<T>::value != dtype_) {
            throw TypeError(RASK_ERR_TYPE, std::string("tensor of ") + dtype_name(dtype_) + " read as " +
                                               dtype_name(dtype_of<T>::value));
        }
        return Span<T>(static_cast<const T*>(data_), nbytes_ / sizeof(T));
    }

private:
    Dtype dtype_;
    Span<size_t> shape_;
    const void* data_;
    size_t nbytes_;
};

// An owned tensor: row-major elements and a shape. Converts to and from Value
// (`Value v = rask::Tensor<double>{{1, 2, 3, 4, 5, 6}, {2, 3}};`,
// `v.to<rask::Tensor<double>>()`). bool tensors: use Tensor<uint8_t> data
// with Value::tensor(Dtype::Bool, ...), or TensorView.
template <class T>
struct Tensor {
    static_assert(!std::is_same_v<T, bool>, "rask::Tensor<bool> is not supported (std::vector<bool> is packed)");
    std::vector<T> data;
    std::vector<size_t> shape;
    size_t size() const noexcept { return data.size(); }
};

// Raw bytes: a msgpack bin value.
using Bytes = std::vector<uint8_t>;

// ===================================================================== values

class Value;
class ValueRef;

// How a C++ type becomes a Value (`static Value to_value(const T&)`) and is
// read from one (`static T from(ValueRef)`). Specialise it for your own types.
template <class T, class = void>
struct Convert {};

namespace detail {
template <class T, class = void>
struct has_to_value : std::false_type {};
template <class T>
struct has_to_value<T, std::void_t<decltype(Convert<T>::to_value(std::declval<const T&>()))>> : std::true_type {};
template <class T, class = void>
struct has_from : std::false_type {};
template <class T>
struct has_from<T, std::void_t<decltype(Convert<T>::from(std::declval<ValueRef>()))>> : std::true_type {};
}  // namespace detail

class ArrayIterator;

// What Value (owned) and ValueRef (borrowed) can both do: read a value.
template <class D>
class ValueReader {
public:
    Kind kind() const noexcept { return static_cast<Kind>(rask_value_kind(p())); }
    bool is_nil() const noexcept { return kind() == Kind::Nil; }
    bool is_bool() const noexcept { return kind() == Kind::Bool; }
    // An int or a uint.
    bool is_int() const noexcept { return kind() == Kind::Int || kind() == Kind::UInt; }
    bool is_float() const noexcept { return kind() == Kind::Float; }
    bool is_str() const noexcept { return kind() == Kind::Str; }
    bool is_bin() const noexcept { return kind() == Kind::Bin; }
    bool is_array() const noexcept { return kind() == Kind::Array; }
    bool is_map() const noexcept { return kind() == Kind::Map; }
    bool is_tensor() const noexcept { return kind() == Kind::Tensor; }

    // The scalar getters throw TypeError for another kind (as_double reads any number).
    bool as_bool() const {
        bool out = false;
        detail::ErrorSlot err;
        err.check(rask_value_get_bool(p(), &out, err.out()));
        return out;
    }
    int64_t as_int() const {
        int64_t out = 0;
        detail::ErrorSlot err;
        err.check(rask_value_get_int(p(), &out, err.out()));
        return out;
    }
    uint64_t as_uint() const {
        uint64_t out = 0;
        detail::ErrorSlot err;
        err.check(rask_value_get_uint(p(), &out, err.out()));
        return out;
    }
    double as_double() const {
        double out = 0;
        detail::ErrorSlot err;
        err.check(rask_value_get_float(p(), &out, err.out()));
        return out;
    }
    // Borrowed from the value: valid while it lives.
    std::string_view as_string_view() const {
        const char* s = nullptr;
        size_t n = 0;
        detail::ErrorSlot err;
        err.check(rask_value_get_str(p(), &s, &n, err.out()));
        return std::string_view(s, n);
    }
    std::string as_string() const { return std::string(as_string_view()); }
    // Borrowed from the value: valid while it lives.
    Span<uint8_t> as_bytes_view() const {
        const uint8_t* d = nullptr;
        size_t n = 0;
        detail::ErrorSlot err;
        err.check(rask_value_get_bytes(p(), &d, &n, err.out()));
        return Span<uint8_t>(d, n);
    }
    Bytes as_bytes() const { return as_bytes_view().to_vector(); }
    // Borrowed from the value: valid while it lives.
    TensorView as_tensor() const {
        rask_dtype dtype = RASK_DTYPE_BOOL;
        size_t ndim = 0, nbytes = 0;
        const size_t* shape = nullptr;
        const void* data = nullptr;
        detail::ErrorSlot err;
        err.check(rask_value_tensor_info(p(), &dtype, &ndim, &shape, &data, &nbytes, err.out()));
        return TensorView(static_cast<Dtype>(dtype), Span<size_t>(shape, ndim), data, nbytes);
    }

    // Elements of an array, entries of a map, bytes of a str or bin, elements
    // of a tensor; TypeError for scalars.
    size_t size() const {
        size_t n = 0;
        detail::ErrorSlot err;
        err.check(rask_value_len(p(), &n, err.out()));
        return n;
    }
    // Element i of an array (bounds-checked: rask::Error otherwise), borrowed.
    ValueRef operator[](size_t i) const;
    ValueRef at(size_t i) const;
    // The key / value of entry i of a map, borrowed.
    ValueRef key_at(size_t i) const;
    ValueRef value_at(size_t i) const;
    // The value of the first entry whose key is the string `key`, borrowed.
    std::optional<ValueRef> find(std::string_view key) const;
    // As find, but throws rask::Error (RASK_ERR_INVALID_ARG) when there is none.
    ValueRef at(std::string_view key) const;
    // The entries of a map, borrowed.
    std::vector<std::pair<ValueRef, ValueRef>> entries() const;
    // Iterate over the elements of an array (ValueRef each).
    ArrayIterator begin() const;
    ArrayIterator end() const;

    // Converts to T through rask::Convert<T>: bool, integers (range-checked),
    // floating point, std::string, std::string_view (borrowed), Bytes,
    // std::vector<T> (from an array, or a tensor of T), std::map /
    // std::unordered_map, std::optional<T> (nil is nullopt), Tensor<T>,
    // Value (a copy) and ValueRef.
    template <class T>
    T to() const;

    // An owned copy (tensor and binary payloads are shared, not copied).
    Value clone() const;
    // The msgpack encoding (tensors as extension type 1).
    Bytes to_msgpack() const;
    // A readable rendering: 1, 2.5, "s", [1, 2], {"k": 1}, bin[3], tensor<float64>[2, 3].
    std::string repr() const;

private:
    const rask_value* p() const noexcept { return static_cast<const D*>(this)->get(); }
};

template <class D>
std::ostream& operator<<(std::ostream& os, const ValueReader<D>& v) {
    return os << v.repr();
}

// A borrowed value: a task argument, an array element. Valid only while
// what it was borrowed from lives; clone() it to keep it.
class ValueRef : public ValueReader<ValueRef> {
public:
    ValueRef() = default;
    explicit ValueRef(const rask_value* v) noexcept : v_(v) {}
    const rask_value* get() const noexcept { return v_; }

private:
    const rask_value* v_ = nullptr;
};

// An owned value: nil, bool, int, uint, float, str, bin, array, map or
// tensor. Implicitly made from C++ values: `Value v = 42;`, `= "text";`,
// `= std::vector<double>{1.5, 2.5};`, `= rask::Bytes{1, 2};`,
// `= std::map<std::string, int>{{"a", 1}};`. Move-only: clone() to copy.
// A default-constructed or moved-from Value holds no handle and reads as nil.
class Value : public ValueReader<Value> {
public:
    Value() noexcept = default;
    // Takes over an owned rask_value *.
    explicit Value(rask_value* owned) noexcept : v_(owned) {}
    template <class T, class D = std::decay_t<T>,
              class = std::enable_if_t<!std::is_same_v<D, Value> && !std::is_same_v<D, ValueRef> &&
                                       detail::has_to_value<D>::value>>
    Value(T&& x) : Value(Convert<D>::to_value(std::forward<T>(x))) {}
    // A copy of a borrowed value.
    Value(ValueRef r) : v_(r.get() ? detail::not_null(rask_value_clone(r.get()), "rask_value_clone") : nullptr) {}

    Value(Value&& o) noexcept : v_(std::exchange(o.v_, nullptr)) {}
    Value& operator=(Value&& o) noexcept {
        if (this != &o) {
            rask_value_free(v_);
            v_ = std::exchange(o.v_, nullptr);
        }
        return *this;
    }
    Value(const Value&) = delete;
    Value& operator=(const Value&) = delete;
    ~Value() { rask_value_free(v_); }

    static Value nil() { return Value(detail::not_null(rask_value_nil(), "rask_value_nil")); }
    static Value boolean(bool b) { return Value(detail::not_null(rask_value_bool(b), "rask_value_bool")); }
    static Value integer(int64_t i) { return Value(detail::not_null(rask_value_int(i), "rask_value_int")); }
    static Value uinteger(uint64_t u) { return Value(detail::not_null(rask_value_uint(u), "rask_value_uint")); }
    static Value number(double f) { return Value(detail::not_null(rask_value_float(f), "rask_value_float")); }
    static Value str(std::string_view s) {
        rask_value* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_value_str(s.data(), s.size(), &out, err.out()));
        return Value(out);
    }
    static Value bytes(const void* data, size_t len) {
        rask_value* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_value_bytes(static_cast<const uint8_t*>(data), len, &out, err.out()));
        return Value(out);
    }
    // An empty array; fill it with push().
    static Value array() { return Value(detail::not_null(rask_value_array_new(), "rask_value_array_new")); }
    // An array of these values (copied: initializer lists are const).
    static Value array(std::initializer_list<Value> items) {
        Value a = array();
        for (const Value& x : items) a.push(x.clone());
        return a;
    }
    // An empty map; fill it with insert().
    static Value map() { return Value(detail::not_null(rask_value_map_new(), "rask_value_map_new")); }
    // A map of these entries, in this order (copied).
    static Value map(std::initializer_list<std::pair<Value, Value>> entries) {
        Value m = map();
        for (const auto& e : entries) m.insert(e.first.clone(), e.second.clone());
        return m;
    }
    // A tensor of `nbytes` row-major bytes at `data` (copied).
    static Value tensor(Dtype dtype, const std::vector<size_t>& shape, const void* data, size_t nbytes) {
        rask_value* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_value_tensor(static_cast<int>(dtype), shape.data(), shape.size(), data, nbytes, &out,
                                    err.out()));
        return Value(out);
    }
    // A tensor of the row-major elements `data` (copied) with this shape;
    // an empty shape means a 1-dimensional tensor of data.size() elements.
    template <class T, class = std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>>>
    static Value tensor(const std::vector<T>& data, std::vector<size_t> shape = {}) {
        if (shape.empty()) shape.push_back(data.size());
        return tensor(dtype_of<T>::value, shape, data.data(), data.size() * sizeof(T));
    }
    // A tensor that takes over `data` without a copy (an rvalue: the vector
    // is moved to the heap and rask's tensor is its memory; rask deletes it
    // when the value's last copy is dropped, on whichever thread drops it).
    // Read it back in place with as_tensor().
    template <class T, class = std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>>>
    static Value tensor(std::vector<T>&& data, std::vector<size_t> shape = {}) {
        if (shape.empty()) shape.push_back(data.size());
        auto* held = new std::vector<T>(std::move(data));
        rask_value* out = nullptr;
        detail::ErrorSlot err;
        // rask_value_tensor_wrap releases (deletes) `held` exactly once, also when it fails.
        err.check(rask_value_tensor_wrap(static_cast<int>(dtype_of<T>::value), shape.data(), shape.size(),
                                         held->data(), held->size() * sizeof(T), &delete_vector<T>, held, &out,
                                         err.out()));
        return Value(out);
    }
    static Value from_msgpack(const uint8_t* data, size_t len) {
        rask_value* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_value_from_msgpack(data, len, &out, err.out()));
        return Value(out);
    }
    static Value from_msgpack(const Bytes& b) { return from_msgpack(b.data(), b.size()); }

    // Appends to an array (TypeError otherwise); `elem` is consumed.
    Value& push(Value elem) {
        detail::ErrorSlot err;
        err.check(rask_value_array_push(v_, elem.release_or_nil(), err.out()));
        return *this;
    }
    // Appends an entry to a map (TypeError otherwise); both are consumed.
    Value& insert(Value key, Value val) {
        rask_value* k = key.release_or_nil();
        rask_value* v = nullptr;
        try {
            v = val.release_or_nil();
        } catch (...) {
            rask_value_free(k);
            throw;
        }
        detail::ErrorSlot err;
        err.check(rask_value_map_insert(v_, k, v, err.out()));
        return *this;
    }

    const rask_value* get() const noexcept { return v_; }
    rask_value* get() noexcept { return v_; }
    // Whether this holds a handle (false after a move).
    bool valid() const noexcept { return v_ != nullptr; }
    // Gives up the handle; the caller owns it (NULL if there is none).
    rask_value* release() noexcept { return std::exchange(v_, nullptr); }
    // Gives up the handle, or a new nil if there is none: for calls that consume a value.
    rask_value* release_or_nil() { return v_ ? release() : detail::not_null(rask_value_nil(), "rask_value_nil"); }
    ValueRef ref() const noexcept { return ValueRef(v_); }
    operator ValueRef() const noexcept { return ValueRef(v_); }

private:
    template <class T>
    static void delete_vector(void* p) noexcept {
        delete static_cast<std::vector<T>*>(p);
    }
    rask_value* v_ = nullptr;
};

// Iterates over the elements of an array value.
class ArrayIterator {
public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = ValueRef;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = ValueRef;
    ArrayIterator(const rask_value* a, size_t i) : a_(a), i_(i) {}
    ValueRef operator*() const { return ValueRef(a_)[i_]; }
    ArrayIterator& operator++() {
        ++i_;
        return *this;
    }
    ArrayIterator operator++(int) {
        ArrayIterator t = *this;
        ++i_;
        return t;
    }
    bool operator==(const ArrayIterator& o) const { return a_ == o.a_ && i_ == o.i_; }
    bool operator!=(const ArrayIterator& o) const { return !(*this == o); }

private:
    const rask_value* a_;
    size_t i_;
};

// ------------------------------------------------------------ ValueReader bodies

template <class D>
ValueRef ValueReader<D>::operator[](size_t i) const {
    const rask_value* out = nullptr;
    detail::ErrorSlot err;
    err.check(rask_value_array_get(p(), i, &out, err.out()));
    return ValueRef(out);
}
template <class D>
ValueRef ValueReader<D>::at(size_t i) const {
    return (*this)[i];
}
template <class D>
ValueRef ValueReader<D>::key_at(size_t i) const {
    const rask_value* out = nullptr;
    detail::ErrorSlot err;
    err.check(rask_value_map_key(p(), i, &out, err.out()));
    return ValueRef(out);
}
template <class D>
ValueRef ValueReader<D>::value_at(size_t i) const {
    const rask_value* out = nullptr;
    detail::ErrorSlot err;
    err.check(rask_value_map_value(p(), i, &out, err.out()));
    return ValueRef(out);
}
template <class D>
std::optional<ValueRef> ValueReader<D>::find(std::string_view key) const {
    if (kind() != Kind::Map) {
        throw TypeError(RASK_ERR_TYPE, std::string("expected a map, the value is a ") + kind_name(kind()));
    }
    size_t n = size();
    for (size_t i = 0; i < n; i++) {
        ValueRef k = key_at(i);
        if (k.is_str() && k.as_string_view() == key) return value_at(i);
    }
    return std::nullopt;
}
template <class D>
ValueRef ValueReader<D>::at(std::string_view key) const {
    if (auto v = find(key)) return *v;
    throw Error(RASK_ERR_INVALID_ARG, "the map has no key \"" + std::string(key) + "\"");
}
template <class D>
std::vector<std::pair<ValueRef, ValueRef>> ValueReader<D>::entries() const {
    if (!is_map()) throw TypeError(RASK_ERR_TYPE, std::string("expected a map, the value is a ") + kind_name(kind()));
    std::vector<std::pair<ValueRef, ValueRef>> out;
    size_t n = size();
    out.reserve(n);
    for (size_t i = 0; i < n; i++) out.emplace_back(key_at(i), value_at(i));
    return out;
}
template <class D>
ArrayIterator ValueReader<D>::begin() const {
    if (!is_array()) throw TypeError(RASK_ERR_TYPE, std::string("expected an array, the value is a ") + kind_name(kind()));
    return ArrayIterator(p(), 0);
}
template <class D>
ArrayIterator ValueReader<D>::end() const {
    return ArrayIterator(p(), is_array() ? size() : 0);
}
template <class D>
template <class T>
T ValueReader<D>::to() const {
    static_assert(detail::has_from<T>::value, "rask::Value::to<T>: no rask::Convert<T>::from for this type");
    return Convert<T>::from(ValueRef(p()));
}
template <class D>
Value ValueReader<D>::clone() const {
    return Value(ValueRef(p()));
}
template <class D>
Bytes ValueReader<D>::to_msgpack() const {
    uint8_t* data = nullptr;
    size_t len = 0;
    detail::ErrorSlot err;
    err.check(rask_value_to_msgpack(p(), &data, &len, err.out()));
    struct Free {
        uint8_t* d;
        size_t n;
        ~Free() { rask_buffer_free(d, n); }
    } guard{data, len};
    return Bytes(data, data + len);
}

namespace detail {
inline void repr_to(std::ostream& os, ValueRef v) {
    switch (v.kind()) {
        case Kind::Nil: os << "nil"; break;
        case Kind::Bool: os << (v.as_bool() ? "true" : "false"); break;
        case Kind::Int: os << v.as_int(); break;
        case Kind::UInt: os << v.as_uint(); break;
        case Kind::Float: {
            std::ostringstream s;
            s.precision(17);
            s << v.as_double();
            std::string t = s.str();
            if (t.find_first_of(".eEn") == std::string::npos) t += ".0";  // keep floats recognisable
            os << t;
            break;
        }
        case Kind::Str: {
            os << '"';
            for (char c : v.as_string_view()) {
                if (c == '"' || c == '\\') os << '\\' << c;
                else if (c == '\n') os << "\\n";
                else os << c;
            }
            os << '"';
            break;
        }
        case Kind::Bin: os << "bin[" << v.size() << "]"; break;
        case Kind::Array: {
            os << '[';
            size_t n = v.size();
            for (size_t i = 0; i < n; i++) {
                if (i) os << ", ";
                repr_to(os, v[i]);
            }
            os << ']';
            break;
        }
        case Kind::Map: {
            os << '{';
            size_t n = v.size();
            for (size_t i = 0; i < n; i++) {
                if (i) os << ", ";
                repr_to(os, v.key_at(i));
                os << ": ";
                repr_to(os, v.value_at(i));
            }
            os << '}';
            break;
        }
        case Kind::Tensor: {
            TensorView t = v.as_tensor();
            os << "tensor<" << dtype_name(t.dtype()) << ">[";
            for (size_t i = 0; i < t.ndim(); i++) os << (i ? ", " : "") << t.shape()[i];
            os << ']';
            break;
        }
    }
}
}  // namespace detail

template <class D>
std::string ValueReader<D>::repr() const {
    std::ostringstream os;
    detail::repr_to(os, ValueRef(p()));
    return os.str();
}

// ------------------------------------------------------------ conversions

namespace detail {
[[noreturn]] inline void range_error(ValueRef v, const char* type) {
    throw TypeError(RASK_ERR_TYPE, "the value " + v.repr() + " does not fit in " + type);
}
template <class T>
const char* type_name() {
    if constexpr (std::is_floating_point_v<T>) return sizeof(T) == 4 ? "float" : "double";
    else if constexpr (std::is_signed_v<T>)
        return sizeof(T) == 1 ? "int8_t" : sizeof(T) == 2 ? "int16_t" : sizeof(T) == 4 ? "int32_t" : "int64_t";
    else return sizeof(T) == 1 ? "uint8_t" : sizeof(T) == 2 ? "uint16_t" : sizeof(T) == 4 ? "uint32_t" : "uint64_t";
}
// Reads a tensor of T's dtype into `out`; false if `v` is not a tensor.
template <class T>
bool read_tensor(ValueRef v, std::vector<T>& out) {
    if (!v.is_tensor()) return false;
    Span<T> d = v.as_tensor().template data<T>();
    out.assign(d.begin(), d.end());
    return true;
}
}  // namespace detail

template <>
struct Convert<Value> {
    static Value to_value(const Value& v) { return v.clone(); }
    static Value to_value(Value&& v) { return std::move(v); }
    static Value from(ValueRef v) { return v.clone(); }
};
template <>
struct Convert<ValueRef> {
    static Value to_value(ValueRef v) { return v.clone(); }
    static ValueRef from(ValueRef v) { return v; }
};
template <>
struct Convert<std::nullptr_t> {
    static Value to_value(std::nullptr_t) { return Value::nil(); }
};
template <>
struct Convert<bool> {
    static Value to_value(bool b) { return Value::boolean(b); }
    static bool from(ValueRef v) { return v.as_bool(); }
};
// Integers (plain char is left out: write int8_t or a string).
template <class T>
struct Convert<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>>> {
    static Value to_value(T x) {
        if constexpr (std::is_signed_v<T>) return Value::integer(static_cast<int64_t>(x));
        else return Value::uinteger(static_cast<uint64_t>(x));
    }
    static T from(ValueRef v) {
        if constexpr (std::is_signed_v<T>) {
            int64_t x = v.as_int();
            if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                x > static_cast<int64_t>(std::numeric_limits<T>::max()))
                detail::range_error(v, detail::type_name<T>());
            return static_cast<T>(x);
        } else {
            uint64_t x = v.as_uint();
            if (x > static_cast<uint64_t>(std::numeric_limits<T>::max())) detail::range_error(v, detail::type_name<T>());
            return static_cast<T>(x);
        }
    }
};
template <class T>
struct Convert<T, std::enable_if_t<std::is_floating_point_v<T>>> {
    static Value to_value(T x) { return Value::number(static_cast<double>(x)); }
    static T from(ValueRef v) { return static_cast<T>(v.as_double()); }
};
template <>
struct Convert<std::string> {
    static Value to_value(const std::string& s) { return Value::str(s); }
    static std::string from(ValueRef v) { return v.as_string(); }
};
template <>
struct Convert<std::string_view> {
    static Value to_value(std::string_view s) { return Value::str(s); }
    // Borrowed from the value.
    static std::string_view from(ValueRef v) { return v.as_string_view(); }
};
template <>
struct Convert<const char*> {
    static Value to_value(const char* s) { return s ? Value::str(s) : Value::nil(); }
};
template <>
struct Convert<char*> {
    static Value to_value(const char* s) { return s ? Value::str(s) : Value::nil(); }
};
// Bytes (std::vector<uint8_t>) is a bin; read from a bin or a uint8 tensor.
template <>
struct Convert<Bytes> {
    static Value to_value(const Bytes& b) { return Value::bytes(b.data(), b.size()); }
    static Bytes from(ValueRef v) {
        Bytes out;
        if (detail::read_tensor(v, out)) return out;
        return v.as_bytes();
    }
};
// std::vector<T> is an array; read from an array, or from a tensor of T.
template <class T>
struct Convert<std::vector<T>, std::enable_if_t<!std::is_same_v<T, uint8_t> && detail::has_to_value<T>::value>> {
    static Value to_value(const std::vector<T>& xs) {
        Value a = Value::array();
        for (const auto& x : xs) a.push(Convert<T>::to_value(x));
        return a;
    }
    static Value to_value(std::vector<T>&& xs) {
        Value a = Value::array();
        for (auto& x : xs) a.push(Convert<T>::to_value(std::move(x)));
        return a;
    }
    static std::vector<T> from(ValueRef v) {
        std::vector<T> out;
        if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>) {
            if (detail::read_tensor(v, out)) return out;
        }
        if (!v.is_array()) {
            throw TypeError(RASK_ERR_TYPE, std::string("expected an array, the value is a ") + kind_name(v.kind()));
        }
        size_t n = v.size();
        out.reserve(n);
        for (size_t i = 0; i < n; i++) out.push_back(v[i].template to<T>());
        return out;
    }
};
template <class M>
struct ConvertMap {
    using K = typename M::key_type;
    using V = typename M::mapped_type;
    static Value to_value(const M& m) {
        Value out = Value::map();
        for (const auto& [k, v] : m) out.insert(Convert<K>::to_value(k), Convert<V>::to_value(v));
        return out;
    }
    static M from(ValueRef v) {
        M out;
        for (const auto& [k, val] : v.entries()) out.emplace(k.template to<K>(), val.template to<V>());
        return out;
    }
};
template <class K, class V>
struct Convert<std::map<K, V>, std::enable_if_t<detail::has_to_value<K>::value && detail::has_to_value<V>::value>>
    : ConvertMap<std::map<K, V>> {};
template <class K, class V>
struct Convert<std::unordered_map<K, V>,
               std::enable_if_t<detail::has_to_value<K>::value && detail::has_to_value<V>::value>>
    : ConvertMap<std::unordered_map<K, V>> {};
// std::optional<T>: nullopt is nil.
template <class T>
struct Convert<std::optional<T>, std::enable_if_t<detail::has_to_value<T>::value>> {
    static Value to_value(const std::optional<T>& x) { return x ? Convert<T>::to_value(*x) : Value::nil(); }
    static std::optional<T> from(ValueRef v) {
        if (v.is_nil()) return std::nullopt;
        return v.template to<T>();
    }
};
template <class T>
struct Convert<Tensor<T>> {
    static Value to_value(const Tensor<T>& t) {
        std::vector<size_t> shape = t.shape;
        if (shape.empty()) shape.push_back(t.data.size());
        return Value::tensor(dtype_of<T>::value, shape, t.data.data(), t.data.size() * sizeof(T));
    }
    static Tensor<T> from(ValueRef v) {
        TensorView view = v.as_tensor();
        Span<T> d = view.data<T>();
        return Tensor<T>{d.to_vector(), view.shape().to_vector()};
    }
};

// ===================================================================== task arguments

// The arguments of a task, borrowed for the call of its function:
// `args[i]` (bounds-checked) is a ValueRef; range-for works.
class Args {
public:
    Args() = default;
    Args(const rask_value* const* args, size_t n) noexcept : args_(args), n_(n) {}
    size_t size() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    ValueRef operator[](size_t i) const {
        if (i >= n_) {
            throw Error(RASK_ERR_INVALID_ARG,
                        "argument " + std::to_string(i) + " asked for, but the task has " + std::to_string(n_));
        }
        return ValueRef(args_[i]);
    }
    ValueRef at(size_t i) const { return (*this)[i]; }

    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = ValueRef;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = ValueRef;
        explicit iterator(const rask_value* const* p) : p_(p) {}
        ValueRef operator*() const { return ValueRef(*p_); }
        iterator& operator++() {
            ++p_;
            return *this;
        }
        iterator operator++(int) {
            iterator t = *this;
            ++p_;
            return t;
        }
        bool operator==(const iterator& o) const { return p_ == o.p_; }
        bool operator!=(const iterator& o) const { return p_ != o.p_; }

    private:
        const rask_value* const* p_;
    };
    iterator begin() const noexcept { return iterator(args_); }
    iterator end() const noexcept { return iterator(args_ + n_); }
    const rask_value* const* data() const noexcept { return args_; }

private:
    const rask_value* const* args_ = nullptr;
    size_t n_ = 0;
};

// ===================================================================== functions

namespace detail {

template <class T>
struct fn_traits : fn_traits<decltype(&T::operator())> {};
template <class R, class... A>
struct fn_traits<R(A...)> {
    using ret = R;
    using args = std::tuple<A...>;
};
template <class R, class... A>
struct fn_traits<R (*)(A...)> : fn_traits<R(A...)> {};
template <class R, class... A>
struct fn_traits<R (*)(A...) noexcept> : fn_traits<R(A...)> {};
template <class R, class C, class... A>
struct fn_traits<R (C::*)(A...) const> : fn_traits<R(A...)> {};
template <class R, class C, class... A>
struct fn_traits<R (C::*)(A...) const noexcept> : fn_traits<R(A...)> {};
template <class R, class C, class... A>
struct fn_traits<R (C::*)(A...)> : fn_traits<R(A...)> {};
template <class R, class C, class... A>
struct fn_traits<R (C::*)(A...) noexcept> : fn_traits<R(A...)> {};

template <class R>
Value result_to_value(R&& r) {
    return Value(std::forward<R>(r));
}

// Argument i converted to T; a failure names the argument ("args[1]: expected an int, ...").
template <class T>
T convert_arg(const Args& args, size_t i) {
    try {
        return args[i].template to<T>();
    } catch (const Error& e) {
        std::string m = e.what();
        size_t colon = m.find(": ");
        if (m.compare(0, 5, "rask_") == 0 && colon != std::string::npos) m.erase(0, colon + 2);  // the C function's name
        raise(e.status(), "args[" + std::to_string(i) + "]: " + m);
    }
}

// Calls f with the arguments converted to its parameter types.
template <class F, class Tuple, size_t... I>
decltype(auto) call_typed(const F& f, const Args& args, std::index_sequence<I...>) {
    constexpr size_t n = sizeof...(I);
    if (args.size() != n) {
        throw Error(RASK_ERR_INVALID_ARG, "expects " + std::to_string(n) + (n == 1 ? " argument" : " arguments") +
                                              ", got " + std::to_string(args.size()));
    }
    (void)args;
    return f(convert_arg<std::decay_t<std::tuple_element_t<I, Tuple>>>(args, I)...);
}

// Runs a task function: f(Args) if it takes Args, else f(a0, a1, ...) with
// each argument converted to the parameter's type. void results are nil.
template <class F>
Value invoke(const F& f, const Args& args) {
    if constexpr (std::is_invocable_v<const F&, const Args&>) {
        using R = std::invoke_result_t<const F&, const Args&>;
        if constexpr (std::is_void_v<R>) {
            f(args);
            return Value::nil();
        } else {
            return result_to_value(f(args));
        }
    } else {
        using Traits = fn_traits<std::remove_pointer_t<F>>;
        using Tuple = typename Traits::args;
        using R = typename Traits::ret;
        auto seq = std::make_index_sequence<std::tuple_size_v<Tuple>>{};
        if constexpr (std::is_void_v<R>) {
            call_typed<F, Tuple>(f, args, seq);
            return Value::nil();
        } else {
            return result_to_value(call_typed<F, Tuple>(f, args, seq));
        }
    }
}

struct FnBase {
    virtual ~FnBase() = default;
    virtual Value call(const Args& args) const = 0;
};
template <class F>
struct FnImpl final : FnBase {
    explicit FnImpl(F fn) : f(std::move(fn)) {}
    Value call(const Args& args) const override { return invoke(f, args); }
    F f;
};

}  // namespace detail

// Any callable as a task function, type-erased and cheap to copy (copies
// share the callable). It is called as const, possibly on several threads at
// once, so it must be thread-safe. It takes either `const rask::Args&` (all
// arguments, any number) or typed parameters that rask converts each argument
// to (`[](int64_t x, const std::string& s) {...}`; a wrong count or type is a
// task failure), and returns anything convertible to Value (void: nil).
// Whatever it throws becomes the task's failure message (what()).
class Function {
public:
    Function() = default;
    template <class F, class D = std::decay_t<F>, class = std::enable_if_t<!std::is_same_v<D, Function>>>
    Function(F&& f) : impl_(std::make_shared<detail::FnImpl<D>>(std::forward<F>(f))) {}
    // Runs the function; exceptions propagate.
    Value operator()(const Args& args) const {
        if (!impl_) throw Error(RASK_ERR_STATE, "empty rask::Function");
        return impl_->call(args);
    }
    explicit operator bool() const noexcept { return static_cast<bool>(impl_); }

private:
    std::shared_ptr<const detail::FnBase> impl_;
};

namespace detail {

// Reports an exception as (status, *err), for code called by rask.
inline rask_status report_exception(rask_error** err) noexcept {
    rask_status status = RASK_ERR_TASK_FAILED;
    try {
        throw;
    } catch (const Error& e) {
        rask_status s = e.status();
        if (s != RASK_OK && s != RASK_TIMEOUT && s != RASK_DONE) status = s;
        *err = rask_error_new(static_cast<int>(status), e.what());
    } catch (const std::exception& e) {
        *err = rask_error_new(static_cast<int>(status), e.what());
    } catch (...) {
        *err = rask_error_new(static_cast<int>(status), "unknown C++ exception");
    }
    return status;
}

// The C callback behind every C++ task function: user_data is a Function *.
inline rask_status callback_trampoline(void* user_data, const rask_value* const* args, size_t nargs,
                                       rask_value** result, rask_error** err) noexcept {
    try {
        const Function& fn = *static_cast<const Function*>(user_data);
        Value v = fn(Args(args, nargs));
        *result = v.release_or_nil();
        return RASK_OK;
    } catch (...) {
        return report_exception(err);
    }
}

inline void drop_function(void* user_data) noexcept { delete static_cast<Function*>(user_data); }

// Owns rask_args until a call consumes them.
class ArgArray {
public:
    explicit ArgArray(size_t n) { v_.reserve(n); }
    ArgArray(const ArgArray&) = delete;
    ArgArray& operator=(const ArgArray&) = delete;
    ~ArgArray() {
        for (rask_arg* a : v_) rask_arg_free(a);
    }
    void push(rask_arg* a) { v_.push_back(a); }  // reserved: never reallocates
    rask_arg* const* data() const noexcept { return v_.data(); }
    size_t size() const noexcept { return v_.size(); }
    // The call consumed them.
    void consumed() noexcept { v_.clear(); }

private:
    std::vector<rask_arg*> v_;
};

// NUL-terminated copies of keys, and their pointers for the C API.
class CStrings {
public:
    template <class It>
    CStrings(It first, It last) {
        for (; first != last; ++first) s_.emplace_back(*first);
        p_.reserve(s_.size());
        for (const auto& s : s_) p_.push_back(s.c_str());
    }
    // p_ points into s_: copies would point into the original.
    CStrings(const CStrings&) = delete;
    CStrings& operator=(const CStrings&) = delete;
    const char* const* data() const noexcept { return p_.data(); }
    size_t size() const noexcept { return p_.size(); }

private:
    std::vector<std::string> s_;
    std::vector<const char*> p_;
};

}  // namespace detail

// The keys to compute: `{"z"}`, a std::vector<std::string>, ...
class Keys {
public:
    Keys(std::initializer_list<std::string_view> keys) : keys_(keys.begin(), keys.end()) {}
    Keys(const std::vector<std::string>& keys) : keys_(keys.begin(), keys.end()) {}
    Keys(const std::vector<std::string_view>& keys) : keys_(keys.begin(), keys.end()) {}
    const char* const* data() const noexcept { return keys_.data(); }
    size_t size() const noexcept { return keys_.size(); }

private:
    detail::CStrings keys_;
};

// ===================================================================== futures (declared early: arguments use them)

enum class FutureStatus : int {
    Pending = RASK_FUTURE_PENDING,
    Finished = RASK_FUTURE_FINISHED,
    Error = RASK_FUTURE_ERROR,
    Cancelled = RASK_FUTURE_CANCELLED,
};

// A handle on the value of a key in a cluster, made by a Client. Copying a
// Future makes another reference to the same key (rask_future_clone); the
// key stays wanted while any reference lives. May be used from any thread.
class Future {
public:
    Future() noexcept = default;
    // Takes over an owned rask_future *.
    explicit Future(rask_future* owned) noexcept : f_(owned) {}
    Future(const Future& o) : f_(o.f_ ? detail::not_null(rask_future_clone(o.f_), "rask_future_clone") : nullptr) {}
    Future& operator=(const Future& o) {
        if (this != &o) *this = Future(o);
        return *this;
    }
    Future(Future&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
    Future& operator=(Future&& o) noexcept {
        if (this != &o) {
            rask_future_free(f_);
            f_ = std::exchange(o.f_, nullptr);
        }
        return *this;
    }
    ~Future() { rask_future_free(f_); }

    // The key, borrowed: valid while this Future lives.
    std::string_view key() const noexcept {
        const char* k = rask_future_key(f_);
        return k ? std::string_view(k) : std::string_view();
    }
    // Where the key stands now (does not wait).
    FutureStatus status() const noexcept { return static_cast<FutureStatus>(rask_future_status(f_)); }
    // Finished, erred or cancelled.
    bool done() const noexcept { return status() != FutureStatus::Pending; }

    // Waits for the value. Throws TaskError (the message names the failed
    // task, its function, the worker and the function's message),
    // CancelledError, ConnectionError, or Error(RASK_ERR_STATE) after the
    // client was freed.
    Value result() const { return *result(forever); }
    // As result(), or nullopt if the key is still pending after `timeout`.
    std::optional<Value> result(std::chrono::milliseconds timeout) const {
        rask_value* out = nullptr;
        detail::ErrorSlot err;
        rask_status st = rask_future_result(f_, detail::to_ms(timeout), &out, err.out());
        if (st == RASK_TIMEOUT) return std::nullopt;
        err.check(st);
        return Value(out);
    }
    // The value converted to T: `f.result<int64_t>()`.
    template <class T>
    T result() const {
        return result().template to<T>();
    }
    template <class T>
    std::optional<T> result(std::chrono::milliseconds timeout) const {
        std::optional<Value> v = result(timeout);
        if (!v) return std::nullopt;
        return v->template to<T>();
    }

    const rask_future* get() const noexcept { return f_; }
    bool valid() const noexcept { return f_ != nullptr; }
    rask_future* release() noexcept { return std::exchange(f_, nullptr); }

private:
    rask_future* f_ = nullptr;
};

// The futures of one Client::map_msgpack, behind one handle
// (rask_future_batch): made, gathered and released in one call each,
// however many there are. Entry i is one reference to its key until it is
// released or the batch is destroyed. Move-only.
class FutureBatch {
public:
    FutureBatch() noexcept = default;
    // Takes over an owned rask_future_batch *.
    explicit FutureBatch(rask_future_batch* owned) noexcept : b_(owned) {}
    FutureBatch(FutureBatch&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    FutureBatch& operator=(FutureBatch&& o) noexcept {
        if (this != &o) {
            rask_future_batch_free(b_);
            b_ = std::exchange(o.b_, nullptr);
        }
        return *this;
    }
    FutureBatch(const FutureBatch&) = delete;
    FutureBatch& operator=(const FutureBatch&) = delete;
    ~FutureBatch() { rask_future_batch_free(b_); }

    // Entries (released ones included).
    size_t size() const noexcept { return rask_future_batch_len(b_); }
    // Every entry's key, in order.
    std::vector<std::string> keys() const {
        Value v = take_buffer([&](uint8_t** d, size_t* n, rask_error** e) { return rask_future_batch_keys(b_, d, n, e); });
        std::vector<std::string> out;
        out.reserve(v.size());
        for (size_t i = 0; i < v.size(); i++) out.push_back(v[i].as_string());
        return out;
    }
    // A separate Future on entry i (another reference to its key).
    Future get(size_t i) const {
        rask_future* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_future_batch_get(b_, i, &out, err.out()));
        return Future(out);
    }
    // Drops the references of these entries (again: nothing happens).
    void release(const std::vector<size_t>& indices) const {
        detail::ErrorSlot err;
        err.check(rask_future_batch_release(b_, indices.data(), indices.size(), err.out()));
    }
    // Where each entry stands now (does not wait).
    std::vector<FutureStatus> status() const {
        std::vector<rask_future_state> st(size());
        detail::ErrorSlot err;
        err.check(rask_future_batch_status(b_, nullptr, st.size(), st.data(), err.out()));
        std::vector<FutureStatus> out;
        out.reserve(st.size());
        for (rask_future_state s : st) out.push_back(static_cast<FutureStatus>(s));
        return out;
    }
    // Every entry's value, in order, as one array value (one call, one
    // buffer); nullopt if one is still pending after `timeout`. Throws as
    // Client::gather does.
    std::optional<Value> gather(std::chrono::milliseconds timeout) const {
        rask_status st = RASK_OK;
        Value v = take_buffer(
            [&](uint8_t** d, size_t* n, rask_error** e) {
                return st = rask_future_batch_gather(b_, nullptr, size(), detail::to_ms(timeout), d, n, e);
            },
            true);
        if (st == RASK_TIMEOUT) return std::nullopt;
        return v;
    }
    Value gather() const { return *gather(forever); }

    const rask_future_batch* get() const noexcept { return b_; }
    bool valid() const noexcept { return b_ != nullptr; }

private:
    // Calls `call(&data, &len, err)` and decodes the msgpack buffer it
    // returns (freed here). With `timeout_ok`, RASK_TIMEOUT gives nil.
    template <class Call>
    static Value take_buffer(Call call, bool timeout_ok = false) {
        uint8_t* data = nullptr;
        size_t len = 0;
        detail::ErrorSlot err;
        rask_status st = call(&data, &len, err.out());
        if (timeout_ok && st == RASK_TIMEOUT) return Value();
        err.check(st);
        struct Free {
            uint8_t* d;
            size_t n;
            ~Free() { rask_buffer_free(d, n); }
        } guard{data, len};
        return Value::from_msgpack(data, len);
    }
    rask_future_batch* b_ = nullptr;
};

// One argument of a task: a literal value (anything convertible to Value),
// a reference to another key of a graph (rask::ref), the value of a Future,
// or a list of arguments (rask::list, passed to the function as an array).
// Copyable; turned into a rask_arg at each call that uses it.
class Arg {
public:
    template <class T, class D = std::decay_t<T>,
              class = std::enable_if_t<!std::is_same_v<D, Arg> && !std::is_same_v<D, Future> &&
                                       std::is_constructible_v<Value, T&&>>>
    Arg(T&& literal) : kind_(Literal), literal_(std::make_shared<const Value>(std::forward<T>(literal))) {}
    Arg(const Value& literal) : kind_(Literal), literal_(std::make_shared<const Value>(literal.clone())) {}
    Arg(const Future& f) : kind_(FutureArg), future_(f) {}
    Arg(Future&& f) : kind_(FutureArg), future_(std::move(f)) {}

    static Arg ref(std::string_view key) {
        Arg a;
        a.kind_ = Ref;
        a.ref_ = std::string(key);
        return a;
    }
    static Arg list(std::vector<Arg> items) {
        Arg a;
        a.kind_ = List;
        a.list_ = std::move(items);
        return a;
    }

    bool is_ref() const noexcept { return kind_ == Ref; }
    // The key of a reference ("" for other arguments).
    const std::string& ref_key() const noexcept { return ref_; }

    // A new rask_arg that the caller owns.
    rask_arg* make() const {
        switch (kind_) {
            case Literal: {
                rask_value* v = literal_->valid() ? rask_value_clone(literal_->get()) : rask_value_nil();
                detail::not_null(v, "rask_value_clone");
                return detail::not_null(rask_arg_value(v), "rask_arg_value");
            }
            case Ref: {
                rask_arg* out = nullptr;
                detail::ErrorSlot err;
                err.check(rask_arg_ref(ref_.c_str(), &out, err.out()));
                return out;
            }
            case FutureArg: {
                if (!future_.valid()) throw Error(RASK_ERR_NULL_ARG, "an argument is an empty rask::Future");
                return detail::not_null(rask_arg_future(future_.get()), "rask_arg_future");
            }
            case List: {
                detail::ArgArray items(list_.size());
                for (const Arg& a : list_) items.push(a.make());
                rask_arg* out = nullptr;
                detail::ErrorSlot err;
                rask_status st = rask_arg_list(items.data(), items.size(), &out, err.out());
                items.consumed();
                err.check(st);
                return out;
            }
        }
        throw Error(RASK_ERR_INVALID_ARG, "bad rask::Arg");
    }

private:
    enum ArgKind { Literal, Ref, FutureArg, List };
    Arg() : kind_(Literal) {}
    ArgKind kind_;
    std::shared_ptr<const Value> literal_;
    std::string ref_;
    Future future_;
    std::vector<Arg> list_;
};

// A reference to the value of another key of the graph.
inline Arg ref(std::string_view key) { return Arg::ref(key); }
// A list argument: the function gets an array of the items' values.
inline Arg list(std::initializer_list<Arg> items) { return Arg::list(std::vector<Arg>(items)); }
inline Arg list(std::vector<Arg> items) { return Arg::list(std::move(items)); }

namespace detail {
template <class It>
void make_args(ArgArray& out, It first, It last) {
    for (; first != last; ++first) out.push(first->make());
}
}  // namespace detail

// ===================================================================== graphs

// A task graph: keys bound to literal values or to tasks `func(args...)`.
class Graph {
public:
    Graph() : g_(detail::not_null(rask_graph_new(), "rask_graph_new")) {}
    // Takes over an owned rask_graph *.
    explicit Graph(rask_graph* owned) noexcept : g_(owned) {}
    Graph(Graph&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
    Graph& operator=(Graph&& o) noexcept {
        if (this != &o) {
            rask_graph_free(g_);
            g_ = std::exchange(o.g_, nullptr);
        }
        return *this;
    }
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    ~Graph() { rask_graph_free(g_); }

    // Decodes a msgpack graph document (docs/graph-spec.md).
    static Graph from_msgpack(const uint8_t* data, size_t len) {
        rask_graph* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_graph_from_msgpack(data, len, &out, err.out()));
        return Graph(out);
    }
    static Graph from_msgpack(const Bytes& b) { return from_msgpack(b.data(), b.size()); }
    // A cheap copy (copy on write).
    Graph clone() const { return Graph(detail::not_null(rask_graph_clone(g_), "rask_graph_clone")); }

    // Binds `key` to a literal value. GraphError for an empty or duplicate key.
    Graph& value(std::string_view key, Value v) {
        std::string k(key);
        detail::ErrorSlot err;
        err.check(rask_graph_add_value(g_, k.c_str(), v.release_or_nil(), err.out()));
        return *this;
    }
    // Binds `key` to the task func(args...). GraphError for an empty or
    // duplicate key or an empty function name (the graph is then unchanged).
    Graph& task(std::string_view key, std::string_view func, std::initializer_list<Arg> args = {}) {
        return add_task(key, func, args.begin(), args.end(), args.size());
    }
    Graph& task(std::string_view key, std::string_view func, const std::vector<Arg>& args) {
        return add_task(key, func, args.begin(), args.end(), args.size());
    }

    // Keys defined (literals and tasks).
    size_t size() const noexcept { return rask_graph_len(g_); }
    // Checks every reference and that there is no cycle (GraphError naming the keys).
    void validate() const {
        detail::ErrorSlot err;
        err.check(rask_graph_validate(g_, err.out()));
    }
    // The `outputs` of the msgpack document this graph was decoded from.
    std::vector<std::string> doc_outputs() const {
        std::vector<std::string> out;
        size_t n = rask_graph_doc_output_count(g_);
        for (size_t i = 0; i < n; i++) out.emplace_back(rask_graph_doc_output(g_, i));
        return out;
    }

    const rask_graph* get() const noexcept { return g_; }
    rask_graph* get() noexcept { return g_; }
    bool valid() const noexcept { return g_ != nullptr; }
    rask_graph* release() noexcept { return std::exchange(g_, nullptr); }

private:
    template <class It>
    Graph& add_task(std::string_view key, std::string_view func, It first, It last, size_t n) {
        std::string k(key), f(func);
        detail::ErrorSlot err;
        bool all_refs = true;
        for (It it = first; it != last; ++it) all_refs = all_refs && it->is_ref();
        if (all_refs) {  // the fast path: nothing to allocate in rask
            std::vector<const char*> refs;
            refs.reserve(n);
            for (It it = first; it != last; ++it) refs.push_back(it->ref_key().c_str());
            err.check(rask_graph_add_task_refs(g_, k.c_str(), f.c_str(), refs.data(), refs.size(), err.out()));
            return *this;
        }
        detail::ArgArray args(n);
        detail::make_args(args, first, last);
        rask_status st = rask_graph_add_task(g_, k.c_str(), f.c_str(), args.data(), args.size(), err.out());
        args.consumed();
        err.check(st);
        return *this;
    }
    rask_graph* g_ = nullptr;
};

// ===================================================================== registries

// Named functions on top of the builtins (inc, add, sum, ...): C++ callables,
// C callbacks, and pulled functions (run by the host, see Computation::serve).
class Registry {
public:
    Registry() : r_(detail::not_null(rask_registry_new(), "rask_registry_new")) {}
    Registry(Registry&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    Registry& operator=(Registry&& o) noexcept {
        if (this != &o) {
            rask_registry_free(r_);
            r_ = std::exchange(o.r_, nullptr);
        }
        return *this;
    }
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;
    ~Registry() { rask_registry_free(r_); }

    // Registers a callable (see rask::Function) under `name`; it runs on
    // rask's threads, possibly several at once. The callable is kept on the
    // heap and deleted when the registry and every computation, cluster and
    // worker using it are done with it. Error (RASK_ERR_REGISTRY) for an
    // empty, builtin or duplicate name.
    Registry& add(std::string_view name, Function fn) {
        std::string n(name);
        auto* heap = new Function(std::move(fn));
        detail::ErrorSlot err;
        // drop_function runs exactly once, also when this call fails.
        err.check(rask_registry_add_callback(r_, n.c_str(), &detail::callback_trampoline, heap,
                                             &detail::drop_function, err.out()));
        return *this;
    }
    // Registers a C callback, as rask_registry_add_callback does.
    Registry& add_c(std::string_view name, rask_callback callback, void* user_data = nullptr,
                    rask_drop_user_data drop_user_data = nullptr) {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_registry_add_callback(r_, n.c_str(), callback, user_data, drop_user_data, err.out()));
        return *this;
    }
    // Registers a pulled function: its tasks go to the host (Computation or Worker next_task / serve).
    Registry& add_pulled(std::string_view name) {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_registry_add_pulled(r_, n.c_str(), err.out()));
        return *this;
    }
    // A registered function or a builtin.
    bool contains(std::string_view name) const {
        std::string n(name);
        return rask_registry_contains(r_, n.c_str());
    }

    const rask_registry* get() const noexcept { return r_; }
    rask_registry* get() noexcept { return r_; }
    bool valid() const noexcept { return r_ != nullptr; }

private:
    rask_registry* r_ = nullptr;
};

// ===================================================================== local compute

struct ComputeOptions {
    // Threads running builtins and callbacks; 0: one per CPU.
    uint32_t threads = 0;
};
using ComputeStats = rask_compute_stats;

namespace detail {
inline rask_compute_options c_options(const ComputeOptions& o) {
    rask_compute_options c{};
    c.threads = o.threads;
    return c;
}
inline std::vector<Value> take_values(std::vector<rask_value*>& raw) {
    std::vector<Value> out;
    out.reserve(raw.size());
    for (rask_value*& v : raw) out.emplace_back(std::exchange(v, nullptr));
    return out;
}
struct ValueArray {  // frees whatever was not taken
    explicit ValueArray(size_t n) : v(n, nullptr) {}
    ~ValueArray() {
        for (rask_value* x : v) rask_value_free(x);
    }
    std::vector<rask_value*> v;
};
}  // namespace detail

// Computes `keys` of `graph` on a local thread pool and returns their values
// in order. Throws GraphError (unknown key, missing reference, cycle),
// UnknownFunctionError, TaskError (the message names the task and gives the
// function's), or Error(RASK_ERR_STATE) when a needed task is pulled.
inline std::vector<Value> compute(const Graph& graph, const Keys& keys, const Registry* registry,
                                  const ComputeOptions& options = {}, ComputeStats* stats = nullptr) {
    detail::ValueArray out(keys.size());
    rask_compute_options o = detail::c_options(options);
    detail::ErrorSlot err;
    err.check(rask_compute(graph.get(), keys.data(), keys.size(), registry ? registry->get() : nullptr, &o,
                           out.v.data(), stats, err.out()));
    return detail::take_values(out.v);
}
inline std::vector<Value> compute(const Graph& graph, const Keys& keys, const Registry& registry,
                                  const ComputeOptions& options = {}, ComputeStats* stats = nullptr) {
    return compute(graph, keys, &registry, options, stats);
}
inline std::vector<Value> compute(const Graph& graph, const Keys& keys) { return compute(graph, keys, nullptr); }

// ===================================================================== pull mode

// A task of a pulled function, handed to the host. End it with complete()
// or fail(); a Task destroyed without either abandons the task (it fails
// with "dropped without a result"). Its key, function and arguments are
// borrowed from it.
class Task {
public:
    Task() noexcept = default;
    // Takes over an owned rask_task *.
    explicit Task(rask_task* owned) : t_(owned) {
        try {
            size_t n = rask_task_nargs(t_);
            args_.reserve(n);
            for (size_t i = 0; i < n; i++) args_.push_back(rask_task_arg(t_, i));
        } catch (...) {
            rask_task_free(t_);
            throw;
        }
    }
    Task(Task&& o) noexcept : t_(std::exchange(o.t_, nullptr)), args_(std::move(o.args_)) {}
    Task& operator=(Task&& o) noexcept {
        if (this != &o) {
            rask_task_free(t_);
            t_ = std::exchange(o.t_, nullptr);
            args_ = std::move(o.args_);
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() { rask_task_free(t_); }

    std::string_view key() const noexcept {
        const char* k = rask_task_key(t_);
        return k ? k : "";
    }
    std::string_view func() const noexcept {
        const char* f = rask_task_func(t_);
        return f ? f : "";
    }
    Args args() const noexcept { return Args(args_.data(), t_ ? args_.size() : 0); }
    ValueRef arg(size_t i) const { return args()[i]; }

    // For a task taken from a worker: tells the scheduler the task waits
    // (on tasks it submitted) without holding a slot (rask_task_secede);
    // keep pulling on another thread meanwhile. Returns false if nobody
    // wants the task any more. Throws for a task of a local computation.
    bool secede() const {
        detail::ErrorSlot err;
        rask_status st = rask_task_secede(t_, err.out());
        if (st == RASK_DONE) return false;
        err.check(st);
        return true;
    }
    // For a task taken from a worker: a client to the worker's scheduler
    // (rask_task_client; the worker's shared connection: destroying the
    // Client ends only this handle). Defined after Client.
    inline class Client client() const;

    // Hands back the result. Returns false if nobody wanted it any more (it
    // was discarded). The task is ended in every case.
    bool complete(Value result) {
        rask_task* t = ended();
        detail::ErrorSlot err;
        rask_status st = rask_task_complete(t, result.release_or_nil(), err.out());
        if (st == RASK_DONE) return false;
        err.check(st);
        return true;
    }
    // Fails the task with `message`. Returns false if nobody wanted it any more.
    bool fail(std::string_view message) {
        rask_task* t = ended();
        std::string m(message);
        detail::ErrorSlot err;
        rask_status st = rask_task_fail(t, m.c_str(), err.out());
        if (st == RASK_DONE) return false;
        err.check(st);
        return true;
    }
    // Runs fn (see rask::Function) on the arguments and completes the task
    // with its result, or fails it with what() of what it threw.
    template <class F>
    bool run(const F& fn) {
        std::optional<Value> v;
        std::string failure;
        try {
            v.emplace(detail::invoke(fn, args()));
        } catch (const std::exception& e) {
            failure = e.what();
        } catch (...) {
            failure = "unknown C++ exception";
        }
        return v ? complete(std::move(*v)) : fail(failure);
    }

    bool valid() const noexcept { return t_ != nullptr; }
    const rask_task* get() const noexcept { return t_; }

private:
    rask_task* ended() {
        if (!t_) throw Error(RASK_ERR_NULL_ARG, "this rask::Task was already ended");
        args_.clear();
        return std::exchange(t_, nullptr);
    }
    rask_task* t_ = nullptr;
    std::vector<const rask_value*> args_;
};

// Pulled function name -> what runs it: `{{"host_double", [](int64_t x) { return 2 * x; }}}`.
using Functions = std::map<std::string, Function, std::less<>>;

namespace detail {
// Pulls from `source` (a Computation or a Worker) until it has ended,
// running each task with `handle`. Returns the number of tasks handled.
template <class Source, class Handler>
size_t serve_loop(Source& source, Handler& handle, std::chrono::milliseconds poll) {
    size_t handled = 0;
    for (;;) {
        std::optional<Task> t = source.next_task(poll);
        if (!t) {
            if (source.ended()) return handled;
            continue;  // a timeout
        }
        handle(*t);
        handled++;
    }
}
inline bool run_from(Task& t, const Functions& fns) {
    auto it = fns.find(t.func());
    if (it == fns.end()) return t.fail("no C++ function for '" + std::string(t.func()) + "' in this host");
    return t.run(it->second);
}
}  // namespace detail

// A computation running in the background (rask_computation_start). Tasks
// of pulled functions wait for the host: next_task() or serve().
class Computation {
public:
    Computation(const Graph& graph, const Keys& keys, const Registry* registry, const ComputeOptions& options = {})
        : nkeys_(keys.size()) {
        rask_compute_options o = detail::c_options(options);
        detail::ErrorSlot err;
        err.check(rask_computation_start(graph.get(), keys.data(), keys.size(), registry ? registry->get() : nullptr,
                                         &o, &c_, err.out()));
    }
    Computation(const Graph& graph, const Keys& keys, const Registry& registry, const ComputeOptions& options = {})
        : Computation(graph, keys, &registry, options) {}
    Computation(Computation&& o) noexcept : c_(std::exchange(o.c_, nullptr)), nkeys_(o.nkeys_) {}
    Computation& operator=(Computation&& o) noexcept {
        if (this != &o) {
            rask_computation_free(c_);
            c_ = std::exchange(o.c_, nullptr);
            nkeys_ = o.nkeys_;
        }
        return *this;
    }
    Computation(const Computation&) = delete;
    Computation& operator=(const Computation&) = delete;
    // Cancels the computation if it still runs and waits for rask's threads.
    ~Computation() { rask_computation_free(c_); }

    // The next task of a pulled function, or nullopt once the computation
    // has ended (no more will come).
    std::optional<Task> next_task() { return next_task(forever); }
    // As next_task(), but nullopt also when nothing came within `timeout`:
    // done() tells the two apart.
    std::optional<Task> next_task(std::chrono::milliseconds timeout) {
        rask_task* t = nullptr;
        detail::ErrorSlot err;
        rask_status st = rask_computation_next_task(c_, detail::to_ms(timeout), &t, err.out());
        if (st == RASK_TIMEOUT || st == RASK_DONE) return std::nullopt;
        err.check(st);
        return Task(t);
    }
    // Pulls and runs tasks on this thread until the computation ends:
    // handler(Task&) must end each task (Task::run helps), or a map of
    // functions by name runs them. Call it on as many threads as you like.
    // Returns the number of tasks this call handled.
    template <class Handler, class = std::enable_if_t<std::is_invocable_v<Handler&, Task&>>>
    size_t serve(Handler&& handler, std::chrono::milliseconds poll = std::chrono::milliseconds(100)) {
        return detail::serve_loop(*this, handler, poll);
    }
    size_t serve(const Functions& functions, std::chrono::milliseconds poll = std::chrono::milliseconds(100)) {
        return serve([&](Task& t) { detail::run_from(t, functions); }, poll);
    }

    // Whether it has ended (finished, failed or cancelled).
    bool done() const noexcept { return rask_computation_is_done(c_); }
    // Waits for the end; throws the computation's failure.
    void wait() { wait(forever); }
    // False if it still runs after `timeout`; throws the computation's failure.
    bool wait(std::chrono::milliseconds timeout) {
        detail::ErrorSlot err;
        rask_status st = rask_computation_wait(c_, detail::to_ms(timeout), err.out());
        if (st == RASK_TIMEOUT) return false;
        err.check(st);
        return true;
    }
    // Waits for the end and returns the values of the keys (fresh copies at each call).
    std::vector<Value> results() {
        detail::ValueArray out(nkeys_);
        detail::ErrorSlot err;
        err.check(rask_computation_results(c_, out.v.data(), err.out()));
        return detail::take_values(out.v);
    }
    ComputeStats stats() const {
        ComputeStats s{};
        detail::ErrorSlot err;
        err.check(rask_computation_stats(c_, &s, err.out()));
        return s;
    }
    void cancel() {
        detail::ErrorSlot err;
        err.check(rask_computation_cancel(c_, err.out()));
    }

    const rask_computation* get() const noexcept { return c_; }
    bool valid() const noexcept { return c_ != nullptr; }

private:
    template <class Source, class Handler>
    friend size_t detail::serve_loop(Source&, Handler&, std::chrono::milliseconds);
    bool ended() const noexcept { return done(); }
    rask_computation* c_ = nullptr;
    size_t nkeys_ = 0;
};

// ===================================================================== the distributed runtime

// Options structs: every field's zero/empty value means the default (see
// rask.h). In C++20: `rask::Cluster cluster({.workers = 2});`; in C++17 set
// the fields, or `rask::Cluster cluster({2});` (fields in order).

struct SchedulerOptions {
    std::string host{};  // "": 127.0.0.1
    uint16_t port = 0;  // 0: any free port
    std::string name{};   // "": "scheduler"
    std::string token{};  // "": none
    std::chrono::milliseconds heartbeat_timeout{0};  // 0: 60 s
    // TLS: PEM paths of the CA, this side's certificate and its key; all
    // three or none ("": no TLS). See rask.h and docs/reliability.md.
    std::string tls_ca_file{};
    std::string tls_cert_file{};
    std::string tls_key_file{};
    // The web dashboard and /metrics ("HOST:PORT", port 0: any free port;
    // "": 127.0.0.1:8787, a free port when taken); no_dashboard: none.
    std::string dashboard_address{};
    bool no_dashboard = false;
};

struct ClusterOptions {
    uint32_t workers = 0;             // 0: 2
    uint32_t threads_per_worker = 0;  // 0: 1
    std::string host{};                 // "": 127.0.0.1
    uint16_t scheduler_port = 0;      // 0: any free port
    std::string token{};                // "": none
    std::chrono::milliseconds timeout{0};  // starting, and clients of client(); 0: 10 s
    // TLS: PEM paths of the CA, this side's certificate and its key; all
    // three or none ("": no TLS). See rask.h and docs/reliability.md.
    std::string tls_ca_file{};
    std::string tls_cert_file{};
    std::string tls_key_file{};
    // The scheduler's dashboard, as in SchedulerOptions.
    std::string dashboard_address{};
    bool no_dashboard = false;
};

struct ClientOptions {
    std::string name{};   // "": "rask-c-client"
    std::string token{};  // "": none
    std::chrono::milliseconds timeout{0};  // connecting and each request; 0: 10 s
    // TLS: PEM paths of the CA, this side's certificate and its key; all
    // three or none ("": no TLS). See rask.h and docs/reliability.md.
    std::string tls_ca_file{};
    std::string tls_cert_file{};
    std::string tls_key_file{};
};

struct SubmitOptions {
    std::string key{};      // "": derived from the function and arguments
    bool impure = false;  // with no key: a unique key per call
    uint32_t retries = 0;
};

struct WorkerOptions {
    std::string name{};  // "": "worker-PORT"
    uint32_t threads = 0;  // threads for callbacks and builtins; 0: one per CPU
    std::string host{};      // "": 127.0.0.1
    uint16_t data_port = 0;
    // bytes; 0: machine memory x (threads / CPUs), as Dask; UINT64_MAX: none
    uint64_t memory_limit = 0;
    std::string token{};
    std::chrono::milliseconds heartbeat{0};        // 0: 1 s
    std::chrono::milliseconds connect_timeout{0};  // 0: 10 s
    // TLS: PEM paths of the CA, this side's certificate and its key; all
    // three or none ("": no TLS). See rask.h and docs/reliability.md.
    std::string tls_ca_file{};
    std::string tls_cert_file{};
    std::string tls_key_file{};
    // Fractions of memory_limit (0: Dask's default 0.6 / 0.7 / 0.8 / 0.95;
    // negative: off): spill results over the target, spill by process
    // memory, pause, restart. See rask.h.
    double memory_target_fraction = 0;
    double memory_spill_fraction = 0;
    double memory_pause_fraction = 0;
    double memory_terminate_fraction = 0;
    std::string local_directory{};  // "": the system temp dir
    bool spill_compression = true;  // lz4 where it pays
    // Host threads that run pulled tasks at once (next_task); see rask.h.
    uint32_t pull_threads = 0;
    // The language the dashboard shows for this worker ("": "c++").
    std::string runtime{};
};

// rask_client_wait's modes (passed as int; rask.h does not declare the enum).
enum class WaitMode : int { AllCompleted = 0, FirstCompleted = 1 };

namespace detail {
inline const char* opt(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }
struct FutureArray {  // frees whatever was not taken
    explicit FutureArray(size_t n) : v(n, nullptr) {}
    ~FutureArray() {
        for (rask_future* f : v) rask_future_free(f);
    }
    std::vector<Future> take() {
        std::vector<Future> out;
        out.reserve(v.size());
        for (rask_future*& f : v) out.emplace_back(std::exchange(f, nullptr));
        return out;
    }
    std::vector<rask_future*> v;
};
inline std::vector<const rask_future*> future_ptrs(const std::vector<Future>& fs) {
    std::vector<const rask_future*> p;
    p.reserve(fs.size());
    for (const Future& f : fs) p.push_back(f.get());
    return p;
}
}  // namespace detail

class Client;

// A scheduler in this process; workers and clients join it at address().
class Scheduler {
public:
    explicit Scheduler(const SchedulerOptions& options = {}) {
        rask_scheduler_options o{};
        o.host = detail::opt(options.host);
        o.port = options.port;
        o.name = detail::opt(options.name);
        o.token = detail::opt(options.token);
        o.heartbeat_timeout_ms = detail::to_ms(options.heartbeat_timeout);
        o.tls_ca_file = detail::opt(options.tls_ca_file);
        o.tls_cert_file = detail::opt(options.tls_cert_file);
        o.tls_key_file = detail::opt(options.tls_key_file);
        o.dashboard_address = detail::opt(options.dashboard_address);
        o.no_dashboard = options.no_dashboard;
        detail::ErrorSlot err;
        err.check(rask_scheduler_start(&o, &s_, err.out()));
    }
    Scheduler(Scheduler&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Scheduler& operator=(Scheduler&& o) noexcept {
        if (this != &o) {
            rask_scheduler_free(s_);
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;
    // Shuts the scheduler down (workers close; clients' pending futures fail).
    ~Scheduler() { rask_scheduler_free(s_); }

    // "tcp://HOST:PORT".
    std::string address() const { return rask_scheduler_address(s_); }
    // Its dashboard, "http://HOST:PORT/status"; "" when it serves none.
    std::string dashboard_link() const { return rask_scheduler_dashboard_link(s_); }
    const rask_scheduler* get() const noexcept { return s_; }

private:
    rask_scheduler* s_ = nullptr;
};

// An iterator over futures in the order they finish; more can be added
// while iterating, also from another thread. Range-for waits for each:
// `for (rask::Future& f : client.as_completed(fs)) ...`.
class AsCompleted {
public:
    explicit AsCompleted(rask_as_completed* owned) noexcept : a_(owned) {}
    AsCompleted(AsCompleted&& o) noexcept : a_(std::exchange(o.a_, nullptr)) {}
    AsCompleted& operator=(AsCompleted&& o) noexcept {
        if (this != &o) {
            rask_as_completed_free(a_);
            a_ = std::exchange(o.a_, nullptr);
        }
        return *this;
    }
    AsCompleted(const AsCompleted&) = delete;
    AsCompleted& operator=(const AsCompleted&) = delete;
    ~AsCompleted() { rask_as_completed_free(a_); }

    // Adds a future (of the same client) to be yielded once done.
    void add(const Future& f) {
        detail::ErrorSlot err;
        err.check(rask_as_completed_add(a_, f.get(), err.out()));
    }
    // The next future that is done (finished, erred or cancelled: look at
    // it), or nullopt once every future added so far has been yielded.
    std::optional<Future> next() { return next(forever); }
    // As next(), but nullopt also when none became done within `timeout`:
    // count() == 0 tells that everything was yielded.
    std::optional<Future> next(std::chrono::milliseconds timeout) {
        rask_future* f = nullptr;
        detail::ErrorSlot err;
        rask_status st = rask_as_completed_next(a_, detail::to_ms(timeout), &f, err.out());
        if (st == RASK_TIMEOUT || st == RASK_DONE) return std::nullopt;
        err.check(st);
        return Future(f);
    }
    // Futures not yielded yet (done or not).
    size_t count() const noexcept { return rask_as_completed_count(a_); }

    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Future;
        using difference_type = std::ptrdiff_t;
        using pointer = Future*;
        using reference = Future&;
        iterator() = default;
        explicit iterator(AsCompleted* ac) : ac_(ac) { ++*this; }
        Future& operator*() { return *cur_; }
        Future* operator->() { return &*cur_; }
        iterator& operator++() {
            cur_ = ac_->next();
            if (!cur_) ac_ = nullptr;
            return *this;
        }
        bool operator==(const iterator& o) const { return ac_ == o.ac_; }
        bool operator!=(const iterator& o) const { return ac_ != o.ac_; }

    private:
        AsCompleted* ac_ = nullptr;
        std::optional<Future> cur_;
    };
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

    const rask_as_completed* get() const noexcept { return a_; }

private:
    rask_as_completed* a_ = nullptr;
};

// A connection to a scheduler. Any number of threads may use one client.
// Futures are independent handles: they may outlive it (calls on them then
// throw Error(RASK_ERR_STATE)).
// A subscription to a topic (Client::subscribe): what is published there
// from now on, in order. Unsubscribes when destroyed.
class Subscription {
public:
    explicit Subscription(rask_subscription* owned) noexcept : s_(owned) {}
    Subscription(Subscription&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Subscription& operator=(Subscription&& o) noexcept {
        if (this != &o) {
            rask_subscription_free(s_);
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription() { rask_subscription_free(s_); }
    // The next message, or nullopt when none came within `timeout`.
    std::optional<Value> get(std::chrono::milliseconds timeout = forever) const {
        rask_value* out = nullptr;
        detail::ErrorSlot err;
        rask_status st = rask_subscription_get(s_, detail::to_ms(timeout), &out, err.out());
        if (st == RASK_TIMEOUT) return std::nullopt;
        err.check(st);
        return Value(out);
    }

private:
    rask_subscription* s_;
};

// What Client::replicate did: copies made, keys left on fewer than n workers.
struct ReplicateReport {
    size_t copied = 0;
    size_t short_keys = 0;
};
// What Client::rebalance did: keys moved and their bytes.
struct RebalanceReport {
    size_t moved = 0;
    uint64_t bytes = 0;
};

// What a coordination object (variable, queue, dataset) holds.
using Item = std::variant<Value, Future>;

class Client {
public:
    // Takes over an owned rask_client *.
    explicit Client(rask_client* owned) noexcept : c_(owned) {}
    // Connects to the scheduler at `address` ("tcp://host:port", or
    // "tls://host:port" with the options' TLS files).
    static Client connect(std::string_view address, const ClientOptions& options = {}) {
        std::string a(address);
        rask_client_options o{};
        o.name = detail::opt(options.name);
        o.token = detail::opt(options.token);
        o.timeout_ms = detail::to_ms(options.timeout);
        o.tls_ca_file = detail::opt(options.tls_ca_file);
        o.tls_cert_file = detail::opt(options.tls_cert_file);
        o.tls_key_file = detail::opt(options.tls_key_file);
        rask_client* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_client_connect(a.c_str(), &o, &out, err.out()));
        return Client(out);
    }
    Client(Client&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    Client& operator=(Client&& o) noexcept {
        if (this != &o) {
            rask_client_free(c_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    // Releases every key the client wanted and closes the connection.
    ~Client() { rask_client_free(c_); }

    std::string scheduler_address() const { return rask_client_scheduler_address(c_); }

    // Runs func(args...) on the cluster; the key is a hash of the call (the
    // same call is one task). Arguments are literals, Futures and lists.
    Future submit(std::string_view func, std::initializer_list<Arg> args = {}) const {
        return submit_impl(func, args.begin(), args.end(), args.size(), nullptr);
    }
    Future submit(std::string_view func, const std::vector<Arg>& args) const {
        return submit_impl(func, args.begin(), args.end(), args.size(), nullptr);
    }
    // With a key of your own, a unique key (impure) or retries.
    Future submit(std::string_view func, std::initializer_list<Arg> args, const SubmitOptions& options) const {
        return submit_impl(func, args.begin(), args.end(), args.size(), &options);
    }
    Future submit(std::string_view func, const std::vector<Arg>& args, const SubmitOptions& options) const {
        return submit_impl(func, args.begin(), args.end(), args.size(), &options);
    }

    // func(item) for each item, in one message to the scheduler.
    std::vector<Future> map(std::string_view func, std::initializer_list<Arg> items) const {
        return map_impl(func, items.begin(), items.end(), items.size(), 1);
    }
    template <class T, class = std::enable_if_t<std::is_constructible_v<Arg, const T&>>>
    std::vector<Future> map(std::string_view func, const std::vector<T>& items) const {
        std::vector<Arg> args(items.begin(), items.end());
        return map_impl(func, args.begin(), args.end(), args.size(), 1);
    }
    // func(call...) for each call of `calls`, the msgpack encoding of an
    // array of argument arrays ([[1], [2]]: func(1), func(2)), in one call:
    // the futures come back as one FutureBatch.
    FutureBatch map_msgpack(std::string_view func, const Bytes& calls) const {
        std::string f(func);
        rask_future_batch* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_client_map_msgpack(c_, f.c_str(), calls.data(), calls.size(), &out, err.out()));
        return FutureBatch(out);
    }
    // The values of `futures` as one msgpack array (one call, one buffer).
    Bytes gather_msgpack(const std::vector<Future>& futures) const {
        std::vector<const rask_future*> p = detail::future_ptrs(futures);
        uint8_t* data = nullptr;
        size_t len = 0;
        detail::ErrorSlot err;
        err.check(rask_client_gather_msgpack(c_, p.data(), p.size(), -1, &data, &len, err.out()));
        struct Free {
            uint8_t* d;
            size_t n;
            ~Free() { rask_buffer_free(d, n); }
        } guard{data, len};
        return Bytes(data, data + len);
    }

    // func(call[0], call[1], ...) for each call; every call has the same number of arguments.
    std::vector<Future> map(std::string_view func, const std::vector<std::vector<Arg>>& calls) const {
        size_t per = calls.empty() ? 0 : calls[0].size();
        std::vector<Arg> flat;
        flat.reserve(calls.size() * per);
        for (const auto& c : calls) {
            if (c.size() != per) {
                throw Error(RASK_ERR_INVALID_ARG, "Client::map: every call needs " + std::to_string(per) +
                                                      " arguments, one has " + std::to_string(c.size()));
            }
            flat.insert(flat.end(), c.begin(), c.end());
        }
        return map_impl(func, flat.begin(), flat.end(), calls.size(), per);
    }

    // Computes `keys` of `graph` on the cluster (GraphError as rask::compute).
    std::vector<Future> compute(const Graph& graph, const Keys& keys) const {
        detail::FutureArray out(keys.size());
        detail::ErrorSlot err;
        err.check(rask_client_compute(c_, graph.get(), keys.data(), keys.size(), out.v.data(), err.out()));
        return out.take();
    }

    // Stores values on the workers (round robin, or on all with broadcast)
    // and returns futures on them, to pass as arguments.
    std::vector<Future> scatter(std::vector<Value> values, bool broadcast = false) const {
        detail::ValueArray raw(values.size());
        for (size_t i = 0; i < values.size(); i++) raw.v[i] = values[i].release_or_nil();
        detail::FutureArray out(values.size());
        detail::ErrorSlot err;
        rask_status st = rask_client_scatter(c_, raw.v.data(), raw.v.size(), broadcast, out.v.data(), err.out());
        raw.v.assign(raw.v.size(), nullptr);  // consumed, also on failure
        err.check(st);
        return out.take();
    }
    std::vector<Future> scatter(std::initializer_list<Value> values, bool broadcast = false) const {
        std::vector<Value> vs;
        vs.reserve(values.size());
        for (const Value& v : values) vs.push_back(v.clone());
        return scatter(std::move(vs), broadcast);
    }

    // Waits for the futures and returns their values in order; throws the
    // first failure in order (TaskError, CancelledError, ...).
    std::vector<Value> gather(const std::vector<Future>& futures) const { return *gather(futures, forever); }
    // As gather(), or nullopt if some future is still pending after `timeout`.
    std::optional<std::vector<Value>> gather(const std::vector<Future>& futures,
                                             std::chrono::milliseconds timeout) const {
        std::vector<const rask_future*> p = detail::future_ptrs(futures);
        detail::ValueArray out(p.size());
        detail::ErrorSlot err;
        rask_status st = rask_client_gather(c_, p.data(), p.size(), detail::to_ms(timeout), out.v.data(), err.out());
        if (st == RASK_TIMEOUT) return std::nullopt;
        err.check(st);
        return detail::take_values(out.v);
    }
    // The values converted to T: `client.gather<int64_t>(futures)`.
    template <class T>
    std::vector<T> gather_as(const std::vector<Future>& futures) const {
        std::vector<Value> vs = gather(futures);
        std::vector<T> out;
        out.reserve(vs.size());
        for (const Value& v : vs) out.push_back(v.template to<T>());
        return out;
    }

    // Cancels the futures (CANCELLED at once; the cluster stops work nobody else wants).
    void cancel(const std::vector<Future>& futures) const {
        std::vector<const rask_future*> p = detail::future_ptrs(futures);
        detail::ErrorSlot err;
        err.check(rask_client_cancel(c_, p.data(), p.size(), err.out()));
    }
    // Waits until all (or the first) of the futures are done; false at the
    // timeout. `done`, if given, says which were done.
    bool wait(const std::vector<Future>& futures, WaitMode mode = WaitMode::AllCompleted,
              std::chrono::milliseconds timeout = forever, std::vector<bool>* done = nullptr) const {
        std::vector<const rask_future*> p = detail::future_ptrs(futures);
        std::unique_ptr<bool[]> d(new bool[p.size() + 1]());
        detail::ErrorSlot err;
        rask_status st = rask_client_wait(c_, p.data(), p.size(), static_cast<int>(mode), detail::to_ms(timeout),
                                          d.get(), err.out());
        if (st != RASK_TIMEOUT) err.check(st);
        if (done) done->assign(d.get(), d.get() + p.size());
        return st == RASK_OK;
    }
    // Waits until the scheduler knows at least n workers; false at the timeout.
    bool wait_for_workers(size_t n, std::chrono::milliseconds timeout = forever, size_t* count = nullptr) const {
        size_t c = 0;
        detail::ErrorSlot err;
        rask_status st = rask_client_wait_for_workers(c_, n, detail::to_ms(timeout), &c, err.out());
        if (count) *count = c;
        if (st == RASK_TIMEOUT) return false;
        err.check(st);
        return true;
    }

    // Copies the futures' results so that n workers hold each (capped at the
    // workers there are), as Dask's replicate: copies go to the workers
    // holding the fewest bytes, copies beyond n are dropped. Waits for the
    // futures, then for the copies; nullopt at the timeout (the copies go
    // on). Throws for n == 0 or a failed/cancelled future (nothing is copied).
    std::optional<ReplicateReport> replicate(const std::vector<Future>& futures, size_t n,
                                             std::chrono::milliseconds timeout = forever) const {
        std::vector<const rask_future*> p = detail::future_ptrs(futures);
        ReplicateReport r;
        detail::ErrorSlot err;
        rask_status st = rask_client_replicate(c_, p.data(), p.size(), n, detail::to_ms(timeout), &r.copied,
                                               &r.short_keys, err.out());
        if (st == RASK_TIMEOUT) return std::nullopt;
        err.check(st);
        return r;
    }
    // Moves results between workers so that the bytes each holds even out,
    // as Dask's rebalance: only the futures' results, or every result in
    // memory when `futures` is empty. Waits for the futures, then for the
    // moves; nullopt at the timeout (the moves go on). Throws for a
    // failed/cancelled future (nothing moves).
    std::optional<RebalanceReport> rebalance(const std::vector<Future>& futures = {},
                                             std::chrono::milliseconds timeout = forever) const {
        std::vector<const rask_future*> p = detail::future_ptrs(futures);
        RebalanceReport r;
        detail::ErrorSlot err;
        rask_status st = rask_client_rebalance(c_, p.empty() ? nullptr : p.data(), p.size(), detail::to_ms(timeout),
                                               &r.moved, &r.bytes, err.out());
        if (st == RASK_TIMEOUT) return std::nullopt;
        err.check(st);
        return r;
    }

    // Futures in the order they finish (see AsCompleted).
    AsCompleted as_completed(const std::vector<Future>& futures = {}) const {
        std::vector<const rask_future*> p = detail::future_ptrs(futures);
        rask_as_completed* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_as_completed_new(c_, p.data(), p.size(), &out, err.out()));
        return AsCompleted(out);
    }

    // ---- coordination objects held by the scheduler (docs/c-api.md,
    // "Coordination"). A get or put that runs out of `timeout` throws
    // rask::Error with status RASK_TIMEOUT and a message naming the object.
    void variable_set(std::string_view name, const Value& v) const { put_item(rask_client_variable_set, name, v.get(), nullptr); }
    void variable_set(std::string_view name, const Future& f) const { put_item(rask_client_variable_set, name, nullptr, f.get()); }
    Item variable_get(std::string_view name, std::chrono::milliseconds timeout = forever) const {
        std::string n(name);
        return take_item([&](rask_value** v, rask_future** f, rask_error** e) {
            return rask_client_variable_get(c_, n.c_str(), detail::to_ms(timeout), v, f, e);
        });
    }
    void variable_delete(std::string_view name) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_variable_delete(c_, n.c_str(), err.out()));
    }
    void queue_create(std::string_view name, uint64_t maxsize = 0) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_queue_create(c_, n.c_str(), maxsize, err.out()));
    }
    void queue_put(std::string_view name, const Value& v, std::chrono::milliseconds timeout = forever) const {
        queue_put_impl(name, v.get(), nullptr, timeout);
    }
    void queue_put(std::string_view name, const Future& f, std::chrono::milliseconds timeout = forever) const {
        queue_put_impl(name, nullptr, f.get(), timeout);
    }
    Item queue_get(std::string_view name, std::chrono::milliseconds timeout = forever) const {
        std::string n(name);
        return take_item([&](rask_value** v, rask_future** f, rask_error** e) {
            return rask_client_queue_get(c_, n.c_str(), detail::to_ms(timeout), v, f, e);
        });
    }
    uint64_t queue_size(std::string_view name) const {
        std::string n(name);
        uint64_t out = 0;
        detail::ErrorSlot err;
        err.check(rask_client_queue_size(c_, n.c_str(), &out, err.out()));
        return out;
    }
    // A lease of the semaphore `name` (a lock: max_leases 1), or nullopt
    // when none came free within `timeout`.
    std::optional<uint64_t> lease_acquire(std::string_view name, uint32_t max_leases = 1,
                                          std::chrono::milliseconds timeout = forever) const {
        std::string n(name);
        uint64_t lease = 0;
        detail::ErrorSlot err;
        rask_status st = rask_client_lease_acquire(c_, n.c_str(), max_leases, detail::to_ms(timeout), &lease, err.out());
        if (st == RASK_TIMEOUT) return std::nullopt;
        err.check(st);
        return lease;
    }
    void lease_release(std::string_view name, uint64_t lease) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_lease_release(c_, n.c_str(), lease, err.out()));
    }
    void event_set(std::string_view name) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_event_set(c_, n.c_str(), err.out()));
    }
    void event_clear(std::string_view name) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_event_clear(c_, n.c_str(), err.out()));
    }
    // Whether the event is set (waiting up to `timeout` for it).
    bool event_wait(std::string_view name, std::chrono::milliseconds timeout = forever) const {
        std::string n(name);
        bool set = false;
        detail::ErrorSlot err;
        err.check(rask_client_event_wait(c_, n.c_str(), detail::to_ms(timeout), &set, err.out()));
        return set;
    }
    void publish_dataset(std::string_view name, const Future& f, bool replace = false) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_publish_dataset(c_, n.c_str(), nullptr, f.get(), replace, err.out()));
    }
    void publish_dataset(std::string_view name, const Value& v, bool replace = false) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_publish_dataset(c_, n.c_str(), v.get(), nullptr, replace, err.out()));
    }
    Item get_dataset(std::string_view name) const {
        std::string n(name);
        return take_item([&](rask_value** v, rask_future** f, rask_error** e) {
            return rask_client_get_dataset(c_, n.c_str(), v, f, e);
        });
    }
    void unpublish_dataset(std::string_view name) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_unpublish_dataset(c_, n.c_str(), err.out()));
    }
    std::vector<std::string> list_datasets() const {
        rask_value* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_client_list_datasets(c_, &out, err.out()));
        return Value(out).to<std::vector<std::string>>();
    }
    // The futures' tasks run to the end even when no future on them is left.
    void fire_and_forget(const std::vector<Future>& futures) const {
        std::vector<const rask_future*> p = detail::future_ptrs(futures);
        detail::ErrorSlot err;
        err.check(rask_client_fire_and_forget(c_, p.data(), p.size(), err.out()));
    }
    void publish(std::string_view topic, const Value& v) const {
        std::string t(topic);
        detail::ErrorSlot err;
        err.check(rask_client_publish(c_, t.c_str(), v.get(), err.out()));
    }
    Subscription subscribe(std::string_view topic) const {
        std::string t(topic);
        rask_subscription* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_client_subscribe(c_, t.c_str(), &out, err.out()));
        return Subscription(out);
    }

    // The scheduler's dashboard, "http://HOST:PORT/status", as its welcome
    // said; "" when it serves none (as Dask's client.dashboard_link).
    std::string dashboard_link() const { return rask_client_dashboard_link(c_); }
    const rask_client* get() const noexcept { return c_; }
    bool valid() const noexcept { return c_ != nullptr; }

private:
    template <class F>
    void put_item(F f, std::string_view name, const rask_value* v, const rask_future* fu) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(f(c_, n.c_str(), v, fu, err.out()));
    }
    void queue_put_impl(std::string_view name, const rask_value* v, const rask_future* f,
                        std::chrono::milliseconds timeout) const {
        std::string n(name);
        detail::ErrorSlot err;
        err.check(rask_client_queue_put(c_, n.c_str(), v, f, detail::to_ms(timeout), err.out()));
    }
    template <class Call>
    static Item take_item(Call call) {
        rask_value* v = nullptr;
        rask_future* f = nullptr;
        detail::ErrorSlot err;
        err.check(call(&v, &f, err.out()));
        if (f) return Future(f);
        return Value(v);
    }

    template <class It>
    Future submit_impl(std::string_view func, It first, It last, size_t n, const SubmitOptions* options) const {
        std::string f(func);
        detail::ArgArray args(n);
        detail::make_args(args, first, last);
        rask_future* out = nullptr;
        detail::ErrorSlot err;
        rask_status st;
        if (options) {
            rask_submit_options o{};
            o.key = detail::opt(options->key);
            o.impure = options->impure;
            o.retries = options->retries;
            st = rask_client_submit_with(c_, f.c_str(), args.data(), args.size(), &o, &out, err.out());
        } else {
            st = rask_client_submit(c_, f.c_str(), args.data(), args.size(), &out, err.out());
        }
        args.consumed();  // consumed even on failure
        err.check(st);
        return Future(out);
    }
    template <class It>
    std::vector<Future> map_impl(std::string_view func, It first, It last, size_t ncalls, size_t per) const {
        std::string f(func);
        detail::ArgArray args(ncalls * per);
        detail::make_args(args, first, last);
        detail::FutureArray out(ncalls);
        detail::ErrorSlot err;
        rask_status st = rask_client_map(c_, f.c_str(), args.data(), ncalls, per, out.v.data(), err.out());
        args.consumed();
        err.check(st);
        return out.take();
    }
    rask_client* c_ = nullptr;
};

// A scheduler and its workers in this process, over loopback TCP. Every
// worker gets a copy of the registry (its C++ functions run on the workers'
// threads); pulled functions are refused: start a Worker for those.
class Cluster {
public:
    explicit Cluster(const ClusterOptions& options = {}) : Cluster(options, nullptr) {}
    Cluster(const ClusterOptions& options, const Registry& registry) : Cluster(options, &registry) {}
    explicit Cluster(const Registry& registry) : Cluster(ClusterOptions{}, &registry) {}
    Cluster(Cluster&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    Cluster& operator=(Cluster&& o) noexcept {
        if (this != &o) {
            rask_cluster_free(c_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;
    // Stops the workers (waiting for running callbacks), then the scheduler.
    ~Cluster() { rask_cluster_free(c_); }

    // The scheduler's "tcp://HOST:PORT".
    std::string address() const { return rask_cluster_address(c_); }
    // Its scheduler's dashboard, "http://HOST:PORT/status"; "" when none.
    std::string dashboard_link() const { return rask_cluster_dashboard_link(c_); }
    // A new client of this cluster (with its token and timeout).
    Client client() const {
        rask_client* out = nullptr;
        detail::ErrorSlot err;
        err.check(rask_cluster_client(c_, &out, err.out()));
        return Client(out);
    }
    const rask_cluster* get() const noexcept { return c_; }

private:
    Cluster(const ClusterOptions& options, const Registry* registry) {
        rask_cluster_options o{};
        o.workers = options.workers;
        o.threads_per_worker = options.threads_per_worker;
        o.host = detail::opt(options.host);
        o.scheduler_port = options.scheduler_port;
        o.token = detail::opt(options.token);
        o.timeout_ms = detail::to_ms(options.timeout);
        o.tls_ca_file = detail::opt(options.tls_ca_file);
        o.tls_cert_file = detail::opt(options.tls_cert_file);
        o.tls_key_file = detail::opt(options.tls_key_file);
        o.dashboard_address = detail::opt(options.dashboard_address);
        o.no_dashboard = options.no_dashboard;
        detail::ErrorSlot err;
        err.check(rask_cluster_start(&o, registry ? registry->get() : nullptr, &c_, err.out()));
    }
    rask_cluster* c_ = nullptr;
};

inline Client Task::client() const {
    rask_client* out = nullptr;
    detail::ErrorSlot err;
    err.check(rask_task_client(t_, &out, err.out()));
    return Client(out);
}

// Tasks that submit tasks, from inside a function a worker runs on its
// threads (Registry::add on a Worker's registry): the task's client (the
// worker's shared connection to its scheduler; destroying the Client ends
// only this handle), and secede()/rejoin() around a wait on what it
// submitted, so the worker runs other tasks meanwhile. Each throws
// rask::Error (RASK_ERR_STATE) outside such a function.
inline Client callback_client() {
    rask_client* out = nullptr;
    detail::ErrorSlot err;
    err.check(rask_callback_client(&out, err.out()));
    return Client(out);
}
inline void callback_secede() {
    detail::ErrorSlot err;
    err.check(rask_callback_secede(err.out()));
}
inline void callback_rejoin() {
    detail::ErrorSlot err;
    err.check(rask_callback_rejoin(err.out()));
}

// A worker in this process that joins a scheduler and offers the functions
// of its registry: C++ functions run on its threads, pulled ones are handed
// to the host (next_task / serve).
class Worker {
public:
    Worker(std::string_view scheduler_address, const Registry& registry, const WorkerOptions& options = {})
        : Worker(scheduler_address, &registry, options) {}
    explicit Worker(std::string_view scheduler_address, const WorkerOptions& options = {})
        : Worker(scheduler_address, nullptr, options) {}
    Worker(Worker&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
    Worker& operator=(Worker&& o) noexcept {
        if (this != &o) {
            rask_worker_free(w_);
            w_ = std::exchange(o.w_, nullptr);
        }
        return *this;
    }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    // Stops the worker (it leaves the cluster) and frees it.
    ~Worker() { rask_worker_free(w_); }

    // The data address "tcp://host:port".
    std::string address() const { return rask_worker_address(w_); }
    std::string name() const { return rask_worker_name(w_); }

    // The next task of a pulled function, or nullopt once the worker has stopped.
    std::optional<Task> next_task() { return next_task(forever); }
    // As next_task(), but nullopt also when nothing came within `timeout`:
    // stopped() tells the two apart.
    std::optional<Task> next_task(std::chrono::milliseconds timeout) {
        rask_task* t = nullptr;
        detail::ErrorSlot err;
        rask_status st = rask_worker_next_task(w_, detail::to_ms(timeout), &t, err.out());
        if (st == RASK_TIMEOUT || st == RASK_DONE) return std::nullopt;
        err.check(st);
        return Task(t);
    }
    // Up to `max` tasks of pulled functions in one call (rask_worker_take_tasks):
    // msgpack [[id, key, func, [args...]], ...] (Value::from_msgpack reads it),
    // or nullopt when nothing came within `timeout` or the worker stopped
    // (stopped() tells the two apart). End each task with complete_tasks or
    // detach_task.
    std::optional<Bytes> take_tasks(size_t max, std::chrono::milliseconds timeout = forever) {
        uint8_t* data = nullptr;
        size_t len = 0;
        detail::ErrorSlot err;
        rask_status st = rask_worker_take_tasks(w_, max, detail::to_ms(timeout), &data, &len, err.out());
        if (st == RASK_TIMEOUT || st == RASK_DONE) return std::nullopt;
        err.check(st);
        struct Free {
            uint8_t* d;
            size_t n;
            ~Free() { rask_buffer_free(d, n); }
        } guard{data, len};
        return Bytes(data, data + len);
    }
    // Ends many taken tasks in one call (rask_worker_complete_tasks): msgpack
    // [[id, true, value] | [id, false, message(, exception, traceback)], ...].
    // Throws (ending nothing) on a bad buffer; false when some result was
    // discarded because nobody wants it any more.
    bool complete_tasks(const Bytes& results) {
        detail::ErrorSlot err;
        rask_status st = rask_worker_complete_tasks(w_, results.data(), results.size(), err.out());
        if (st == RASK_DONE) return false;
        err.check(st);
        return true;
    }
    // Hands the taken task `id` over to a Task (rask_worker_detach_task).
    Task detach_task(uint64_t id) {
        rask_task* t = nullptr;
        detail::ErrorSlot err;
        err.check(rask_worker_detach_task(w_, id, &t, err.out()));
        return Task(t);
    }
    // Pulls and runs tasks on this thread until the worker stops, as
    // Computation::serve. Returns the number of tasks handled.
    template <class Handler, class = std::enable_if_t<std::is_invocable_v<Handler&, Task&>>>
    size_t serve(Handler&& handler, std::chrono::milliseconds poll = std::chrono::milliseconds(100)) {
        return detail::serve_loop(*this, handler, poll);
    }
    size_t serve(const Functions& functions, std::chrono::milliseconds poll = std::chrono::milliseconds(100)) {
        return serve([&](Task& t) { detail::run_from(t, functions); }, poll);
    }

    // Whether the worker has stopped.
    bool stopped() const noexcept { return rask_worker_stop_reason(w_) != nullptr; }
    // Waits until the worker stops: returns on a clean stop, throws
    // ConnectionError when the connection to the scheduler was lost.
    void wait() { wait(forever); }
    // As wait(); false if it still runs after `timeout`.
    bool wait(std::chrono::milliseconds timeout) {
        detail::ErrorSlot err;
        rask_status st = rask_worker_wait(w_, detail::to_ms(timeout), err.out());
        if (st == RASK_TIMEOUT) return false;
        err.check(st);
        return true;
    }
    // Why it stopped, or nullopt while it runs.
    std::optional<std::string> stop_reason() const {
        const char* r = rask_worker_stop_reason(w_);
        if (!r) return std::nullopt;
        return std::string(r);
    }
    // Leaves the cluster; pulling threads see the end.
    void stop() {
        detail::ErrorSlot err;
        err.check(rask_worker_stop(w_, err.out()));
    }
    // Leaves gracefully, as rask-worker on SIGTERM: results only it holds
    // move to other workers, running tasks (pulled ones held by the host
    // too) finish, then the scheduler closes it. Returns at once.
    void retire() {
        detail::ErrorSlot err;
        err.check(rask_worker_retire(w_, err.out()));
    }

    const rask_worker* get() const noexcept { return w_; }

private:
    Worker(std::string_view scheduler_address, const Registry* registry, const WorkerOptions& options) {
        std::string a(scheduler_address);
        rask_worker_options o{};
        o.name = detail::opt(options.name);
        o.threads = options.threads;
        o.host = detail::opt(options.host);
        o.data_port = options.data_port;
        o.memory_limit = options.memory_limit;
        o.token = detail::opt(options.token);
        o.heartbeat_ms = detail::to_ms(options.heartbeat);
        o.connect_timeout_ms = detail::to_ms(options.connect_timeout);
        o.tls_ca_file = detail::opt(options.tls_ca_file);
        o.tls_cert_file = detail::opt(options.tls_cert_file);
        o.tls_key_file = detail::opt(options.tls_key_file);
        o.memory_target_fraction = options.memory_target_fraction;
        o.memory_spill_fraction = options.memory_spill_fraction;
        o.memory_pause_fraction = options.memory_pause_fraction;
        o.memory_terminate_fraction = options.memory_terminate_fraction;
        o.local_directory = detail::opt(options.local_directory);
        o.spill_compression = options.spill_compression ? 0 : 1;
        o.pull_threads = options.pull_threads;
        o.runtime = options.runtime.empty() ? "c++" : options.runtime.c_str();
        detail::ErrorSlot err;
        err.check(rask_worker_start(a.c_str(), &o, registry ? registry->get() : nullptr, &w_, err.out()));
    }
    template <class Source, class Handler>
    friend size_t detail::serve_loop(Source&, Handler&, std::chrono::milliseconds);
    bool ended() const noexcept { return stopped(); }
    rask_worker* w_ = nullptr;
};

}  // namespace rask

#endif  // RASK_HPP
