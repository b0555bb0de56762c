//! Functions every registry and every worker has.
//!
//! | name       | arguments                 | result                                        |
//! |------------|---------------------------|-----------------------------------------------|
//! | `noop`     | any                       | nil (for benchmarks)                          |
//! | `identity` | x                         | x                                             |
//! | `list`     | any                       | the arguments as an array                     |
//! | `inc`      | x                         | x + 1                                         |
//! | `dec`      | x                         | x - 1                                         |
//! | `neg`      | x                         | -x                                            |
//! | `add`      | a, b, ...                 | a + b + ... (numbers; strs, arrays, bins concatenate) |
//! | `sub`      | a, b                      | a - b                                         |
//! | `mul`      | a, b, ...                 | a × b × ...                                   |
//! | `div`      | a, b                      | a / b as a float (error on division by zero)  |
//! | `sum`      | [x, ...] or x, ...        | the numeric sum (0 for none)                  |
//! | `max`/`min`| [x, ...] or x, ...        | the largest / smallest number                 |
//! | `len`      | x                         | length of a str (bytes), bin, array, map, or tensor elements |
//! | `getitem`  | container, index          | `array[i]` (negative from the end), `map[key]`, tensor element |
//!
//! Integer arithmetic is checked: an overflow is an error, not a wrap.
//! Mixing an integer with a float gives a float.

use crate::registry::{BuiltinFn, FnResult};
use crate::value::Value;

/// The builtin names, sorted.
pub const NAMES: &[&str] = &[
    "add", "dec", "div", "getitem", "identity", "inc", "len", "list", "max", "min", "mul", "neg",
    "noop", "sub", "sum",
];

/// The builtin named `name`.
pub fn lookup(name: &str) -> Option<BuiltinFn> {
    Some(match name {
        "noop" => noop,
        "identity" => identity,
        "list" => list,
        "inc" => inc,
        "dec" => dec,
        "neg" => neg,
        "add" => add,
        "sub" => sub,
        "mul" => mul,
        "div" => div,
        "sum" => sum,
        "max" => max,
        "min" => min,
        "len" => len,
        "getitem" => getitem,
        _ => return None,
    })
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "{name} takes {n} argument{}, got {}",
            if n == 1 { "" } else { "s" },
            args.len()
        ));
    }
    Ok(())
}

fn noop(_: &[Value]) -> FnResult {
    Ok(Value::Nil)
}

fn identity(a: &[Value]) -> FnResult {
    arity("identity", a, 1)?;
    Ok(a[0].clone())
}

fn list(a: &[Value]) -> FnResult {
    Ok(Value::Array(a.to_vec()))
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
}

/// A number as i128 or f64, to do checked integer arithmetic over i64 and u64.
#[derive(Clone, Copy)]
enum Num {
    I(i128),
    F(f64),
}

fn num(op: &str, v: &Value) -> Result<Num, String> {
    match *v {
        Value::Int(i) => Ok(Num::I(i as i128)),
        Value::UInt(u) => Ok(Num::I(u as i128)),
        Value::Float(f) => Ok(Num::F(f)),
        Value::Bool(b) => Ok(Num::I(b as i128)),
        _ => Err(format!("{op}: expected a number, got {}", v.kind_name())),
    }
}

fn to_value(op: &str, n: Num) -> FnResult {
    match n {
        Num::F(f) => Ok(Value::Float(f)),
        Num::I(i) => {
            if let Ok(v) = i64::try_from(i) {
                Ok(Value::Int(v))
            } else if let Ok(v) = u64::try_from(i) {
                Ok(Value::UInt(v))
            } else {
                Err(format!("{op}: integer overflow"))
            }
        }
    }
}

fn arith(op: Op, a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::I(x), Num::I(y)) => Num::I(match op {
            Op::Add => x.saturating_add(y),
            Op::Sub => x.saturating_sub(y),
            Op::Mul => x.saturating_mul(y),
        }),
        _ => {
            let (x, y) = (as_f(a), as_f(b));
            Num::F(match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
            })
        }
    }
}

fn as_f(n: Num) -> f64 {
    match n {
        Num::I(i) => i as f64,
        Num::F(f) => f,
    }
}

/// Folds numbers with `op`, checking for overflow at each step.
fn fold(name: &str, op: Op, init: Num, items: &[Value]) -> FnResult {
    let mut acc = init;
    for v in items {
        acc = arith(op, acc, num(name, v)?);
        if let Num::I(i) = acc {
            if i64::try_from(i).is_err() && u64::try_from(i).is_err() {
                return Err(format!("{name}: integer overflow"));
            }
        }
    }
    to_value(name, acc)
}

