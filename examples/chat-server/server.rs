// The chat server. This file is compiled three times (see main.rs), each
// with its own `TcpListener`, `TcpStream`, `Mutex`, bounded channel
// (`bounded`, `Sender`) and `thread` in scope: greenhouse's, std's, and
// std's sockets with greenhouse's threads and locks (under `patch_all`).
// Not a line of it differs between them.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::Arc;

use super::lines::{Line, LineReader};
use super::Config;

/// One connected client, as the rest of the server sees it.
struct Client {
    /// Its bounded outbound queue; the client's writer thread holds the
    /// receiving end. The room never waits for a slow reader: a full queue
    /// gets its client evicted instead. The writer ends once every `Client`
    /// handle is gone (the client left) and the queue is drained, or at the
    /// first message after an eviction, dropping the backlog.
    out: Sender<Arc<str>>,
    /// Another handle to the socket, to cut the reader short on eviction.
    stream: TcpStream,
    /// Set once, by whoever found the queue full; the writer reads it too.
    evicted: Arc<AtomicBool>,
}

impl Client {
    /// Queues `msg`; `false` if the queue is full (nothing queued). A queue
    /// whose writer has gone swallows messages.
    fn push(&self, msg: Arc<str>) -> bool {
        !matches!(self.out.try_send(msg), Err(TrySendError::Full(_)))
    }

    fn send(&self, line: &str) {
        self.push(Arc::from(format!("{line}\n")));
    }
}

/// A client that picked a nickname.
struct Member {
    nick: String,
    room: String,
    client: Arc<Client>,
}

#[derive(Default)]
struct State {
    members: HashMap<u64, Member>,
    nicks: HashMap<String, u64>,
    /// Room name → members in the order they joined.
    rooms: BTreeMap<String, Vec<u64>>,
}

impl State {
    /// Sends `line` to every member of `room`; members whose queue is full
    /// are evicted (told, disconnected: their reader does the leaving).
    fn broadcast(&self, room: &str, line: &str) {
        let msg: Arc<str> = Arc::from(format!("{line}\n"));
        for id in self.rooms.get(room).into_iter().flatten() {
            let c = &self.members[id].client;
            if !c.push(msg.clone()) && !c.evicted.swap(true, Ordering::SeqCst) {
                // Its writer stops at its next message; this wakes its
                // reader with end-of-file, and the reader leaves the room.
                let _ = c.stream.shutdown(Shutdown::Read);
            }
        }
    }

    fn join(&mut self, id: u64, room: &str) {
        self.rooms.entry(room.to_string()).or_default().push(id);
        let m = self.members.get_mut(&id).expect("a member");
        m.room = room.to_string();
        let line = format!("* {} joined {room}", m.nick);
        self.broadcast(room, &line);
    }

    fn leave(&mut self, id: u64, why: &str) {
        let (nick, room) = {
            let m = &self.members[&id];
            (m.nick.clone(), m.room.clone())
        };
        if let Some(ids) = self.rooms.get_mut(&room) {
            ids.retain(|&x| x != id);
            if ids.is_empty() {
                self.rooms.remove(&room);
            }
        }
        self.broadcast(&room, &format!("* {nick} left {room}{why}"));
    }
}

/// The chat server: shared state plus settings.
pub struct Server {
    state: Mutex<State>,
    cfg: Config,
    next_id: AtomicU64,
}

/// Why a nickname is refused, if it is.
fn check_nick(nick: &str) -> Result<(), String> {
    if nick.is_empty() {
        return Err("! nickname must not be empty".into());
    }
    if nick.len() > 32 || !nick.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err("! nickname must be 1-32 letters, digits, '_' or '-'".into());
    }
    Ok(())
}

const HELP: &str = "* commands: /nick NAME, /join ROOM, /rooms, /who, /msg NICK TEXT, /quit, /help; other lines go to your room";

impl Server {
    /// A server with these settings.
    pub fn new(cfg: Config) -> Arc<Server> {
        Arc::new(Server {
            state: Mutex::new(State::default()),
            cfg,
            next_id: AtomicU64::new(1),
        })
    }

    /// Accepts clients until the listener fails for good, serving each on
    /// two threads (reader and writer).
    ///
    /// # Errors
    /// If a thread cannot be spawned.
    pub fn serve(self: &Arc<Server>, listener: TcpListener) -> io::Result<()> {
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    let server = self.clone();
                    thread::Builder::new()
                        .name("chat-reader".into())
                        .stack_size(128 * 1024)
                        .spawn(move || {
                            let _ = server.handle(s);
                        })?;
                }
                Err(e) => {
                    eprintln!("chat-server: accept: {e}");
                    thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }

