//! A deliberate stack overflow, shared by the tests whose child processes
//! overflow a green thread's or greenlet's stack on purpose.

/// Recurses with a 1 KiB frame until the stack's guard page is hit; never
/// returns.
#[inline(never)]
#[allow(unconditional_recursion)] // deliberately unbounded: it must overflow
pub fn recurse(depth: u64, buf: &mut [u8; 1024]) -> u64 {
    let mut local = [0u8; 1024];
    local[(depth % 1024) as usize] = buf[0].wrapping_add(1);
    // black_box keeps the frame and the recursion real.
    std::hint::black_box(&mut local);
    recurse(depth + 1, &mut local) + local[3] as u64
}