fn inc(a: &[Value]) -> FnResult {
    arity("inc", a, 1)?;
    to_value("inc", arith(Op::Add, num("inc", &a[0])?, Num::I(1)))
}

fn dec(a: &[Value]) -> FnResult {
    arity("dec", a, 1)?;
    to_value("dec", arith(Op::Sub, num("dec", &a[0])?, Num::I(1)))
}

fn neg(a: &[Value]) -> FnResult {
    arity("neg", a, 1)?;
    to_value("neg", arith(Op::Sub, Num::I(0), num("neg", &a[0])?))
}

fn add(a: &[Value]) -> FnResult {
    if a.is_empty() {
        return Err("add takes at least 1 argument, got 0".into());
    }
    match &a[0] {
        Value::Str(_) => {
            let mut s = String::new();
            for v in a {
                s.push_str(
                    v.as_str()
                        .ok_or_else(|| format!("add: cannot add {} to str", v.kind_name()))?,
                );
            }
            Ok(Value::Str(s))
        }
        Value::Array(_) => {
            let mut out = Vec::new();
            for v in a {
                out.extend_from_slice(
                    v.as_array()
                        .ok_or_else(|| format!("add: cannot add {} to array", v.kind_name()))?,
                );
            }
            Ok(Value::Array(out))
        }
        Value::Bin(_) => {
            let mut out = Vec::new();
            for v in a {
                out.extend_from_slice(
                    v.as_bytes()
                        .ok_or_else(|| format!("add: cannot add {} to bin", v.kind_name()))?,
                );
            }
            Ok(Value::Bin(out.into()))
        }
        _ => fold("add", Op::Add, Num::I(0), a),
    }
}

fn sub(a: &[Value]) -> FnResult {
    arity("sub", a, 2)?;
    to_value(
        "sub",
        arith(Op::Sub, num("sub", &a[0])?, num("sub", &a[1])?),
    )
}

fn mul(a: &[Value]) -> FnResult {
    if a.is_empty() {
        return Err("mul takes at least 1 argument, got 0".into());
    }
    fold("mul", Op::Mul, Num::I(1), a)
}

fn div(a: &[Value]) -> FnResult {
    arity("div", a, 2)?;
    let x = as_f(num("div", &a[0])?);
    let y = as_f(num("div", &a[1])?);
    if y == 0.0 {
        return Err("div: division by zero".into());
    }
    Ok(Value::Float(x / y))
}

/// The items of a reduction: one array argument, or the arguments themselves.
fn items(a: &[Value]) -> &[Value] {
    match a {
        [Value::Array(items)] => items,
        _ => a,
    }
}

fn sum(a: &[Value]) -> FnResult {
    if let [Value::Tensor(t)] = a {
        return Ok(Value::Float(t.to_f64_vec().iter().sum()));
    }
    fold("sum", Op::Add, Num::I(0), items(a))
}

fn extreme(name: &str, a: &[Value], want_greater: bool) -> FnResult {
    let items = items(a);
    let mut best: Option<(Num, &Value)> = None;
    for v in items {
        let n = num(name, v)?;
        let better = match best {
            None => true,
            Some((b, _)) => match (n, b) {
                (Num::I(x), Num::I(y)) => (x > y) == want_greater && x != y,
                _ => {
                    let (x, y) = (as_f(n), as_f(b));
                    (x > y) == want_greater && x != y
                }
            },
        };
        if better {
            best = Some((n, v));
        }
    }
    best.map(|(_, v)| v.clone())
        .ok_or_else(|| format!("{name} of an empty sequence"))
}

fn max(a: &[Value]) -> FnResult {
    extreme("max", a, true)
}

fn min(a: &[Value]) -> FnResult {
    extreme("min", a, false)
}

fn len(a: &[Value]) -> FnResult {
    arity("len", a, 1)?;
    let n = match &a[0] {
        Value::Str(s) => s.len(),
        Value::Bin(b) => b.len(),
        Value::Array(x) => x.len(),
        Value::Map(m) => m.len(),
        Value::Tensor(t) => t.len(),
        v => return Err(format!("len: {} has no length", v.kind_name())),
    };
    Ok(Value::from(n))
}

