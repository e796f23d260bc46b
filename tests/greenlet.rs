//! Greenlet semantics, one test (or a few) per rule of Python's greenlet.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use greenhouse::greenlet::{
    self, Builder, Greenlet, GreenletExit, ParentError, State, SwitchError,
};

/// Counts live instances; each drop is recorded once.
#[derive(Clone)]
struct Counter(Rc<Cell<isize>>);

struct Tracked(Rc<Cell<isize>>);

impl Counter {
    fn new() -> Counter {
        Counter(Rc::new(Cell::new(0)))
    }
    fn make(&self) -> Tracked {
        self.0.set(self.0.get() + 1);
        Tracked(self.0.clone())
    }
    fn live(&self) -> isize {
        self.0.get()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

fn parent<T: 'static>() -> Greenlet<T> {
    greenlet::current::<T>()
        .parent()
        .expect("not the main greenlet")
}

/// Runs `f` with the panic hook silenced (for tests that panic on purpose).
fn quiet_panics<R>(f: impl FnOnce() -> R) -> R {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = f();
    std::panic::set_hook(prev);
    r
}

// 1. The first switch starts f(v); later switches resume the pending switch.

#[test]
fn first_switch_starts_f_with_the_value() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let g = Greenlet::new(move |x: i32| {
        l.borrow_mut().push(format!("started with {x}"));
        x
    })
    .unwrap();
    assert!(log.borrow().is_empty(), "creating must not run f");
    assert_eq!(g.switch(7).unwrap(), 7);
    assert_eq!(*log.borrow(), ["started with 7"]);
}

#[test]
fn later_switch_makes_the_pending_switch_return_the_value() {
    let g = Greenlet::new(|a: i32| {
        let b = parent::<i32>().switch(a * 10).unwrap();
        let c = parent::<i32>().switch(b * 10).unwrap();
        c * 10
    })
    .unwrap();
    assert_eq!(g.switch(1).unwrap(), 10);
    assert_eq!(g.switch(2).unwrap(), 20);
    assert_eq!(g.switch(3).unwrap(), 30);
}

#[test]
fn current_is_the_running_greenlet_and_main_is_implicit() {
    let main = greenlet::current::<()>();
    assert!(main.is_main());
    assert!(main.parent().is_none());
    assert_eq!(main.state(), State::Running);
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let g = Greenlet::new(move |()| {
        let me = greenlet::current::<()>();
        *s.borrow_mut() = Some((me.is_main(), me.state(), me.name().map(String::from)));
    });
    let g = g.unwrap();
    let named = Builder::new().name("named").create(|()| {
        assert_eq!(greenlet::current::<()>().name(), Some("named"));
    });
    named.unwrap().switch(()).unwrap();
    g.switch(()).unwrap();
    assert_eq!(*seen.borrow(), Some((false, State::Running, None)));
    assert!(greenlet::current::<()>() == main);
    assert_eq!(main.state(), State::Running);
}

#[test]
fn switching_to_the_running_greenlet_returns_the_value() {
    let main = greenlet::current::<&str>();
    assert_eq!(main.switch("same").unwrap(), "same");
    let g = Greenlet::new(|x: i32| greenlet::current::<i32>().switch(x + 1).unwrap()).unwrap();
    assert_eq!(g.switch(1).unwrap(), 2);
}

// 2. Return values go to the parent; returning into an unstarted parent
// starts it.

#[test]
fn return_value_goes_to_the_creator() {
    let outer = Greenlet::new(|x: u32| {
        // The inner greenlet's parent is `outer`, its creator.
        let inner = Greenlet::new(|y: u32| y + 1).unwrap();
        let from_inner = inner.switch(x).unwrap();
        from_inner * 100
    })
    .unwrap();
    assert_eq!(outer.switch(1).unwrap(), 200);
}

#[test]
fn returning_into_an_unstarted_parent_starts_it_with_the_value() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    let p = Greenlet::new(move |v: i32| {
        o.borrow_mut().push(format!("parent started with {v}"));
        v + 1
    })
    .unwrap();
    let o = order.clone();
    let c = Greenlet::new(move |v: i32| {
        o.borrow_mut().push(format!("child got {v}"));
        v * 2
    })
    .unwrap();
    c.set_parent(&p).unwrap();
    // c returns 10 into p (unstarted): p starts with 10 and returns 11 to main.
    assert_eq!(c.switch(5).unwrap(), 11);
    assert_eq!(*order.borrow(), ["child got 5", "parent started with 10"]);
    assert!(p.is_dead() && c.is_dead());
}

