// Run: cargo run --example greenlet_pingpong -- 5
//
// The seed's greenlet program (test1/test2): two greenlets, A and B, hand
// control to each other with explicit `switch()` calls, printing `---A--`
// and `---B--` in turn. The seed loops forever (with a 0.5 s sleep per
// turn); this version plays the number of rounds given on the command line
// (default 5) and does not sleep.

use std::cell::RefCell;
use std::error::Error;
use std::process::ExitCode;
use std::rc::Rc;

use greenhouse::greenlet::Greenlet;

type Slot = Rc<RefCell<Option<Greenlet<u32>>>>;

/// Plays `rounds` rounds of A and B alternating, calling `print` with each
/// line, and returns the number of rounds played.
pub fn pingpong(rounds: u32, print: impl FnMut(&str) + 'static) -> Result<u32, Box<dyn Error>> {
    let print = Rc::new(RefCell::new(print));
    // The seed's functions refer to gr1/gr2 before they exist; here each
    // greenlet finds the other in a slot filled in once both exist.
    let (slot1, slot2): (Slot, Slot) = Default::default();

    let (p, other) = (print.clone(), slot2.clone());
    let gr1 = Greenlet::new(move |mut round: u32| {
        let gr2 = other.borrow().clone().expect("gr2 exists");
        while round < rounds {
            (p.borrow_mut())("---A--");
            round = gr2.switch(round).expect("B switches back");
        }
        round // returning ends gr1: the value goes to its parent, main
    })?;

    let (p, other) = (print.clone(), slot1.clone());
    let gr2 = Greenlet::new(move |mut round: u32| {
        let gr1 = other.borrow().clone().expect("gr1 exists");
        loop {
            (p.borrow_mut())("---B--");
            round = gr1.switch(round + 1).expect("A switches back");
        }
    })?;

    *slot1.borrow_mut() = Some(gr1.clone());
    *slot2.borrow_mut() = Some(gr2.clone());

    // 切换到gr1中运行 (switch to gr1 and run it)
    let played = gr1.switch(0)?;

    // gr2 waits in its switch forever; clearing the slots drops the last
    // handles when this function returns, which unwinds it.
    slot1.borrow_mut().take();
    slot2.borrow_mut().take();
    Ok(played)
}

const USAGE: &str = "usage: greenlet_pingpong [ROUNDS]   (ROUNDS: a whole number, default 5)";

/// Reads the optional number of rounds from the command-line arguments
/// (program name excluded); the error is the message to print.
pub fn parse_rounds(args: &[String]) -> Result<u32, String> {
    match args {
        [] => Ok(5),
        [n] => n.parse::<u32>().map_err(|e| {
            format!("greenlet_pingpong: invalid number of rounds {n:?}: {e}\n{USAGE}")
        }),
        _ => Err(format!("greenlet_pingpong: too many arguments\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds = match parse_rounds(&args) {
        Ok(n) => n,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match pingpong(rounds, |line| println!("{line}")) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("greenlet_pingpong: {e}");
            ExitCode::FAILURE
        }
    }
}
