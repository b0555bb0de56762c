// 02_msgpack_graph.c: hand rask a whole graph as one msgpack document.
//
// The document (docs/graph-spec.md) is the classic graph
//
//     {"tasks": {"a": {"value": 1}, "x": {"value": 10},
//                "b": {"func": "inc", "args": [{"ref": "a"}]},
//                "y": {"func": "inc", "args": [{"ref": "x"}]},
//                "z": {"func": "add", "args": [{"ref": "b"}, {"ref": "y"}]}},
//      "outputs": ["z"]}
//
// written byte by byte with a dozen lines of msgpack encoding: no msgpack
// library needed for small documents. `inc` and `add` are rask builtins.
//
// expect: document: 121 bytes, same as docs/graph-spec.md
// expect: graph: 5 keys, output z
// expect: z = 13
// expect: z as msgpack: 0d

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rask.h"

static void check(rask_status status, rask_error *err, const char *what) {
    if (status == RASK_OK) {
        return;
    }
    fprintf(stderr, "%s failed: %s: %s\n", what, rask_status_name(status),
            rask_error_message(err));
    rask_error_free(err);
    exit(1);
}

// ---------------------------------------------------------------------------
// A tiny msgpack writer: just the small forms this document needs.

typedef struct {
    uint8_t bytes[512];
    size_t len;
} buffer;

static void put_byte(buffer *b, uint8_t byte) {
    if (b->len == sizeof b->bytes) {
        fprintf(stderr, "document too large\n");
        exit(1);
    }
    b->bytes[b->len++] = byte;
}

// fixmap: a map of up to 15 entries (keys and values follow).
static void put_map(buffer *b, unsigned entries) { put_byte(b, (uint8_t)(0x80 | entries)); }

// fixarray: an array of up to 15 elements.
static void put_array(buffer *b, unsigned elements) { put_byte(b, (uint8_t)(0x90 | elements)); }

// fixstr: a string of up to 31 bytes.
static void put_str(buffer *b, const char *s) {
    size_t n = strlen(s);
    put_byte(b, (uint8_t)(0xa0 | n));
    for (size_t i = 0; i < n; i++) {
        put_byte(b, (uint8_t)s[i]);
    }
}

// positive fixint: 0 to 127.
static void put_small_int(buffer *b, unsigned v) { put_byte(b, (uint8_t)v); }

// {"ref": key}: an argument that is the value of another key.
static void put_ref(buffer *b, const char *key) {
    put_map(b, 1);
    put_str(b, "ref");
    put_str(b, key);
}

// "key": {"value": v}
static void put_literal(buffer *b, const char *key, unsigned v) {
    put_str(b, key);
    put_map(b, 1);
    put_str(b, "value");
    put_small_int(b, v);
}

// "key": {"func": func, "args": [{"ref": r0}, {"ref": r1}, ...]}
static void put_task(buffer *b, const char *key, const char *func, const char **refs,
                     unsigned nrefs) {
    put_str(b, key);
    put_map(b, 2);
    put_str(b, "func");
    put_str(b, func);
    put_str(b, "args");
    put_array(b, nrefs);
    for (unsigned i = 0; i < nrefs; i++) {
        put_ref(b, refs[i]);
    }
}

int main(void) {
    buffer doc = {{0}, 0};
    put_map(&doc, 2);
    put_str(&doc, "tasks");
    put_map(&doc, 5);
    put_literal(&doc, "a", 1);
    put_literal(&doc, "x", 10);
    const char *b_refs[] = {"a"};
    const char *y_refs[] = {"x"};
    const char *z_refs[] = {"b", "y"};
    put_task(&doc, "b", "inc", b_refs, 1);
    put_task(&doc, "y", "inc", y_refs, 1);
    put_task(&doc, "z", "add", z_refs, 2);
    put_str(&doc, "outputs");
    put_array(&doc, 1);
    put_str(&doc, "z");

    // The spec's worked example, as checked bytes: ours must be identical.
    static const char spec_hex[] =
        "82a57461736b7385a16181a576616c756501a17881a576616c75650aa16282a466756e63a3696e63"
        "a4617267739181a3726566a161a17982a466756e63a3696e63a4617267739181a3726566a178a17a"
        "82a466756e63a3616464a4617267739281a3726566a16281a3726566a179a76f75747075747391a1"
        "7a";
    int same = doc.len * 2 == strlen(spec_hex);
    for (size_t i = 0; same && i < doc.len; i++) {
        unsigned byte;
        same = sscanf(spec_hex + 2 * i, "%2x", &byte) == 1 && byte == doc.bytes[i];
    }
    printf("document: %zu bytes, %s docs/graph-spec.md\n", doc.len,
           same ? "same as" : "DIFFERENT from");

    // Decode it: rask copies the bytes, checks the document, and keeps its
    // "outputs" list with the graph.
    rask_error *err = NULL;
    rask_graph *graph = NULL;
    check(rask_graph_from_msgpack(doc.bytes, doc.len, &graph, &err), err, "decoding");
    if (rask_graph_doc_output_count(graph) != 1) {
        fprintf(stderr, "expected one output\n");
        return 1;
    }
    const char *output = rask_graph_doc_output(graph, 0);  // borrowed from graph
    printf("graph: %zu keys, output %s\n", rask_graph_len(graph), output);

    // Compute the document's output with the builtins only (registry NULL).
    rask_value *z = NULL;
    check(rask_compute(graph, &output, 1, NULL, NULL, &z, NULL, &err), err, "computing");
    int64_t value;
    check(rask_value_get_int(z, &value, &err), err, "reading z");
    printf("z = %" PRId64 "\n", value);

    // Values encode to msgpack too; the buffer is rask's, freed by rask.
    uint8_t *bytes = NULL;
    size_t len = 0;
    check(rask_value_to_msgpack(z, &bytes, &len, &err), err, "encoding z");
    printf("z as msgpack:");
    for (size_t i = 0; i < len; i++) {
        printf(" %02x", bytes[i]);
    }
    printf("\n");
    rask_buffer_free(bytes, len);

    rask_value_free(z);
    rask_graph_free(graph);
    return same && value == 13 ? 0 : 1;
}