// 3. A panic reaches the parent's switch as an error value.

#[test]
fn panic_reaches_the_parent_as_an_error() {
    let counter = Counter::new();
    let c = counter.clone();
    let g = Greenlet::new(move |x: i32| -> i32 {
        let _t = c.make();
        if x > 0 {
            panic!("bad input {x}");
        }
        x
    })
    .unwrap();
    let r = quiet_panics(|| g.switch(3));
    match r {
        Err(SwitchError::Panicked(p)) => {
            assert_eq!(p.downcast_ref::<String>().unwrap(), "bad input 3");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert!(g.is_dead());
    assert_eq!(
        counter.live(),
        0,
        "the panicking greenlet's locals were dropped"
    );
    // The error displays the message.
    let g = Greenlet::new(|_: i32| -> i32 { panic!("shown") }).unwrap();
    let e = quiet_panics(|| g.switch(0)).unwrap_err();
    assert_eq!(e.to_string(), "greenlet panicked: shown");
}

#[test]
fn panic_goes_to_the_parent_not_the_switcher() {
    // main -> a; a switches to b (whose parent is main); b panics: main gets it.
    let b = Greenlet::new(|_: i32| -> i32 { panic!("from b") }).unwrap();
    let b2 = b.clone();
    let a = Greenlet::new(move |x: i32| {
        let r = b2.switch(x);
        unreachable!("a is not b's parent, got {r:?}")
    })
    .unwrap();
    let r = quiet_panics(|| a.switch(1));
    assert!(matches!(r, Err(SwitchError::Panicked(_))), "{r:?}");
    assert_eq!(a.state(), State::Suspended);
    assert!(b.is_dead());
}

// 4. Switching to a dead greenlet goes to its first live ancestor.

#[test]
fn switching_to_a_dead_greenlet_goes_to_its_first_live_ancestor() {
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let ancestor = Greenlet::new(move |first: i32| {
        // Start, then wait for the value redirected from the dead child.
        let v = parent::<i32>().switch(first).unwrap();
        g.set(v);
        -1
    })
    .unwrap();
    assert_eq!(ancestor.switch(0).unwrap(), 0);
    let mid = Greenlet::new(|x: i32| x).unwrap();
    let leaf = Greenlet::new(|x: i32| x).unwrap();
    mid.set_parent(&ancestor).unwrap();
    leaf.set_parent(&mid).unwrap();
    // Run `mid` to death with its parent temporarily main, then restore.
    let main = greenlet::current::<i32>();
    mid.set_parent(&main).unwrap();
    assert_eq!(mid.switch(1).unwrap(), 1);
    mid.set_parent(&ancestor).unwrap();
    leaf.set_parent(&main).unwrap();
    assert_eq!(leaf.switch(2).unwrap(), 2);
    leaf.set_parent(&mid).unwrap();
    assert!(mid.is_dead() && leaf.is_dead());
    // leaf and mid are dead: the value lands in `ancestor`.
    assert_eq!(leaf.switch(42).unwrap(), -1);
    assert_eq!(got.get(), 42);
    assert!(ancestor.is_dead());
    // Everything dead: main (the last ancestor) gets the value back at once.
    assert_eq!(leaf.switch(9).unwrap(), 9);
}

#[test]
fn the_live_ancestor_of_a_dead_target_is_kept_alive_while_it_runs() {
    // `dead`'s parent link is the only thing that refers to `ancestor`; the
    // ancestor cuts that link while it runs. It must stay alive until it
    // has switched away, from main and from a child alike.
    for from_child in [false, true] {
        let counter = Counter::new();
        let dead_slot: Rc<RefCell<Option<Greenlet<i32>>>> = Default::default();
        let (ds, c) = (dead_slot.clone(), counter.clone());
        let main = greenlet::current::<i32>();
        let m = main.clone();
        let ancestor = Greenlet::new(move |first: i32| {
            let _local = c.make();
            let v = m.switch(first).unwrap();
            // Cut the link that keeps us alive, then answer.
            ds.borrow().as_ref().unwrap().set_parent(&m).unwrap();
            m.switch(v * 10).unwrap()
        })
        .unwrap();
        assert_eq!(ancestor.switch(0).unwrap(), 0);
        let dead = Greenlet::new(|x: i32| x).unwrap();
        dead.set_parent(&main).unwrap();
        assert_eq!(dead.switch(5).unwrap(), 5);
        dead.set_parent(&ancestor).unwrap();
        *dead_slot.borrow_mut() = Some(dead.clone());
        drop(ancestor);
        assert_eq!(counter.live(), 1, "the ancestor lives on through `dead`");
        let got = if from_child {
            let d = dead.clone();
            let child = Greenlet::new(move |v: i32| d.switch(v).unwrap()).unwrap();
            child.switch(4).unwrap()
        } else {
            dead.switch(4).unwrap()
        };
        assert_eq!(got, 40);
        assert_eq!(
            counter.live(),
            0,
            "the ancestor was unwound once unreferenced"
        );
        dead_slot.borrow_mut().take();
    }
}

// 5. throw() and kill().

#[test]
fn throw_unwinds_the_target_and_the_parent_receives_greenlet_exit() {
    let counter = Counter::new();
    let c = counter.clone();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let g = Greenlet::new(move |x: i32| {
        let _local = c.make();
        let r = parent::<i32>().switch(x);
        a.set(true); // never reached: the switch unwinds
        r.unwrap()
    })
    .unwrap();
    g.switch(1).unwrap();
    assert_eq!(counter.live(), 1);
    let r = g.throw();
    assert!(matches!(r, Err(SwitchError::Exit(GreenletExit))), "{r:?}");
    assert!(r.unwrap_err().is_exit());
    assert_eq!(counter.live(), 0, "destructors of the target's locals ran");
    assert!(!after.get());
    assert_eq!(g.state(), State::Dead);
}

#[test]
fn throw_into_an_unstarted_greenlet_kills_it_without_running_f() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let counter = Counter::new();
    let captured = counter.make();
    let g = Greenlet::new(move |x: i32| {
        let _c = &captured;
        r.set(true);
        x
    })
    .unwrap();
    assert!(matches!(g.throw(), Err(SwitchError::Exit(_))));
    assert!(!ran.get());
    assert!(g.is_dead());
    assert_eq!(counter.live(), 0, "the closure's captures were dropped");
}

#[test]
fn kill_reports_success_and_is_idempotent() {
    let counter = Counter::new();
    let c = counter.clone();
    let g = Greenlet::new(move |x: i32| {
        let _t = c.make();
        parent::<i32>().switch(x).unwrap()
    })
    .unwrap();
    g.switch(1).unwrap();
    assert_eq!(g.kill().unwrap(), None);
    assert_eq!(counter.live(), 0);
    assert_eq!(g.kill().unwrap(), None);
}

#[test]
fn a_greenlet_that_catches_its_throw_can_answer_with_a_value() {
    let g = Greenlet::new(|x: i32| {
        let r = std::panic::catch_unwind(|| parent::<i32>().switch(x));
        assert!(r.is_err(), "the throw arrives as an unwind");
        parent::<i32>().switch(99).unwrap()
    })
    .unwrap();
    g.switch(1).unwrap();
    assert_eq!(g.kill().unwrap(), Some(99));
    assert_eq!(g.state(), State::Suspended);
}

#[test]
fn throw_into_the_running_greenlet_unwinds_it_there() {
    let g = Greenlet::new(|x: i32| {
        let _ = greenlet::current::<i32>().throw();
        unreachable!("{x}")
    })
    .unwrap();
    assert!(matches!(g.switch(1), Err(SwitchError::Exit(_))));
    assert!(g.is_dead());
}

#[test]
fn the_main_greenlet_cannot_be_thrown_into() {
    let main = greenlet::current::<i32>();
    assert!(matches!(main.throw(), Err(SwitchError::MainGreenlet)));
    assert!(matches!(main.kill(), Err(SwitchError::MainGreenlet)));
    let g = Greenlet::new(|()| {
        let main = greenlet::current::<()>().parent().unwrap();
        assert!(matches!(main.throw(), Err(SwitchError::MainGreenlet)));
    })
    .unwrap();
    g.switch(()).unwrap();
}

#[test]
fn throw_into_a_dead_greenlet_gives_its_ancestor_greenlet_exit() {
    let g = Greenlet::new(|x: i32| x).unwrap();
    g.switch(1).unwrap();
    assert!(matches!(g.throw(), Err(SwitchError::Exit(_))));
}

// 6. The parent can be changed; cycles and foreign parents are refused.

#[test]
fn changed_parent_receives_the_result() {
    let collector = Greenlet::new(|v: i32| {
        // Receives `child`'s result, then reports it to main.
        v + 1000
    })
    .unwrap();
    let child = Greenlet::new(|v: i32| v * 2).unwrap();
    child.set_parent(&collector).unwrap();
    assert!(child.parent().unwrap() == collector);
    assert_eq!(child.switch(4).unwrap(), 1008);
}

#[test]
fn set_parent_refuses_cycles_and_main() {
    let a = Greenlet::new(|x: i32| x).unwrap();
    let b = Greenlet::new(|x: i32| x).unwrap();
    let c = Greenlet::new(|x: i32| x).unwrap();
    b.set_parent(&a).unwrap();
    c.set_parent(&b).unwrap();
    assert_eq!(a.set_parent(&a), Err(ParentError::Cycle));
    assert_eq!(a.set_parent(&c), Err(ParentError::Cycle));
    assert!(a.parent().unwrap().is_main(), "unchanged after the error");
    let main = greenlet::current::<i32>();
    assert_eq!(main.set_parent(&a), Err(ParentError::MainGreenlet));
    assert!(!ParentError::Cycle.to_string().is_empty());
}

#[test]
fn each_os_thread_has_its_own_main_greenlet() {
    // Handles are !Send (see the compile_fail doc test in the module docs),
    // so the only way to meet another thread's greenlets is to make them
    // there: each thread gets its own main greenlet and its own greenlets.
    let here = greenlet::current::<i32>();
    let g = Greenlet::new(|x: i32| x + 1).unwrap();
    let t = std::thread::spawn(|| {
        let main = greenlet::current::<i32>();
        let g = Greenlet::new(|x: i32| x * 3).unwrap();
        assert!(g.parent().unwrap() == main);
        g.switch(5).unwrap()
    });
    assert_eq!(t.join().unwrap(), 15);
    assert_eq!(g.switch(1).unwrap(), 2);
    assert!(greenlet::current::<i32>() == here);
}

#[test]
fn a_handle_carried_to_another_green_thread_is_refused() {
    // Rules 6 and 8 across green threads: two green threads on one OS
    // thread share its thread-locals, so a handle can be carried from one to
    // the other; using it there is refused and changes nothing.
    use greenhouse::runtime::Runtime;
    use greenhouse::thread;
    thread_local! {
        static CARRIED: RefCell<Option<Greenlet<i32>>> = const { RefCell::new(None) };
    }
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (switched, parented, after) = rt.run(|| {
        thread::spawn(|| {
            let g = Greenlet::new(|x: i32| x + 1).unwrap();
            CARRIED.with(|c| *c.borrow_mut() = Some(g.clone()));
            // Another green thread on this worker (one worker: same OS
            // thread) tries to use it while its owner waits.
            let (switched, parented) = thread::spawn(|| {
                let carried = CARRIED.with(|c| c.borrow_mut().take()).unwrap();
                let switched = carried.switch(1);
                let mine = Greenlet::new(|x: i32| x).unwrap();
                let parented = mine.set_parent(&carried);
                let threw = carried.throw();
                assert!(matches!(threw, Err(SwitchError::WrongThread)));
                (matches!(switched, Err(SwitchError::WrongThread)), parented)
            })
            .join()
            .unwrap();
            // Its owner still switches it normally.
            (switched, parented, g.switch(41).unwrap())
        })
        .join()
        .unwrap()
    });
    assert!(
        switched,
        "switch from another green thread must be WrongThread"
    );
    assert_eq!(parented, Err(ParentError::WrongThread));
    assert_eq!(after, 42);
}

// 7. Dropping the last handle to a suspended greenlet unwinds it.

#[test]
fn dropping_the_last_handle_unwinds_a_suspended_greenlet() {
    let counter = Counter::new();
    let c = counter.clone();
    let rest_ran = Rc::new(Cell::new(false));
    let r = rest_ran.clone();
    let g = Greenlet::new(move |x: i32| {
        let _a = c.make();
        let _b = c.make();
        let _ = parent::<i32>().switch(x);
        r.set(true);
        0
    })
    .unwrap();
    g.switch(1).unwrap();
    let other_handle = g.clone();
    drop(g);
    assert_eq!(counter.live(), 2, "another handle keeps it alive");
    drop(other_handle);
    assert_eq!(counter.live(), 0, "its locals were dropped");
    assert!(!rest_ran.get(), "the rest of f did not run");
}

#[test]
fn dropping_an_unstarted_greenlet_drops_its_closure() {
    let counter = Counter::new();
    let t = counter.make();
    let g = Greenlet::new(move |x: i32| {
        let _t = &t;
        x
    })
    .unwrap();
    assert_eq!(counter.live(), 1);
    drop(g);
    assert_eq!(counter.live(), 0);
}

#[test]
fn a_greenlet_dropped_while_unwinding_cannot_switch_from_a_destructor() {
    struct SwitchOnDrop(Rc<Cell<Option<bool>>>);
    impl Drop for SwitchOnDrop {
        fn drop(&mut self) {
            let main = greenlet::current::<i32>();
            // The dying greenlet is current while it unwinds.
            assert!(!main.is_main());
            let r = greenlet::current::<i32>().parent().map(|p| p.switch(1));
            self.0
                .set(Some(matches!(r, None | Some(Err(SwitchError::Dying)))));
        }
    }
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let g = Greenlet::new(move |x: i32| {
        let _d = SwitchOnDrop(s);
        parent::<i32>().switch(x).unwrap()
    })
    .unwrap();
    g.switch(1).unwrap();
    drop(g);
    assert_eq!(seen.get(), Some(true));
    assert!(greenlet::current::<i32>().is_main());
}

#[test]
fn dropping_a_greenlet_from_inside_another_unwinds_it() {
    let counter = Counter::new();
    let c = counter.clone();
    let victim = Greenlet::new(move |x: i32| {
        let _t = c.make();
        parent::<i32>().switch(x).unwrap()
    })
    .unwrap();
    victim.switch(1).unwrap();
    let dropper = Greenlet::new(move |x: i32| {
        drop(victim);
        x
    })
    .unwrap();
    assert_eq!(counter.live(), 1);
    assert_eq!(dropper.switch(5).unwrap(), 5);
    assert_eq!(counter.live(), 0);
}

/// Builds a greenlet X that, once started, is referenced by nothing but the
/// switch machinery, and then switches `Some(value)` to `to` (or to the main
/// greenlet). X is started by the return of a greenlet D whose parent it is;
/// X then moves D to another parent, so D no longer keeps it alive.
fn run_unreferenced_sender(
    counter: &Counter,
    to: Option<Greenlet<Option<Tracked>>>,
) -> Option<Tracked> {
    type Slot = Rc<RefCell<Option<Greenlet<Option<Tracked>>>>>;
    let main = greenlet::current::<Option<Tracked>>();
    let d_slot: Slot = Default::default();
    let (ds, c, m) = (d_slot.clone(), counter.clone(), main.clone());
    let x = Greenlet::new(move |_: Option<Tracked>| {
        let d = ds.borrow_mut().take().unwrap();
        d.set_parent(&m).unwrap();
        drop(d);
        let _local = c.make();
        let to = to.unwrap_or(m);
        to.switch(Some(c.make())).unwrap();
        unreachable!("X is unwound, never resumed");
    })
    .unwrap();
    let d = Greenlet::new(|v: Option<Tracked>| v).unwrap();
    d.set_parent(&x).unwrap();
    drop(x);
    *d_slot.borrow_mut() = Some(d.clone());
    d.switch(None).unwrap()
}

#[test]
fn a_sender_kept_only_by_the_switch_lives_until_main_took_its_value() {
    // The switched value waits on the sender's stack until the receiver
    // takes it; the sender must not be unwound (dropping that value) first.
    let counter = Counter::new();
    let got = run_unreferenced_sender(&counter, None);
    assert!(got.is_some());
    assert_eq!(counter.live(), 1, "X was unwound, its value arrived once");
    drop(got);
    assert_eq!(counter.live(), 0);
}

#[test]
fn a_sender_kept_only_by_the_switch_lives_until_a_sibling_took_its_value() {
    let counter = Counter::new();
    let received = Rc::new(RefCell::new(None));
    let r = received.clone();
    let y = Greenlet::new(move |v: Option<Tracked>| {
        *r.borrow_mut() = Some(v);
        None
    })
    .unwrap();
    let back = run_unreferenced_sender(&counter, Some(y.clone()));
    assert!(back.is_none(), "y's return value (None) came back");
    assert!(y.is_dead());
    let got = received.borrow_mut().take().expect("y ran");
    assert!(got.is_some());
    assert_eq!(counter.live(), 1, "X was unwound, its value arrived once");
    drop(got);
    assert_eq!(counter.live(), 0);
}

// 9. State is observable.

#[test]
fn state_goes_not_started_running_suspended_dead() {
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let g = Greenlet::new(move |x: i32| {
        s.set(Some(greenlet::current::<i32>().state()));
        parent::<i32>().switch(x).unwrap()
    })
    .unwrap();
    assert_eq!(g.state(), State::NotStarted);
    g.switch(1).unwrap();
    assert_eq!(seen.get(), Some(State::Running));
    assert_eq!(g.state(), State::Suspended);
    g.switch(2).unwrap();
    assert_eq!(g.state(), State::Dead);
    assert!(g.is_dead());
    // The main greenlet is suspended while a child runs.
    let main = greenlet::current::<State>();
    let g = Greenlet::new(move |_: State| main.state()).unwrap();
    assert_eq!(g.switch(State::Dead).unwrap(), State::Suspended);
}

#[test]
fn switching_to_the_running_greenlet_returns_the_value_at_once() {
    // The main greenlet's gate looks like a suspended main target's to the
    // fast path: the stack check must send this to the slow path.
    let main = greenlet::current::<u64>();
    assert_eq!(main.switch(7).unwrap(), 7);
    assert_eq!(main.state(), State::Running);
    let g = Greenlet::new(|x: u64| {
        let me = greenlet::current::<u64>();
        let y = me.switch(x + 1).unwrap();
        drop(me);
        let z = parent::<u64>().switch(y * 2).unwrap();
        z + 1
    })
    .unwrap();
    assert_eq!(g.switch(1).unwrap(), 4);
    // Ping-pong by the fast paths still works after the self-switches.
    assert_eq!(g.switch(10).unwrap(), 11);
    assert!(g.is_dead());
}

#[test]
fn a_child_that_drops_or_switches_through_others_still_answers_the_main_greenlet() {
    // The main greenlet's fast path tells a value switched back to it by
    // `current` no longer naming the child it resumed; everything the child
    // does in between (unwinding a dropped greenlet, a slow switch to a
    // sibling) must leave `current` naming it.
    let counter = Counter::new();
    let c = counter.clone();
    let g = Greenlet::new(move |mut x: u64| loop {
        let grandchild = {
            let c = c.clone();
            Greenlet::new(move |y: u64| {
                let _guard = c.make();
                parent::<u64>().switch(y).unwrap()
            })
            .unwrap()
        };
        assert_eq!(grandchild.switch(x).unwrap(), x);
        drop(grandchild); // unwound by a stand-in, right here
        let sibling = Greenlet::new(|y: u64| y * 2).unwrap();
        sibling.set_parent(&greenlet::current::<u64>()).unwrap();
        let doubled = sibling.switch(x).unwrap(); // via the trampoline
        x = parent::<u64>().switch(doubled + 1).unwrap();
    })
    .unwrap();
    for i in 0..4u64 {
        assert_eq!(g.switch(i).unwrap(), 2 * i + 1);
        assert_eq!(counter.live(), 0);
    }
}

#[test]
fn main_state_follows_who_runs_across_fast_and_slow_switches() {
    let main = greenlet::current::<u64>();
    let m = main.clone();
    let g = Greenlet::new(move |mut x: u64| loop {
        // Seen from the child, by the fast path's ping-pong.
        assert_eq!(m.state(), State::Suspended);
        assert_eq!(greenlet::current::<u64>().state(), State::Running);
        x = m.switch(x + 1).unwrap();
    })
    .unwrap();
    for i in 0..5 {
        assert_eq!(g.switch(i).unwrap(), i + 1);
        assert_eq!(main.state(), State::Running);
        assert_eq!(g.state(), State::Suspended);
    }
    // Through another type's view the main greenlet's switch takes the slow
    // path once (its gate waits for another type), then the fast one.
    let as_u32 = g.cast::<u32>();
    assert!(matches!(
        as_u32.switch(1),
        Err(SwitchError::TypeMismatch { .. })
    ));
    assert_eq!(g.switch(41).unwrap(), 42);
    assert_eq!(main.state(), State::Running);
}

// 10. Typed values.

/// Sends `a`, `b`, `a` to a greenlet that echoes them: the first through the
/// start (the main greenlet's trampoline receives the echo), the second on
/// the switch's fast path both ways, the third comes back as a return value.
fn echo_three_times<T: Copy + PartialEq + std::fmt::Debug + 'static>(a: T, b: T) {
    let g = Greenlet::new(|x: T| {
        let main = parent::<T>();
        let y = main.switch(x).unwrap();
        main.switch(y).unwrap()
    })
    .unwrap();
    assert_eq!(g.switch(a).unwrap(), a);
    assert_eq!(g.switch(b).unwrap(), b);
    assert_eq!(g.switch(a).unwrap(), a);
    assert!(g.is_dead());
}

