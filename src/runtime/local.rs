//! Storage for `green_local!` values: a map from a key's address to its value,
//! one map per green thread (and one per OS thread for code outside green
//! threads).

use std::any::Any;
use std::collections::HashMap;

/// Values of one green thread, keyed by the address of their `LocalKey`.
/// Boxed values never move once inserted, so a pointer to one stays valid
/// until `clear`.
#[allow(clippy::box_collection)] // deliberate: one word in every task record
pub(crate) struct LocalMap {
    /// Boxed: most green threads never use green-locals, and the map would
    /// otherwise take six words of every task record.
    values: Option<Box<HashMap<usize, Box<dyn Any>>>>,
}

impl LocalMap {
    pub(crate) const fn new() -> LocalMap {
        LocalMap { values: None }
    }

    /// The value stored for `key`, if any.
    pub(crate) fn get<T: 'static>(&self, key: usize) -> Option<*const T> {
        let v = self.values.as_ref()?.get(&key)?;
        Some(v.downcast_ref::<T>().expect("green_local key type") as *const T)
    }

    /// Stores `value` for `key` unless one is there already; returns the
    /// stored one.
    pub(crate) fn insert<T: 'static>(&mut self, key: usize, value: T) -> *const T {
        let map = self.values.get_or_insert_with(Default::default);
        let v = map.entry(key).or_insert_with(|| Box::new(value));
        v.downcast_ref::<T>().expect("green_local key type") as *const T
    }

    /// Takes all values out, to be dropped by the caller.
    #[allow(clippy::box_collection)]
    pub(crate) fn take(&mut self) -> Option<Box<HashMap<usize, Box<dyn Any>>>> {
        self.values.take()
    }
}