    /// Serves one connection (on the calling thread; its writer gets a
    /// thread of its own).
    ///
    /// # Errors
    /// If the socket cannot be set up.
    pub fn handle(self: &Arc<Server>, stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(self.cfg.idle_timeout))?;
        stream.set_write_timeout(Some(self.cfg.write_timeout))?;
        stream.set_nodelay(true)?;
        let (out, queue) = bounded::<Arc<str>>(self.cfg.queue_len);
        let client = Arc::new(Client {
            out,
            stream: stream.try_clone()?,
            evicted: Arc::new(AtomicBool::new(false)),
        });
        let writer = {
            // Not the `Client`: its sender would keep the queue open forever.
            let (evicted, mut s) = (client.evicted.clone(), stream.try_clone()?);
            thread::Builder::new()
                .name("chat-writer".into())
                .stack_size(128 * 1024)
                .spawn(move || {
                    for m in queue.iter() {
                        if evicted.load(Ordering::SeqCst) || s.write_all(m.as_bytes()).is_err() {
                            break;
                        }
                    }
                    if evicted.load(Ordering::SeqCst) {
                        let _ = s.write_all(b"! you fell too far behind; disconnecting\n");
                    }
                    let _ = s.shutdown(Shutdown::Both);
                })?
        };
        drop(writer); // detached: it ends when the queue does
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let why = self.converse(id, &client, LineReader::new(stream, self.cfg.max_line));
        let mut st = self.state.lock().unwrap();
        if st.members.contains_key(&id) {
            let why = if client.evicted.load(Ordering::SeqCst) {
                " (too slow)"
            } else {
                why
            };
            st.leave(id, why);
            let m = st.members.remove(&id).expect("a member");
            st.nicks.remove(&m.nick);
        }
        drop(st);
        // The last handle: the writer sends what is queued, then ends.
        drop(client);
        Ok(())
    }

    /// The protocol, until the client goes; returns why it went (for the
    /// room's notice).
    fn converse(&self, id: u64, me: &Arc<Client>, mut lines: LineReader<TcpStream>) -> &'static str {
        me.send("* welcome to greenhouse chat; what is your nickname?");
        let mut named = false;
        loop {
            let line = match lines.next_line() {
                Ok(Line::Text(t)) => t,
                Ok(Line::TooLong) => {
                    me.send(&format!("! line too long (max {} bytes); ignored", self.cfg.max_line));
                    continue;
                }
                Ok(Line::BadUtf8) => {
                    me.send("! invalid UTF-8; line ignored");
                    continue;
                }
                Ok(Line::Idle) => {
                    me.send(&format!(
                        "! idle for {} s; disconnecting",
                        self.cfg.idle_timeout.as_secs()
                    ));
                    return " (idle)";
                }
                Ok(Line::Eof) | Err(_) => return "",
            };
            if me.evicted.load(Ordering::SeqCst) {
                return " (too slow)";
            }
            if !named {
                let nick = line.trim();
                match self.register(id, nick, me) {
                    Ok(()) => named = true,
                    Err(e) => me.send(&e),
                }
                continue;
            }
            let (cmd, rest) = match line.strip_prefix('/') {
                Some(c) => {
                    let (cmd, rest) = c.split_once(' ').unwrap_or((c, ""));
                    (Some(cmd), rest.trim())
                }
                None => (None, line.as_str()),
            };
            match cmd {
                None if line.trim().is_empty() => {}
                None => {
                    let st = self.state.lock().unwrap();
                    let m = &st.members[&id];
                    st.broadcast(&m.room, &format!("[{}] {}: {line}", m.room, m.nick));
                }
                Some("nick") => self.rename(id, rest, me),
                Some("join") => {
                    if let Err(e) = check_nick(rest) {
                        me.send(&e.replace("nickname", "room name"));
                    } else {
                        let mut st = self.state.lock().unwrap();
                        if st.members[&id].room == rest {
                            me.send(&format!("! you are already in {rest}"));
                        } else {
                            st.leave(id, "");
                            st.join(id, rest);
                        }
                    }
                }
                Some("rooms") => {
                    let st = self.state.lock().unwrap();
                    let list: Vec<String> = st
                        .rooms
                        .iter()
                        .map(|(r, ids)| format!("{r} ({})", ids.len()))
                        .collect();
                    me.send(&format!("* rooms: {}", list.join(", ")));
                }
                Some("who") => {
                    let st = self.state.lock().unwrap();
                    let room = &st.members[&id].room;
                    let nicks: Vec<&str> = st.rooms[room]
                        .iter()
                        .map(|i| st.members[i].nick.as_str())
                        .collect();
                    me.send(&format!("* in {room}: {}", nicks.join(", ")));
                }
                Some("msg") => {
                    let (to, text) = rest.split_once(' ').unwrap_or((rest, ""));
                    let text = text.trim();
                    let st = self.state.lock().unwrap();
                    let from = &st.members[&id].nick;
                    match st.nicks.get(to) {
                        _ if text.is_empty() => me.send("! usage: /msg NICK TEXT"),
                        Some(t) => {
                            st.members[t].client.send(&format!("[pm from {from}] {text}"));
                            me.send(&format!("[pm to {to}] {text}"));
                        }
                        None => me.send(&format!("! no such nick: {to}")),
                    }
                }
                Some("quit") => {
                    me.send("* bye");
                    return "";
                }
                Some("help") => me.send(HELP),
                Some(other) => me.send(&format!("! unknown command /{other} (try /help)")),
            }
        }
    }

    /// Takes `nick` for client `id` and puts it in the lobby.
    fn register(&self, id: u64, nick: &str, me: &Arc<Client>) -> Result<(), String> {
        check_nick(nick)?;
        let mut st = self.state.lock().unwrap();
        if st.nicks.contains_key(nick) {
            return Err(format!("! nickname {nick} is taken; try another"));
        }
        st.nicks.insert(nick.to_string(), id);
        st.members.insert(
            id,
            Member {
                nick: nick.to_string(),
                room: String::new(),
                client: me.clone(),
            },
        );
        me.send(&format!("* hello {nick}; /help lists the commands"));
        st.join(id, "lobby");
        Ok(())
    }

    /// `/nick NAME`: a new unique nickname, announced to the room.
    fn rename(&self, id: u64, nick: &str, me: &Client) {
        if let Err(e) = check_nick(nick) {
            return me.send(&e);
        }
        let mut st = self.state.lock().unwrap();
        if st.nicks.contains_key(nick) {
            return me.send(&format!("! nickname {nick} is taken; try another"));
        }
        let m = st.members.get_mut(&id).expect("a member");
        let old = std::mem::replace(&mut m.nick, nick.to_string());
        let room = m.room.clone();
        st.nicks.remove(&old);
        st.nicks.insert(nick.to_string(), id);
        st.broadcast(&room, &format!("* {old} is now known as {nick}"));
    }
}