/// Primitive values travel to the main greenlet in the switch's transfer
/// word itself, other small types through a slot: every bit arrives.
#[test]
fn values_of_every_primitive_type_arrive_intact() {
    echo_three_times(u8::MAX, 1u8);
    echo_three_times(i8::MIN, -1i8);
    echo_three_times(u16::MAX, 2u16);
    echo_three_times(i16::MIN, -2i16);
    echo_three_times(u32::MAX, 3u32);
    echo_three_times(i32::MIN, -3i32);
    echo_three_times(u64::MAX, 1u64 << 63);
    echo_three_times(i64::MIN, -1i64);
    echo_three_times(usize::MAX, 5usize);
    echo_three_times(isize::MIN, -5isize);
    echo_three_times(f32::MIN_POSITIVE, -0.5f32);
    echo_three_times(f64::MAX, -0.25f64);
    echo_three_times('\u{10FFFF}', 'é');
    echo_three_times(true, false);
    echo_three_times((), ());
    // Not primitive: through a slot.
    echo_three_times((u8::MAX, u16::MAX), (1u8, 2u16));
    echo_three_times(Some(u32::MAX), None);
    echo_three_times([u64::MAX; 3], [1; 3]);
}

#[test]
fn non_copy_values_move_through_switch_exactly_once() {
    let counter = Counter::new();
    let g = Greenlet::new(|t: Option<Tracked>| {
        let back = parent::<Option<Tracked>>().switch(t).unwrap();
        drop(back);
        None
    })
    .unwrap();
    let r = g.switch(Some(counter.make())).unwrap();
    assert!(r.is_some());
    assert_eq!(counter.live(), 1);
    let r2 = g.switch(r).unwrap();
    assert!(r2.is_none());
    assert_eq!(counter.live(), 0);
}

