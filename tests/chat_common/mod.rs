//! What the chat-server tests share: starting a server in each mode, a
//! line client, and the protocol, disconnect, idle, slow-reader and load
//! checks every mode must pass. Included by tests/chat_server.rs (green and
//! threads) and tests/chat_server_patched.rs (patched mode, in a process of
//! its own because `patch_all` is process-wide).

#[allow(dead_code)]
#[path = "../../examples/chat-server/main.rs"]
pub mod chat_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use chat_server::Config;

/// Which build of the server (examples/chat-server/main.rs) to run.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// greenhouse's sockets, locks and threads.
    Green,
    /// std's: one OS thread per reader and writer.
    Threads,
    /// std's sockets on greenhouse's threads, after `monkey::patch_all`, on
    /// ONE worker: if a std socket call blocked the worker instead of
    /// parking its green thread, the server could not serve two clients at
    /// once and the tests' reads would time out.
    Patched,
}

/// Starts a server (left running until the test process exits).
pub fn start(mode: Mode, cfg: Config) -> SocketAddr {
    match mode {
        Mode::Green => {
            let l = greenhouse::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            std::thread::spawn(move || {
                greenhouse::run(move || chat_server::green::Server::new(cfg).serve(l))
            });
            addr
        }
        Mode::Threads => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            std::thread::spawn(move || chat_server::threads::Server::new(cfg).serve(l));
            addr
        }
        Mode::Patched => {
            greenhouse::monkey::patch_all().unwrap();
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let rt = greenhouse::runtime::Runtime::builder()
                .workers(1)
                .build()
                .unwrap();
            std::thread::spawn(move || {
                rt.run(move || chat_server::patched::Server::new(cfg).serve(l))
            });
            addr
        }
    }
}

/// A test client: lines in, lines out, a generous read time-out so a
/// missing line fails the test instead of hanging it.
pub struct Client {
    pub w: TcpStream,
    pub r: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        let mut c = Client { w, r };
        assert_eq!(
            c.line(),
            "* welcome to greenhouse chat; what is your nickname?"
        );
        c
    }

    /// Connects and takes `nick` (skipping the hello and own join notice).
    pub fn named(addr: SocketAddr, nick: &str) -> Client {
        let mut c = Client::connect(addr);
        c.say(nick);
        assert_eq!(
            c.line(),
            format!("* hello {nick}; /help lists the commands")
        );
        assert_eq!(c.line(), format!("* {nick} joined lobby"));
        c
    }

    pub fn say(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    pub fn line(&mut self) -> String {
        let mut s = String::new();
        let n = self
            .r
            .read_line(&mut s)
            .expect("a line before the time-out");
        assert!(n > 0, "connection closed while a line was expected");
        assert!(s.ends_with('\n'));
        s.pop();
        s
    }

    pub fn expect_eof(&mut self) {
        let mut rest = String::new();
        self.r.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "");
    }
}

pub fn protocol(mode: Mode) {
    let addr = start(mode, Config::default());
    let mut alice = Client::connect(addr);
    // Empty and malformed nicknames are refused; the connection stays usable.
    alice.say("");
    assert_eq!(alice.line(), "! nickname must not be empty");
    alice.say("no spaces please");
    assert!(alice.line().starts_with("! nickname must be"));
    alice.say("alice");
    assert_eq!(alice.line(), "* hello alice; /help lists the commands");
    assert_eq!(alice.line(), "* alice joined lobby");

    let mut bob = Client::connect(addr);
    bob.say("alice");
    assert_eq!(bob.line(), "! nickname alice is taken; try another");
    bob.say("bob");
    assert_eq!(bob.line(), "* hello bob; /help lists the commands");
    assert_eq!(bob.line(), "* bob joined lobby");
    assert_eq!(alice.line(), "* bob joined lobby");

    alice.say("hi bob");
    assert_eq!(alice.line(), "[lobby] alice: hi bob");
    assert_eq!(bob.line(), "[lobby] alice: hi bob");
    bob.say("/who");
    assert_eq!(bob.line(), "* in lobby: alice, bob");
    bob.say("/rooms");
    assert_eq!(bob.line(), "* rooms: lobby (2)");
    alice.say("/msg bob psst");
    assert_eq!(bob.line(), "[pm from alice] psst");
    assert_eq!(alice.line(), "[pm to bob] psst");
    alice.say("/msg carol hello?");
    assert_eq!(alice.line(), "! no such nick: carol");
    alice.say("/help");
    assert!(alice
        .line()
        .starts_with("* commands: /nick NAME, /join ROOM"));

    // Bad input: an error line each, and the connection goes on.
    alice.say("/frobnicate now");
    assert_eq!(alice.line(), "! unknown command /frobnicate (try /help)");
    alice.say(&"x".repeat(5000));
    assert_eq!(alice.line(), "! line too long (max 4096 bytes); ignored");
    alice.w.write_all(b"caf\xe9 latin-1\n").unwrap();
    assert_eq!(alice.line(), "! invalid UTF-8; line ignored");
    alice.say("/nick");
    assert_eq!(alice.line(), "! nickname must not be empty");
    alice.say("still here");
    assert_eq!(alice.line(), "[lobby] alice: still here");
    assert_eq!(bob.line(), "[lobby] alice: still here");

    // Rooms and renames.
    alice.say("/join rust");
    assert_eq!(bob.line(), "* alice left lobby");
    assert_eq!(alice.line(), "* alice joined rust");
    alice.say("/nick bob");
    assert_eq!(alice.line(), "! nickname bob is taken; try another");
    alice.say("/nick al");
    assert_eq!(alice.line(), "* alice is now known as al");
    bob.say("/rooms");
    assert_eq!(bob.line(), "* rooms: lobby (1), rust (1)");
    bob.say("in lobby");
    assert_eq!(bob.line(), "[lobby] bob: in lobby");
    alice.say("in rust");
    assert_eq!(alice.line(), "[rust] al: in rust");

    // /quit: bye, closed; the old and new nicknames are both free again.
    alice.say("/quit");
    assert_eq!(alice.line(), "* bye");
    alice.expect_eof();
    let _al = Client::named(addr, "al");
    assert_eq!(bob.line(), "* al joined lobby");
    let _alice = Client::named(addr, "alice");
}

