//! The examples' programs produce what the seeds print. Each example file is
//! included as a module, so these tests run the very code the examples run.

#[allow(dead_code)]
#[path = "../examples/generators.rs"]
mod generators;

#[allow(dead_code)]
#[path = "../examples/greenlet_pingpong.rs"]
mod greenlet_pingpong;

#[test]
fn fibonacci_prints_the_first_ten_numbers() {
    assert_eq!(
        generators::fibonacci_lines(),
        ["0", "1", "1", "2", "3", "5", "8", "13", "21", "34"]
    );
}

#[test]
fn jump_range_with_send_prints_the_seed_sequence() {
    assert_eq!(
        generators::jump_range_lines(),
        [
            "0",
            "[idx: 0, jump: 2]",
            "2",
            "[idx: 2, jump: None]",
            "3",
            "[idx: 3, jump: -1]",
            "2",
            "[idx: 2, jump: None]",
            "3",
            "[idx: 3, jump: None]",
            "4",
        ]
    );
}

#[test]
fn averager_with_a_delegating_generator_prints_the_seed_lines() {
    assert_eq!(
        generators::averager_lines(),
        [
            "10.0",
            "15.0",
            "20.0",
            "计算完毕，共输入 3 个数值，总和 60，平均值 20.0",
        ]
    );
}

#[test]
fn pingpong_alternates_a_and_b_for_the_given_rounds() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let lines = Rc::new(RefCell::new(Vec::new()));
    let l = lines.clone();
    let played =
        greenlet_pingpong::pingpong(3, move |s| l.borrow_mut().push(s.to_string())).unwrap();
    assert_eq!(played, 3);
    assert_eq!(
        *lines.borrow(),
        ["---A--", "---B--", "---A--", "---B--", "---A--", "---B--"]
    );
    assert_eq!(Rc::strong_count(&lines), 1, "both greenlets were freed");
    let played = greenlet_pingpong::pingpong(0, |_| panic!("no rounds")).unwrap();
    assert_eq!(played, 0);
}

#[test]
fn pingpong_arguments_default_to_5_and_bad_ones_get_the_usage() {
    use greenlet_pingpong::parse_rounds;
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(parse_rounds(&args(&[])), Ok(5));
    assert_eq!(parse_rounds(&args(&["12"])), Ok(12));
    for bad in [&["five"][..], &["-1"], &["1", "2"], &[""]] {
        let err = parse_rounds(&args(bad)).unwrap_err();
        assert!(err.contains("usage: greenlet_pingpong [ROUNDS]"), "{err}");
    }
}

#[allow(dead_code)]
#[path = "../examples/udp_chat.rs"]
mod udp_chat;

/// Two chat peers on one runtime: each sends its lines and prints what the
/// other sent, while it waits for input.
#[test]
fn udp_chat_peers_receive_each_others_lines() {
    use greenhouse::net::UdpSocket;
    use greenhouse::sync::Event;
    use std::sync::{Arc, Mutex};

    fn peer_input(
        lines: &[&str],
        done: Arc<Event>,
    ) -> impl Iterator<Item = std::io::Result<String>> {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        // The keyboard "stays open" until this side has heard the other.
        lines.into_iter().map(Ok).chain(std::iter::from_fn(move || {
            done.wait();
            None
        }))
    }

    greenhouse::run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut joins = Vec::new();
        let mut logs = Vec::new();
        for (sock, peer, lines, expect) in [
            (a, b_addr, vec!["hello from a", "你好"], 1),
            (b, a_addr, vec!["hi from b"], 2),
        ] {
            let log = Arc::new(Mutex::new(Vec::<String>::new()));
            let heard = Arc::new(Event::new());
            let (l, h) = (log.clone(), heard.clone());
            let print = move |m: String| {
                let mut v = l.lock().unwrap();
                v.push(m);
                if v.len() == expect {
                    h.set();
                }
            };
            let input = peer_input(&lines, heard);
            joins.push(greenhouse::thread::spawn(move || {
                let receiver = udp_chat::chat(sock, peer, input, print).unwrap();
                receiver.kill();
            }));
            logs.push(log);
        }
        for j in joins {
            j.join().unwrap();
        }
        assert_eq!(*logs[0].lock().unwrap(), [format!("[{b_addr}] hi from b")]);
        assert_eq!(
            *logs[1].lock().unwrap(),
            [
                format!("[{a_addr}] hello from a"),
                format!("[{a_addr}] 你好")
            ]
        );
    });
}

#[allow(dead_code)]
#[path = "../examples/concurrency_table.rs"]
mod concurrency_table;

/// The seeds' table, scaled down: every cell runs; sleeping tasks overlap
/// in every concurrent mode and not in the sequential one.
#[test]
fn concurrency_table_runs_every_cell_and_sleeps_overlap() {
    use concurrency_table::{print_table, run_table, How, Scale, Work};
    use std::time::Duration;
    let scale = Scale {
        tasks: 10,
        cpu_iters: 100_000,
        lines: 10_000,
        net_delay: Duration::from_millis(10),
        sleep: Duration::from_millis(100),
    };
    let t = run_table(&scale).unwrap();
    assert_eq!(t.hows.len(), 4);
    assert_eq!(t.hows[0], How::Sequential);
    assert_eq!(t.rows.len(), 4);
    let (work, sleep) = &t.rows[3];
    assert_eq!(*work, Work::Sleep);
    assert!(sleep[0] >= Duration::from_millis(1000), "{sleep:?}");
    for d in &sleep[1..] {
        // Ten overlapping 100 ms sleeps: far below the sequential second.
        assert!(*d < Duration::from_millis(500), "{sleep:?}");
    }
    let mut out = Vec::new();
    print_table(&t, &scale, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("模拟 IO 密集型: 20.02 2.03 2.01"), "{out}");
    assert_eq!(out.lines().count(), 6, "{out}");
}