#[derive(Debug, PartialEq)]
enum Msg {
    Text(String),
    Number(i64),
    Done,
}

#[test]
fn several_types_through_an_enum() {
    let g = Greenlet::new(|m: Msg| {
        let mut total = 0;
        let mut m = m;
        loop {
            m = match m {
                Msg::Number(n) => {
                    total += n;
                    parent::<Msg>().switch(Msg::Number(total)).unwrap()
                }
                Msg::Text(s) => parent::<Msg>().switch(Msg::Text(s.to_uppercase())).unwrap(),
                Msg::Done => return Msg::Number(total),
            }
        }
    })
    .unwrap();
    assert_eq!(g.switch(Msg::Number(2)).unwrap(), Msg::Number(2));
    assert_eq!(
        g.switch(Msg::Text("hi".into())).unwrap(),
        Msg::Text("HI".into())
    );
    assert_eq!(g.switch(Msg::Number(5)).unwrap(), Msg::Number(7));
    assert_eq!(g.switch(Msg::Done).unwrap(), Msg::Number(7));
}

#[test]
fn several_types_through_box_dyn_any() {
    let g = Greenlet::new(|v: Box<dyn Any>| {
        let n = *v.downcast::<i32>().unwrap();
        let s = parent::<Box<dyn Any>>()
            .switch(Box::new(format!("{n}")))
            .unwrap();
        Box::new(s.downcast::<&str>().unwrap().len()) as Box<dyn Any>
    })
    .unwrap();
    let r = g.switch(Box::new(41)).unwrap();
    assert_eq!(r.downcast_ref::<String>().unwrap(), "41");
    let r = g.switch(Box::new("four")).unwrap();
    assert_eq!(*r.downcast::<usize>().unwrap(), 4);
}