pub fn abrupt_disconnect(mode: Mode) {
    let addr = start(mode, Config::default());
    let mut bob = Client::named(addr, "bob");
    let mut carol = Client::named(addr, "carol");
    assert_eq!(bob.line(), "* carol joined lobby");
    // Half a line, then gone.
    carol.w.write_all(b"I was about to say").unwrap();
    drop(carol);
    assert_eq!(bob.line(), "* carol left lobby");
    let _carol = Client::named(addr, "carol");
    assert_eq!(bob.line(), "* carol joined lobby");
}

pub fn idle_timeout(mode: Mode) {
    let cfg = Config {
        idle_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let addr = start(mode, cfg);
    let mut sleepy = Client::named(addr, "sleepy");
    let mut chatty = Client::named(addr, "chatty");
    assert_eq!(sleepy.line(), "* chatty joined lobby");
    // chatty keeps talking (a tick each 100 ms); sleepy says nothing.
    let left = "* sleepy left lobby (idle)";
    let mut chatty_saw_leave = false;
    let notice = loop {
        chatty.say("tick");
        loop {
            match chatty.line() {
                l if l == left => chatty_saw_leave = true,
                l => {
                    assert_eq!(l, "[lobby] chatty: tick");
                    break;
                }
            }
        }
        let l = sleepy.line();
        if l.starts_with('!') {
            break l;
        }
        assert_eq!(l, "[lobby] chatty: tick");
        std::thread::sleep(Duration::from_millis(100)); // pacing, not sync
    };
    assert_eq!(notice, "! idle for 1 s; disconnecting");
    sleepy.expect_eof();
    if !chatty_saw_leave {
        assert_eq!(chatty.line(), left);
    }
}

pub fn slow_reader(mode: Mode) {
    let cfg = Config {
        queue_len: 8,
        ..Config::default()
    };
    let addr = start(mode, cfg);
    let mut slow = Client::named(addr, "slow");
    let mut fast = Client::named(addr, "fast");
    // From here `slow` reads nothing while `fast` floods the room, one
    // message per echo (so fast's own queue never grows).
    let big = "y".repeat(4000);
    let echo = format!("[lobby] fast: {big}");
    let mut sent = 0u64;
    'flood: loop {
        assert!(sent < 100_000, "slow was never evicted");
        fast.say(&big);
        sent += 1;
        loop {
            let l = fast.line();
            if l == "* slow left lobby (too slow)" {
                break 'flood;
            }
            assert_eq!(l, echo);
            if l == echo {
                break;
            }
        }
    }
    assert!(
        sent > 8,
        "the queue of 8 cannot have filled after {sent} messages"
    );
    // The room goes on without the slow reader.
    fast.say("/who");
    let mut l = fast.line();
    if l == echo {
        l = fast.line(); // the echo of the message that tipped slow over
    }
    assert_eq!(l, "* in lobby: fast");
    // The slow client, reading at last, finds it was told, then closed.
    let mut rest = String::new();
    slow.r.read_to_string(&mut rest).unwrap();
    assert!(
        rest.ends_with("! you fell too far behind; disconnecting\n"),
        "{}",
        &rest[rest.len().saturating_sub(200)..]
    );
}

#[allow(dead_code)]
#[path = "../../examples/chat-load.rs"]
pub mod chat_load;

pub fn load(mode: Mode) {
    let addr = start(mode, Config::default());
    let cfg = chat_load::LoadConfig {
        addr,
        clients: 30,
        messages: 5,
        room_size: 7, // the last room has 2 members
        server_pid: Some(std::process::id()),
        connect_concurrency: 8,
        timeout: 60,
    };
    let c = cfg.clone();
    let r = greenhouse::run(move || chat_load::run_load(&c)).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.rooms_ok, r.rooms), (5, 5));
    assert_eq!(r.sent, 150);
    // Each message reaches every member of its room, the sender too.
    assert_eq!(r.delivered, 4 * 7 * 7 * 5 + 2 * 2 * 5);
    assert!(r.p99 >= r.p50);
    let (pid, peaks) = r.server.unwrap();
    assert_eq!(pid, std::process::id());
    assert!(peaks.rss > 0 && peaks.threads > 0);
    let mut out = Vec::new();
    chat_load::print_report(&cfg, &r, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("5/5 rooms ok"), "{out}");
}
