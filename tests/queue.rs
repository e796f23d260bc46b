//! gevent's queues: the seeds' teacher roll-call and FIFO/LIFO/priority
//! orders, maxsize, task_done/join, timeouts, cancellation, OS threads.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use greenhouse::queue::{Empty, LifoQueue, PriorityQueue, Queue};
use greenhouse::runtime::Runtime;
use greenhouse::thread;

fn rt(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Yields until `n` waiters have announced themselves, then lets them
/// settle into the queue's waiter list (see tests/channel.rs).
fn until_announced(counter: &AtomicUsize, n: usize) {
    while counter.load(SeqCst) < n {
        thread::yield_now();
    }
    for _ in 0..50 {
        thread::yield_now();
    }
}

/// The seeds' roll-call (S0 L668–755): the teacher calls each name through
/// a queue; a call manager answers for the students present, until "exit".
#[test]
fn teacher_roll_call() {
    for workers in [1, 2] {
        let transcript = rt(workers).run(|| {
            let log = Arc::new(StdMutex::new(vec!["Teacher: roll call begins".to_string()]));
            let calls: Queue<String> = Queue::new();
            let (c, l) = (calls.clone(), log.clone());
            let manager = thread::spawn(move || {
                let present = ["Zhang San", "Li Si"];
                loop {
                    let name = c.get();
                    if name == "exit" {
                        c.task_done().unwrap();
                        break;
                    }
                    let line = if present.contains(&name.as_str()) {
                        format!("{name}: here")
                    } else {
                        format!("Student: teacher, there is no {name}")
                    };
                    l.lock().unwrap().push(line);
                    c.task_done().unwrap();
                }
            });
            for name in ["Zhang San", "Li Si", "Wang Wu"] {
                log.lock().unwrap().push(format!("Teacher: {name}"));
                calls.put(name.to_string());
                calls.join(); // wait for the answer before the next name
            }
            calls.put("exit".into());
            calls.join();
            manager.join().unwrap();
            log.lock()
                .unwrap()
                .push("Teacher: roll call over, class begins".into());
            let v = log.lock().unwrap().clone();
            v
        });
        assert_eq!(
            transcript,
            [
                "Teacher: roll call begins",
                "Teacher: Zhang San",
                "Zhang San: here",
                "Teacher: Li Si",
                "Li Si: here",
                "Teacher: Wang Wu",
                "Student: teacher, there is no Wang Wu",
                "Teacher: roll call over, class begins",
            ],
            "{workers} workers"
        );
    }
}

/// The seeds' orders (S2 L1032–1144): Queue 0..4, LifoQueue 4..0, and the
/// priority queue giving item1..item5 for priorities put as 2,5,3,4,1 —
/// after which a get would block forever (here: times out).
#[test]
fn fifo_lifo_and_priority_orders() {
    let q = Queue::new();
    let l = LifoQueue::new();
    for i in 0..5 {
        q.put(i);
        l.put(i);
    }
    assert_eq!((0..5).map(|_| q.get()).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!((0..5).map(|_| l.get()).collect::<Vec<_>>(), [4, 3, 2, 1, 0]);

    let p = PriorityQueue::new();
    for prio in [2, 5, 3, 4, 1] {
        p.put((prio, format!("item{prio}")));
    }
    let out: Vec<String> = (0..5).map(|_| p.get().1).collect();
    assert_eq!(out, ["item1", "item2", "item3", "item4", "item5"]);
    assert_eq!(p.get_timeout(Duration::from_millis(10)), Err(Empty));
}

/// Ordered by priority only, so equal priorities are distinguishable.
#[derive(Debug, PartialEq, Eq)]
struct Job {
    prio: u8,
    id: u32,
}

impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Job {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prio.cmp(&other.prio)
    }
}

#[test]
fn priority_queue_is_fifo_among_equals() {
    let p = PriorityQueue::new();
    for id in 0..100 {
        p.put(Job {
            prio: (id % 3) as u8,
            id,
        });
    }
    let out: Vec<Job> = (0..100).map(|_| p.get()).collect();
    for w in out.windows(2) {
        assert!(
            w[0].prio < w[1].prio || (w[0].prio == w[1].prio && w[0].id < w[1].id),
            "{w:?}"
        );
    }
}

#[test]
fn maxsize_blocks_puts_and_zero_means_unbounded() {
    rt(1).run(|| {
        let q = Queue::with_maxsize(2);
        q.put(1);
        q.put(2);
        assert!(q.is_full());
        assert_eq!(q.try_put(3).unwrap_err().into_inner(), 3);
        let start = Instant::now();
        assert!(q.put_timeout(3, Duration::from_millis(20)).is_err());
        assert!(start.elapsed() >= Duration::from_millis(20));
        let q2 = q.clone();
        let putter = thread::spawn(move || q2.put(3)); // waits for room
        assert_eq!(q.get(), 1);
        putter.join().unwrap();
        assert_eq!((q.get(), q.get()), (2, 3));

        let unbounded = Queue::with_maxsize(0);
        for i in 0..10_000 {
            unbounded.put(i);
        }
        assert_eq!(unbounded.len(), 10_000);
        assert!(!unbounded.is_full());
    });
}

#[test]
fn join_waits_for_every_task_done() {
    rt(2).run(|| {
        let q = Queue::new();
        let processed = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (q, processed) = (q.clone(), processed.clone());
            thread::spawn(move || loop {
                let n: u64 = q.get();
                thread::sleep(Duration::from_millis(n % 3));
                processed.fetch_add(1, SeqCst);
                q.task_done().unwrap();
            });
        }
        for n in 0..100 {
            q.put(n);
        }
        q.join();
        assert_eq!(processed.load(SeqCst), 100);
        assert_eq!(q.unfinished_tasks(), 0);
        assert!(q.task_done().is_err());
        q.put(1000);
        assert!(!q.join_timeout(Duration::ZERO) || processed.load(SeqCst) == 101);
    });
}

#[test]
fn getter_killed_after_an_item_was_handed_to_it_gives_it_back() {
    rt(1).run(|| {
        let p: PriorityQueue<u32> = PriorityQueue::new();
        let announced = Arc::new(AtomicUsize::new(0));
        let getter = |p: PriorityQueue<u32>, a: Arc<AtomicUsize>| {
            thread::spawn(move || {
                a.fetch_add(1, SeqCst);
                p.get_timeout(Duration::from_secs(30))
            })
        };
        let first = getter(p.clone(), announced.clone());
        until_announced(&announced, 1);
        let second = getter(p.clone(), announced.clone());
        until_announced(&announced, 2);
        p.put(7); // handed to `first`...
        first.kill(); // ...which unwinds before it runs
        assert!(first.join().unwrap_err().is_killed());
        assert_eq!(second.join().unwrap(), Ok(7));
        assert_eq!(p.unfinished_tasks(), 1, "the item was counted once");
    });
}

#[test]
fn os_thread_producers_green_consumers() {
    let rt = rt(2);
    let q: Queue<u32> = Queue::with_maxsize(8);
    let sum = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let (q, sum) = (q.clone(), sum.clone());
            rt.handle().spawn(move || loop {
                let v = q.get();
                if v == u32::MAX {
                    q.task_done().unwrap();
                    break;
                }
                sum.fetch_add(v as usize, SeqCst);
                q.task_done().unwrap();
            })
        })
        .collect();
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    q.put(t * 500 + i);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.join();
    for _ in 0..4 {
        q.put(u32::MAX);
    }
    for c in consumers {
        c.join().unwrap();
    }
    assert_eq!(sum.load(SeqCst), (0..1000).sum::<usize>());
}