#[test]
fn a_value_of_the_wrong_type_is_refused_before_anything_runs() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |x: u32| {
        r.set(true);
        x
    })
    .unwrap();
    let wrong = g.cast::<String>();
    match wrong.switch("nope".into()) {
        Err(SwitchError::TypeMismatch { expected, found }) => {
            assert_eq!(expected, "u32");
            assert_eq!(found, "alloc::string::String");
        }
        other => panic!("{other:?}"),
    }
    assert!(!ran.get());
    assert_eq!(g.state(), State::NotStarted);
    assert_eq!(g.switch(3).unwrap(), 3);
}

#[test]
fn a_returned_value_of_the_wrong_type_is_an_error_for_the_receiver() {
    // `g` (parent: main) returns a u8 while main waits for a `()`.
    let g = Greenlet::new(|x: u8| x).unwrap();
    let starter = Greenlet::new(move |()| {
        let _ = g.switch(1);
    })
    .unwrap();
    match starter.switch(()) {
        Err(SwitchError::TypeMismatch { expected, found }) => {
            assert_eq!((expected, found), ("()", "u8"));
        }
        other => panic!("{other:?}"),
    }
}

// 11. Greenlets at any call depth.

fn nested(depth: u32) -> u32 {
    if depth == 0 {
        // Create and switch a greenlet deep in the call stack of another.
        let inner = Greenlet::new(|x: u32| {
            let got = parent::<u32>().switch(x + 1).unwrap();
            got * 2
        })
        .unwrap();
        let a = inner.switch(1).unwrap();
        inner.switch(a + 10).unwrap()
    } else {
        nested(depth - 1) + 1
    }
}

