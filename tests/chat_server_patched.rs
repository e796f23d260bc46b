//! The chat server's patched mode: the server code written against
//! `std::net` (the threads mode's sockets) on greenhouse's threads, after
//! `monkey::patch_all`, on one worker. The same protocol, disconnect and
//! slow-reader checks as the other modes, and chat-load's ordering checks.
//! A process of its own: `patch_all` is process-wide.

#[allow(dead_code)]
mod chat_common;

use chat_common::{abrupt_disconnect, load, protocol, slow_reader, Mode};

#[test]
fn patched_protocol_and_bad_input() {
    protocol(Mode::Patched);
}

#[test]
fn patched_abrupt_disconnect_frees_the_nick_and_tells_the_room() {
    abrupt_disconnect(Mode::Patched);
}

#[test]
fn patched_slow_reader_is_evicted_and_the_room_goes_on() {
    slow_reader(Mode::Patched);
}

#[test]
fn patched_server_passes_the_load_checks() {
    load(Mode::Patched);
}
