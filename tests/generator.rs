//! Generators: iteration, send, nested yields, return value, unwinding on
//! drop, panics, and greenlets inside a generator body.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use greenhouse::generator::{Builder, Generator, Yielder};
use greenhouse::greenlet::{self, Greenlet, State};

struct DropFlag(Rc<Cell<u32>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn a_generator_is_an_iterator() {
    let g = Generator::new(|y| {
        for i in 0..5u32 {
            y.yield_(i * i);
        }
    })
    .unwrap();
    assert_eq!(g.collect::<Vec<_>>(), [0, 1, 4, 9, 16]);
}

#[test]
fn the_body_runs_lazily_step_by_step() {
    // The seed's odd(): "step 1", 1, "step 2", 3, "step 3", 5, "odd DONE".
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let mut odd = Generator::new(move |y| {
        l.borrow_mut().push("step 1".to_string());
        y.yield_(1);
        l.borrow_mut().push("step 2".to_string());
        y.yield_(3);
        l.borrow_mut().push("step 3".to_string());
        y.yield_(5);
        l.borrow_mut().push("odd DONE".to_string());
    })
    .unwrap();
    assert!(log.borrow().is_empty());
    for v in odd.by_ref() {
        log.borrow_mut().push(v.to_string());
    }
    assert_eq!(
        *log.borrow(),
        ["step 1", "1", "step 2", "3", "step 3", "5", "odd DONE"]
    );
    assert_eq!(odd.next(), None, "stays finished");
}

#[test]
fn yield_works_from_nested_calls() {
    // The seed's gen_from: `yield from` each iterable becomes a call.
    fn yield_all(y: &Yielder<String>, items: impl IntoIterator<Item = String>) {
        for item in items {
            y.yield_(item);
        }
    }
    fn deep(y: &Yielder<String>, d: u32) {
        if d == 0 {
            y.yield_("deep".into());
        } else {
            deep(y, d - 1);
        }
    }
    let g = Generator::new(|y| {
        yield_all(y, "Leo".chars().map(String::from));
        yield_all(y, [1, 2, 3].map(|n| n.to_string()));
        yield_all(y, ["name", "gender"].map(String::from));
        yield_all(y, (4..8).map(|n| n.to_string()));
        deep(y, 100);
    })
    .unwrap();
    assert_eq!(
        g.collect::<Vec<_>>(),
        ["L", "e", "o", "1", "2", "3", "name", "gender", "4", "5", "6", "7", "deep"]
    );
}

#[test]
fn send_passes_a_value_into_the_pending_yield() {
    // The seed's simple_coroutine: received values accumulate.
    let mut g = Builder::new()
        .create(|y: &Yielder<i32, i32>| {
            let a = y.yield_(0);
            let b = y.yield_(a);
            let c = y.yield_(a + b);
            a + b + c
        })
        .unwrap();
    assert_eq!(g.state(), State::NotStarted);
    assert_eq!(g.send(-100), Some(0), "the starting value is dropped");
    assert_eq!(g.send(5), Some(5));
    assert_eq!(g.send(6), Some(11));
    assert_eq!(g.state(), State::Suspended);
    assert_eq!(g.send(7), None);
    assert_eq!(g.state(), State::Dead);
    assert_eq!(g.take_return_value(), Some(18));
    assert_eq!(
        g.send(8),
        None,
        "sending to a finished generator does nothing"
    );
}

#[test]
fn the_return_value_is_available_after_the_last_item() {
    let mut g = Generator::new(|y| {
        y.yield_("a");
        "returned"
    })
    .unwrap();
    assert_eq!(g.take_return_value(), None);
    assert_eq!(g.next(), Some("a"));
    assert_eq!(g.take_return_value(), None, "not finished yet");
    assert!(!g.is_finished());
    assert_eq!(g.next(), None);
    assert!(g.is_finished());
    assert_eq!(g.take_return_value(), Some("returned"));
    assert_eq!(g.take_return_value(), None);
}

#[test]
fn dropping_an_unfinished_generator_unwinds_it() {
    let dropped = Rc::new(Cell::new(0));
    let after = Rc::new(Cell::new(false));
    let (d, a) = (dropped.clone(), after.clone());
    let mut g = Generator::new(move |y| {
        let _one = DropFlag(d.clone());
        let _two = DropFlag(d);
        y.yield_(1);
        y.yield_(2);
        a.set(true);
    })
    .unwrap();
    assert_eq!(g.next(), Some(1));
    assert_eq!(dropped.get(), 0);
    drop(g);
    assert_eq!(dropped.get(), 2, "both locals were dropped");
    assert!(!after.get(), "the rest of the body did not run");
}

#[test]
fn dropping_an_unstarted_generator_drops_its_closure() {
    let dropped = Rc::new(Cell::new(0));
    let flag = DropFlag(dropped.clone());
    let g = Generator::new(move |y| {
        let _f = &flag;
        y.yield_(1);
    })
    .unwrap();
    drop(g);
    assert_eq!(dropped.get(), 1);
}

#[test]
fn a_panic_in_the_body_reaches_the_caller_and_finishes_the_generator() {
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    let mut g = Generator::new(move |y| {
        let _f = DropFlag(d);
        y.yield_(1);
        panic!("generator failed");
    })
    .unwrap();
    assert_eq!(g.next(), Some(1));
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.next()));
    std::panic::set_hook(prev);
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"generator failed"));
    assert_eq!(dropped.get(), 1);
    assert!(g.is_finished());
    assert_eq!(g.next(), None);
    assert_eq!(g.take_return_value(), None);
}