#[test]
fn greenlets_work_at_any_call_depth_and_inside_greenlets() {
    assert_eq!(nested(100), 24 + 100);
    let outer = Greenlet::new(|d: u32| nested(d)).unwrap();
    assert_eq!(outer.switch(50).unwrap(), 24 + 50);
    // A switch from deep inside a greenlet, back out to main and in again.
    fn deep_switch(d: u32) -> u32 {
        if d == 0 {
            parent::<u32>().switch(7).unwrap()
        } else {
            deep_switch(d - 1) + 1
        }
    }
    let g = Greenlet::new(|d: u32| deep_switch(d)).unwrap();
    assert_eq!(g.switch(200).unwrap(), 7);
    assert_eq!(g.switch(1).unwrap(), 201);
}

// Ping-pong between two children with explicit switches (the seed's test1/test2).

#[test]
fn two_children_alternate_with_explicit_switches() {
    let log = Rc::new(RefCell::new(String::new()));
    type Slot = Rc<RefCell<Option<Greenlet<u32>>>>;
    let (slot_a, slot_b): (Slot, Slot) = Default::default();
    let (l, sb) = (log.clone(), slot_b.clone());
    let a = Greenlet::new(move |mut round: u32| {
        let b = sb.borrow().clone().unwrap();
        while round < 3 {
            l.borrow_mut().push('A');
            round = b.switch(round).unwrap();
        }
        round
    })
    .unwrap();
    let (l, sa) = (log.clone(), slot_a.clone());
    let b = Greenlet::new(move |mut round: u32| {
        let a = sa.borrow().clone().unwrap();
        loop {
            l.borrow_mut().push('B');
            round = a.switch(round + 1).unwrap();
        }
    })
    .unwrap();
    *slot_a.borrow_mut() = Some(a.clone());
    *slot_b.borrow_mut() = Some(b.clone());
    assert_eq!(a.switch(0).unwrap(), 3);
    assert_eq!(*log.borrow(), "ABABAB");
    // Break the cycle so `b` is unwound and freed.
    slot_a.borrow_mut().take();
    slot_b.borrow_mut().take();
    drop(b);
}

