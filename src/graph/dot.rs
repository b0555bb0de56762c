//! A graph as Graphviz DOT text ([`Graph::to_dot`]), for pictures of it
//! (`rask_graph_to_dot`, Python's and Julia's `visualize`).

use super::{Graph, KeyId, Node};
use std::fmt::Write;

/// A DOT double-quoted string: backslashes, quotes and line breaks escaped.
fn quoted(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => {}
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Graph {
    /// The graph as a Graphviz `digraph`, dependencies pointing to the
    /// tasks that use them: a task is an ellipse labelled with its key and
    /// its function, a literal value a box labelled with its key, and a key
    /// that is referenced but not defined a dashed red box. Keys appear in
    /// the order they were added; the text is the same for the same graph.
    pub fn to_dot(&self) -> String {
        let mut o = String::from(
            "digraph rask {\n  rankdir=BT;\n  node [fontname=\"sans-serif\", fontsize=10];\n",
        );
        let n = self.key_capacity();
        for i in 0..n {
            let k = KeyId(i as u32);
            let name = self.key_name(k);
            let _ = match self.node(k) {
                Some(Node::Task(t)) => writeln!(
                    o,
                    "  k{i} [shape=ellipse, label={}, tooltip={}];",
                    quoted(&format!("{name}\n{}", self.func_name(t.func))),
                    quoted(name)
                ),
                Some(Node::Value(_)) => writeln!(
                    o,
                    "  k{i} [shape=box, label={}, tooltip={}];",
                    quoted(name),
                    quoted(name)
                ),
                None => writeln!(
                    o,
                    "  k{i} [shape=box, style=dashed, color=red, label={}];",
                    quoted(&format!("{name}\n(missing)"))
                ),
            };
        }
        for i in 0..n {
            if let Some(Node::Task(t)) = self.node(KeyId(i as u32)) {
                for a in &t.args {
                    a.for_each_ref(&mut |d| {
                        let _ = writeln!(o, "  k{} -> k{i};", d.0);
                    });
                }
            }
        }
        o.push_str("}\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{Arg, Graph};

    #[test]
    fn tasks_values_edges_and_escapes() {
        let mut g = Graph::new();
        g.add_value("a", 1).unwrap();
        let a = g.r("a").unwrap();
        let q = g.r("say \"hi\"\\").unwrap();
        g.add_task("b", "inc", vec![a]).unwrap();
        let b = g.r("b").unwrap();
        g.add_task("c", "add", vec![Arg::List(vec![b, q])]).unwrap();
        let dot = g.to_dot();
        assert!(dot.starts_with("digraph rask {\n"), "{dot}");
        assert!(dot.ends_with("}\n"));
        assert!(dot.contains("k0 [shape=box, label=\"a\""), "{dot}");
        assert!(
            dot.contains(
                "k1 [shape=box, style=dashed, color=red, label=\"say \\\"hi\\\"\\\\\\n(missing)\"]"
            ),
            "{dot}"
        );
        assert!(
            dot.contains("k2 [shape=ellipse, label=\"b\\ninc\""),
            "{dot}"
        );
        for e in ["k0 -> k2;", "k2 -> k3;", "k1 -> k3;"] {
            assert!(dot.contains(e), "{e} in {dot}");
        }
        assert_eq!(dot.matches("->").count(), 3);
        assert_eq!(Graph::new().to_dot().matches("->").count(), 0);
    }
}
