//! A fixed-length slice that the kernel is asked to back with huge pages (2 MB instead of
//! 4 kB) once it is large enough to fill one.
//!
//! The alias index's table is read at a random slot by every `@alias` mention. At 100,000
//! personalities its entries take 8 MB: 2,048 pages of 4 kB, as many as this CPU's
//! second-level TLB holds for everything else too. A mention then pays for a page walk on
//! top of the cache miss, which under a hypervisor is a two-dimensional walk. In 2 MB pages
//! the same table is four TLB entries. Measured with the whole process on huge pages
//! (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`), a mention at 100,000 aliases went from
//! 196–208 ns to 182–190 ns (BENCHMARKS.md §3).
//!
//! Only the allocation differs from a `Vec`: its start is placed on a 2 MB boundary, and the
//! range is advised with `MADV_HUGEPAGE` before any of it is touched, so that the first
//! writes fault in whole huge pages. Where the kernel has transparent huge pages off (or
//! this is not Linux), it is an ordinary slice.

use std::ops::{Deref, DerefMut};

/// The size of a huge page on x86-64 and on ARM64 with 4 kB pages.
const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// `len` values in one allocation whose huge-page-aligned part is advised as huge pages.
pub(crate) struct HugeSlice<T> {
    /// Holds `base + len` initialised values and room for up to one huge page more; never
    /// reallocated, so the alignment found at creation holds for its lifetime.
    buf: Vec<T>,
    /// Where the slice starts in `buf`: the first element on a huge-page boundary.
    base: usize,
}

impl<T: Clone> HugeSlice<T> {
    /// `len` copies of `value`. Slices smaller than a huge page are allocated as usual.
    pub(crate) fn new(len: usize, value: T) -> Self {
        let size = std::mem::size_of::<T>().max(1);
        if len.saturating_mul(size) < HUGE_PAGE {
            return Self {
                buf: vec![value; len],
                base: 0,
            };
        }
        // Room to slide the start to the next boundary.
        let mut buf = Vec::with_capacity(len + HUGE_PAGE.div_ceil(size));
        let start = buf.as_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        let end = start + buf.capacity() * size;
        advise_huge_pages(aligned, end - end % HUGE_PAGE);
        // The padding before `base` is written too (it is less than one huge page); the
        // room after the slice is never touched.
        let base = (aligned - start).div_ceil(size);
        buf.resize(base + len, value);
        Self { buf, base }
    }
}

impl<T> Deref for HugeSlice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.buf[self.base..]
    }
}

impl<T> DerefMut for HugeSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.base..]
    }
}

/// Asks the kernel to back the pages from `start` to `end` (addresses, both on huge-page
/// boundaries, inside one live allocation) with huge pages. Best effort: a kernel without
/// transparent huge pages refuses, and the pages stay small.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages(start: usize, end: usize) {
    if end <= start {
        return;
    }
    // SAFETY: MADV_HUGEPAGE changes only how the kernel backs the range with physical
    // memory. It does not change the range's contents, mapping or protection, so no
    // reference into it (or anywhere else) is affected. The range lies inside an
    // allocation this module owns. A failure leaves everything as it was.
    let _ = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: usize, _end: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_slice_holds_its_values() {
        let mut slice = HugeSlice::new(10, 7u32);
        assert_eq!(&*slice, &[7; 10]);
        slice[3] = 1;
        assert_eq!(slice[3], 1);
        assert_eq!(slice.len(), 10);
    }

    #[test]
    fn a_large_slice_starts_on_a_huge_page_and_holds_its_values() {
        #[derive(Clone, Copy, PartialEq, Debug)]
        #[repr(align(32))]
        struct Entry([u8; 32]);
        let len = 3 * HUGE_PAGE / 32 + 5;
        let mut slice = HugeSlice::new(len, Entry([9; 32]));
        assert_eq!(slice.len(), len);
        assert_eq!(slice.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(slice.iter().all(|e| *e == Entry([9; 32])));
        slice[len - 1] = Entry([1; 32]);
        assert_eq!(slice[len - 1], Entry([1; 32]));
    }

    #[test]
    fn a_slice_of_an_odd_sized_type_starts_within_its_first_huge_page() {
        let len = HUGE_PAGE / 3 + 1;
        let slice = HugeSlice::new(len, [5u8; 3]);
        assert_eq!(slice.len(), len);
        assert!((slice.as_ptr() as usize) % HUGE_PAGE < 3);
        assert!(slice.iter().all(|v| *v == [5; 3]));
    }

    /// The kernel marks an advised range with `hg` in the `VmFlags` of /proc/self/smaps,
    /// whether or not it then finds free huge pages.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_slice_is_advised_as_huge_pages() {
        let slice = HugeSlice::new(2 * HUGE_PAGE, 0u8);
        let at = slice.as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        let mut flags = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((from, to)) = range.split_once('-') {
                    if let (Ok(from), Ok(to)) = (
                        usize::from_str_radix(from, 16),
                        usize::from_str_radix(to, 16),
                    ) {
                        inside = from <= at && at < to;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(found) = line.strip_prefix("VmFlags:") {
                    flags = Some(found.to_owned());
                    break;
                }
            }
        }
        let flags = flags.expect("the slice's mapping is in /proc/self/smaps");
        assert!(
            flags.split_whitespace().any(|f| f == "hg"),
            "VmFlags of the slice's mapping: {flags}"
        );
    }
}
