//! Code the example programs share. Each example includes this folder as a
//! module (`#[path = "../common/mod.rs"] mod common;`), and so do the tests
//! that run the examples' code; not every example uses every part.
#![allow(dead_code)]

pub mod fixture;
pub mod http;
pub mod mode;
pub mod procstat;