#[test]
fn greenlets_inside_a_body_belong_to_the_body() {
    // The body has its own main greenlet: greenlets it makes switch back to
    // the body, not to whoever iterates the generator.
    let outer_main = greenlet::current::<i32>();
    let mut g = Generator::new(move |y| {
        let body_main = greenlet::current::<i32>();
        assert!(body_main.is_main());
        assert!(body_main != outer_main);
        let child = Greenlet::new(|x: i32| {
            let back = greenlet::current::<i32>()
                .parent()
                .unwrap()
                .switch(x + 1)
                .unwrap();
            back * 2
        })
        .unwrap();
        let first = child.switch(1).unwrap();
        y.yield_(first); // suspend the generator with `child` suspended too
        let second = child.switch(10).unwrap();
        y.yield_(second);
    })
    .unwrap();
    assert_eq!(g.next(), Some(2));
    assert!(greenlet::current::<i32>().is_main());
    assert_eq!(g.next(), Some(20));
    assert_eq!(g.next(), None);
}

#[test]
fn a_generator_inside_a_greenlet() {
    let g = Greenlet::new(|n: u64| {
        let gen = Generator::new(move |y| {
            for i in 0..n {
                y.yield_(i);
            }
        })
        .unwrap();
        let mut sum = 0;
        for v in gen {
            sum += v;
            // Switching out of the greenlet between items is fine.
            greenlet::current::<u64>()
                .parent()
                .unwrap()
                .switch(v)
                .unwrap();
        }
        sum
    })
    .unwrap();
    let mut seen = vec![g.switch(4).unwrap()];
    while !g.is_dead() {
        seen.push(g.switch(0).unwrap());
    }
    assert_eq!(seen, [0, 1, 2, 3, 6]);
}

#[test]
fn generators_can_nest() {
    let outer = Generator::new(|y| {
        let inner = Generator::new(|y2| {
            for c in ['x', 'y'] {
                y2.yield_(c);
            }
        })
        .unwrap();
        for c in inner {
            y.yield_(c.to_ascii_uppercase());
        }
    })
    .unwrap();
    assert_eq!(outer.collect::<String>(), "XY");
}

/// `yield_` checks that it runs on its generator's own stack: lent to a raw
/// coroutine resumed inside the body, it panics (inside that coroutine)
/// instead of suspending the wrong coroutine; the generator goes on.
#[test]
fn yield_off_the_generators_stack_is_refused() {
    let mut g = Generator::new(|y: &Yielder<u32>| {
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let raw = corosensei::ScopedCoroutine::new(|_: &corosensei::Yielder<(), ()>, ()| {
                y.yield_(1);
            });
            raw.scope(|mut raw| {
                raw.as_mut().resume(());
            });
        }));
        let msg = refused.unwrap_err();
        let msg = msg.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(msg.contains("off its generator's stack"), "{msg}");
        y.yield_(2);
    })
    .unwrap();
    assert_eq!(g.next(), Some(2));
    assert_eq!(g.next(), None);
}