// Misuse: switching from a stack that is not the greenlet's.

#[test]
fn switch_from_a_raw_coroutine_inside_a_greenlet_is_refused() {
    let g = Greenlet::new(|x: i32| {
        let mut raw = corosensei::Coroutine::new(|_: &corosensei::Yielder<(), ()>, ()| {
            let r = parent::<i32>().switch(5);
            matches!(r, Err(SwitchError::ForeignStack))
        });
        match raw.resume(()) {
            corosensei::CoroutineResult::Return(refused) => assert!(refused),
            corosensei::CoroutineResult::Yield(()) => unreachable!(),
        }
        x
    })
    .unwrap();
    assert_eq!(g.switch(3).unwrap(), 3);
}

// Stress: 10,000 live greenlets, each switched 100 times, all destructors run.

#[test]
fn ten_thousand_greenlets_switched_a_hundred_times_each() {
    const N: usize = 10_000;
    const ROUNDS: u64 = 100;
    let counter = Counter::new();
    let gs: Vec<Greenlet<u64>> = (0..N)
        .map(|_| {
            let c = counter.clone();
            Builder::new()
                .stack_size(32 * 1024)
                .create(move |mut v: u64| {
                    let _t = c.make();
                    let main = parent::<u64>();
                    loop {
                        v = main.switch(v + 1).unwrap();
                    }
                })
                .unwrap()
        })
        .collect();
    let mut total = 0;
    for round in 0..ROUNDS {
        for g in &gs {
            total += g.switch(round).unwrap();
        }
    }
    assert_eq!(total, N as u64 * (ROUNDS * (ROUNDS + 1) / 2));
    assert_eq!(counter.live(), N as isize);
    drop(gs);
    assert_eq!(counter.live(), 0, "every greenlet was unwound");
}