fn getitem(a: &[Value]) -> FnResult {
    arity("getitem", a, 2)?;
    let (c, i) = (&a[0], &a[1]);
    let index = |n: usize| -> Result<usize, String> {
        let raw = i
            .as_i64()
            .ok_or_else(|| format!("getitem: index must be an int, got {}", i.kind_name()))?;
        let idx = if raw < 0 { raw + n as i64 } else { raw };
        if idx < 0 || idx as usize >= n {
            return Err(format!("getitem: index {raw} out of range for length {n}"));
        }
        Ok(idx as usize)
    };
    match c {
        Value::Array(x) => Ok(x[index(x.len())?].clone()),
        Value::Tensor(t) => Ok(t.get_flat(index(t.len())?).expect("index checked")),
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| k == i)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("getitem: key {i:?} not in map")),
        v => Err(format!("getitem: cannot index {}", v.kind_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Tensor;

    fn call(name: &str, args: &[Value]) -> FnResult {
        lookup(name).unwrap()(args)
    }

    #[test]
    fn names_are_sorted_and_resolve() {
        let mut sorted = NAMES.to_vec();
        sorted.sort();
        assert_eq!(sorted, NAMES);
        for n in NAMES {
            assert!(lookup(n).is_some(), "{n}");
        }
        assert!(lookup("nope").is_none());
    }

    #[test]
    fn arithmetic() {
        let i = Value::Int;
        assert_eq!(call("inc", &[i(1)]), Ok(i(2)));
        assert_eq!(call("dec", &[i(1)]), Ok(i(0)));
        assert_eq!(call("neg", &[i(3)]), Ok(i(-3)));
        assert_eq!(call("add", &[i(1), i(2), i(3)]), Ok(i(6)));
        assert_eq!(
            call("add", &[i(1), Value::Float(0.5)]),
            Ok(Value::Float(1.5))
        );
        assert_eq!(call("sub", &[i(1), i(3)]), Ok(i(-2)));
        assert_eq!(call("mul", &[i(4), i(3)]), Ok(i(12)));
        assert_eq!(call("div", &[i(3), i(2)]), Ok(Value::Float(1.5)));
        assert!(call("div", &[i(3), i(0)]).unwrap_err().contains("zero"));
        assert!(call("inc", &[i(i64::MAX)]).is_ok()); // becomes a UInt
        assert!(call("mul", &[i(i64::MAX), i(4)])
            .unwrap_err()
            .contains("overflow"));
        assert!(call("inc", &[Value::from("x")])
            .unwrap_err()
            .contains("expected a number"));
        assert!(call("inc", &[]).unwrap_err().contains("takes 1 argument"));
        assert_eq!(
            call("add", &[Value::from("ab"), Value::from("c")]),
            Ok(Value::from("abc"))
        );
    }

    #[test]
    fn reductions_and_access() {
        let arr = Value::Array(vec![Value::Int(3), Value::Int(9), Value::Int(-1)]);
        assert_eq!(call("sum", std::slice::from_ref(&arr)), Ok(Value::Int(11)));
        assert_eq!(
            call("sum", &[Value::Int(1), Value::Int(2)]),
            Ok(Value::Int(3))
        );
        assert_eq!(call("sum", &[Value::Array(vec![])]), Ok(Value::Int(0)));
        assert_eq!(call("max", std::slice::from_ref(&arr)), Ok(Value::Int(9)));
        assert_eq!(call("min", std::slice::from_ref(&arr)), Ok(Value::Int(-1)));
        assert_eq!(call("len", std::slice::from_ref(&arr)), Ok(Value::Int(3)));
        assert_eq!(
            call("getitem", &[arr.clone(), Value::Int(-1)]),
            Ok(Value::Int(-1))
        );
        assert!(call("getitem", &[arr.clone(), Value::Int(3)])
            .unwrap_err()
            .contains("out of range"));
        let m = Value::Map(vec![(Value::from("a"), Value::Int(1))]);
        assert_eq!(
            call("getitem", &[m.clone(), Value::from("a")]),
            Ok(Value::Int(1))
        );
        assert!(call("getitem", &[m, Value::from("b")]).is_err());
        let t = Value::Tensor(Tensor::from_vec(vec![2], vec![1.5f32, 2.5]).unwrap());
        assert_eq!(call("sum", std::slice::from_ref(&t)), Ok(Value::Float(4.0)));
        assert_eq!(
            call("getitem", &[t.clone(), Value::Int(1)]),
            Ok(Value::Float(2.5))
        );
        assert_eq!(call("len", &[t]), Ok(Value::Int(2)));
        assert_eq!(call("noop", &[Value::Int(1)]), Ok(Value::Nil));
        assert_eq!(
            call("list", &[Value::Int(1)]),
            Ok(Value::Array(vec![Value::Int(1)]))
        );
    }
}
