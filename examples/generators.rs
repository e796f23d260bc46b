// Run: cargo run --example generators
//
// The seeds' generator programs, with greenhouse's stackful generators:
//
// - Fibonacci(10): a generator used as an iterator.
// - jump_range(6): `send` passes a value into the pending `yield_`
//   (Python's `jump = yield idx`).
// - The averager with a delegating generator: Python needs `yield from` to
//   plumb values and the return value through `proxy_gen`; here the
//   sub-generator is a plain function call that yields through the same
//   `Yielder` and returns its result.
//
// Each part returns its output lines, which `main` prints; the generator
// bodies print through a shared `Out` so the lines keep their order.
// tests/examples_output.rs includes this file and checks the same lines.

use std::cell::RefCell;
use std::rc::Rc;

use greenhouse::generator::{Builder, Generator, Yielder};

/// Output lines, shared between the caller and a generator body.
pub type Out = Rc<RefCell<Vec<String>>>;

/// `Fibonacci(all_num)`: the first `all_num` Fibonacci numbers.
pub fn fibonacci(all_num: usize) -> Generator<u64> {
    Generator::new(move |y| {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..all_num {
            y.yield_(a);
            (a, b) = (b, a + b);
        }
    })
    .expect("cannot create a generator")
}

/// `for num in Fibonacci(10): print(num)`
pub fn fibonacci_lines() -> Vec<String> {
    fibonacci(10).map(|n| n.to_string()).collect()
}

/// `jump_range(n)`: yields 0, 1, 2, ... below `n`; a value sent in (Python:
/// `jump = yield idx`) is the next step instead of 1.
pub fn jump_range(n: i64, out: Out) -> Generator<i64, (), Option<i64>> {
    Builder::new()
        .create(move |y: &Yielder<i64, Option<i64>>| {
            let mut idx = 0;
            while idx < n {
                let jump = y.yield_(idx);
                let shown = jump.map_or("None".to_string(), |j| j.to_string());
                out.borrow_mut()
                    .push(format!("[idx: {idx}, jump: {shown}]"));
                idx += jump.unwrap_or(1);
            }
        })
        .expect("cannot create a generator")
}

/// The seed's driver: `next`, `send(2)`, `next`, `send(-1)`, `next`, `next`,
/// printing each value.
pub fn jump_range_lines() -> Vec<String> {
    let out: Out = Rc::default();
    let mut itr = jump_range(6, out.clone());
    let show = |v: Option<i64>| {
        let line = v.map_or("StopIteration".to_string(), |v| v.to_string());
        out.borrow_mut().push(line);
    };
    show(itr.next());
    show(itr.send(Some(2)));
    show(itr.next());
    show(itr.send(Some(-1)));
    show(itr.next());
    show(itr.next());
    let lines = out.borrow().clone();
    lines
}

/// What `average_gen` returns: Python's `return total, count, average`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Sum of the numbers sent.
    pub total: f64,
    /// How many numbers were sent.
    pub count: u32,
    /// Their mean.
    pub average: f64,
}

/// The sub-generator: receives numbers, yields the running average, and
/// returns a summary when sent `None`. Yields through the delegator's
/// yielder: a plain call replaces `yield from`.
pub fn average_gen(y: &Yielder<f64, Option<f64>>) -> Summary {
    let (mut total, mut count, mut average) = (0.0, 0, 0.0);
    while let Some(num) = y.yield_(average) {
        count += 1;
        total += num;
        average = total / count as f64;
    }
    Summary {
        total,
        count,
        average,
    }
}

/// The delegating generator: runs `average_gen` again and again, printing
/// each summary.
pub fn proxy_gen(out: Out) -> Generator<f64, (), Option<f64>> {
    Builder::new()
        .create(move |y: &Yielder<f64, Option<f64>>| loop {
            let Summary {
                total,
                count,
                average,
            } = average_gen(y);
            out.borrow_mut().push(format!(
                "计算完毕，共输入 {count} 个数值，总和 {total}，平均值 {average:.1}"
            ));
        })
        .expect("cannot create a generator")
}

/// The seed's caller: prime with `next`, send 10, 20, 30 printing each
/// average, then send `None` to finish the round.
pub fn averager_lines() -> Vec<String> {
    let out: Out = Rc::default();
    let mut calc_average = proxy_gen(out.clone());
    calc_average.next();
    for n in [10.0, 20.0, 30.0] {
        let avg = calc_average.send(Some(n)).expect("the averager never ends");
        out.borrow_mut().push(format!("{avg:.1}"));
    }
    calc_average.send(None);
    let lines = out.borrow().clone();
    lines
}

fn main() {
    println!("# Fibonacci(10)");
    for line in fibonacci_lines() {
        println!("{line}");
    }
    println!("# jump_range(6) with send");
    for line in jump_range_lines() {
        println!("{line}");
    }
    println!("# averager with a delegating generator");
    for line in averager_lines() {
        println!("{line}");
    }
}
