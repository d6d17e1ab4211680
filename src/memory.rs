//! Process memory: the global allocator (the system allocator, with one
//! log line when an allocation fails) and handing freed heap memory back
//! to the kernel.
//!
//! Process-wide, not per shard. Nothing here allocates on its own paths:
//! the failure report formats into a stack buffer and writes to stderr.
//!
//! Why `trim`: glibc's malloc gives each thread its own arenas and returns
//! freed memory to the kernel only from the top of a heap; the buffers of
//! thousands of closed connections sit in the middle, so the broker's RSS
//! stayed about 100 MB higher after 5,000 idle connections had come and
//! gone. `malloc_trim(0)` releases every whole free page of every arena.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// The system allocator; a failed allocation first writes one line naming
/// its size, then returns null so that Rust's allocation-error handler
/// aborts as it always does ("memory allocation of N bytes failed").
/// std's `alloc_error_hook`, the direct way to do this, is unstable.
pub struct ReportingAllocator;

#[global_allocator]
static ALLOCATOR: ReportingAllocator = ReportingAllocator;

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and returns its result unchanged, so `System`'s guarantees
// carry over; the only addition is a report when `System` returns null.
unsafe impl GlobalAlloc for ReportingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc(layout) };
        if ptr.is_null() {
            report_failure(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if ptr.is_null() {
            report_failure(layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if new.is_null() {
            report_failure(new_size);
        }
        new
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// One line on stderr, formatted without allocating (the allocator just
/// failed): the size, and that the process is about to stop.
fn report_failure(size: usize) {
    let mut line = [0u8; 160];
    let len = failure_line(size, &mut line);
    let _ = std::io::stderr().write_all(&line[..len]);
}

/// Writes the report for `size` into `line`; returns its length.
fn failure_line(size: usize, line: &mut [u8]) -> usize {
    let mut cursor = std::io::Cursor::new(line);
    let _ = writeln!(
        cursor,
        "corelog: out of memory: an allocation of {size} bytes failed; the broker stops"
    );
    cursor.position() as usize
}

/// Hands freed heap memory back to the kernel; true if some was. Costs a
/// walk over the allocator's free lists (a few milliseconds on a large
/// heap, during which other threads' allocations wait), so callers do it
/// rarely and only after memory was freed.
#[allow(unsafe_code)]
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers and is documented MT-Safe
        // by glibc; it only releases pages the allocator holds free.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_report_fits_its_buffer() {
        // The longest size still yields a whole line.
        let mut line = [0u8; 160];
        let len = failure_line(usize::MAX, &mut line);
        assert!(line[..len].ends_with(b"stops\n"), "{:?}", &line[..len]);
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_allocator_returns_null_for_an_impossible_size() {
        // A size the system cannot give: the wrapper reports and returns
        // null instead of aborting itself.
        let layout = Layout::from_size_align(isize::MAX as usize - 4095, 4096).unwrap();
        // SAFETY: a valid, non-zero layout; the null result is not used.
        let ptr = unsafe { ALLOCATOR.alloc(layout) };
        assert!(ptr.is_null());
    }

    #[test]
    fn trim_runs() {
        let big: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 256 * 1024]).collect();
        drop(big);
        let _ = trim();
    }
}
