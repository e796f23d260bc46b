//! The chat-server example over real sockets, in the green and threads modes (patched mode:
//! tests/chat_server_patched.rs): the protocol,
//! every bad-input case, idle time-out, abrupt disconnects, and eviction of
//! a slow reader.

#[allow(dead_code)]
mod chat_common;

use chat_common::{
    abrupt_disconnect, chat_load, chat_server, idle_timeout, load, protocol, slow_reader, Mode,
};

#[test]
fn green_protocol_and_bad_input() {
    protocol(Mode::Green);
}

#[test]
fn threads_protocol_and_bad_input() {
    protocol(Mode::Threads);
}

#[test]
fn green_abrupt_disconnect_frees_the_nick_and_tells_the_room() {
    abrupt_disconnect(Mode::Green);
}

#[test]
fn threads_abrupt_disconnect_frees_the_nick_and_tells_the_room() {
    abrupt_disconnect(Mode::Threads);
}

#[test]
fn green_idle_clients_time_out() {
    idle_timeout(Mode::Green);
}

#[test]
fn threads_idle_clients_time_out() {
    idle_timeout(Mode::Threads);
}

#[test]
fn green_slow_reader_is_evicted_and_the_room_goes_on() {
    slow_reader(Mode::Green);
}

#[test]
fn threads_slow_reader_is_evicted_and_the_room_goes_on() {
    slow_reader(Mode::Threads);
}

#[test]
fn line_reader_handles_long_lines_bad_utf8_and_eof_mid_line() {
    use chat_server::lines::{Line, LineReader};
    let mut input = b"ok\r\n".to_vec();
    input.extend(vec![b'a'; 50]);
    input.extend(b"\nnext\n\xff\xfe\nhalf");
    let mut r = LineReader::new(&input[..], 10);
    assert_eq!(r.next_line().unwrap(), Line::Text("ok".into()));
    assert_eq!(r.next_line().unwrap(), Line::TooLong);
    assert_eq!(r.next_line().unwrap(), Line::Text("next".into()));
    assert_eq!(r.next_line().unwrap(), Line::BadUtf8);
    assert_eq!(r.next_line().unwrap(), Line::Eof);
}

#[test]
fn green_server_passes_the_load_checks() {
    load(Mode::Green);
}

#[test]
fn threads_server_passes_the_load_checks() {
    load(Mode::Threads);
}

#[test]
fn chat_load_finds_a_listener_by_its_port() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        chat_load::find_listener_pid(l.local_addr().unwrap()),
        Some(std::process::id())
    );
}
