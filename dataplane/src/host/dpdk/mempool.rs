//! Packet buffer pools and owned packet buffers.

use std::ffi::CString;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use super::{DpdkError, Eal, HEADROOM, call_error, errno, sys};
use crate::host::log::{Level, log};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`) with a per-lcore cache.
///
/// Dropping the last `Arc` frees the pool (`rte_mempool_free`) if every buffer is back in
/// it; otherwise the pool is left allocated (and a warning logged), since freeing it would
/// pull the memory from under the buffers still out.
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
    name: String,
    size: u32,
    data_room: u16,
}

// SAFETY: an rte_mempool is built for concurrent use: gets and puts from any thread go
// through its per-lcore caches (lcore threads) or its multi-producer/multi-consumer ring,
// and the count functions only read. The Rust fields are immutable.
unsafe impl Send for Mempool {}
// SAFETY: as above; every method takes &self and is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `mbufs` buffers named `name` (unique in the process, at most 25
    /// bytes), with a cache of `cache` buffers per lcore (at most 512 and at most
    /// `mbufs / 1.5`; 0 for none) and `data_room` bytes per buffer including DPDK's
    /// headroom of [`HEADROOM`] bytes ([`super::DEFAULT_DATA_ROOM`] for whole frames).
    pub fn new(
        eal: &Eal,
        name: &str,
        mbufs: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<Arc<Mempool>, DpdkError> {
        let _ = eal;
        if usize::from(data_room) <= HEADROOM {
            return Err(DpdkError::Invalid(format!(
                "mempool {name:?}: data room of {data_room} bytes leaves no space after the \
                 {HEADROOM}-byte headroom"
            )));
        }
        if cache > sys::RTE_MEMPOOL_CACHE_MAX_SIZE || u64::from(cache) * 3 > u64::from(mbufs) * 2 {
            return Err(DpdkError::Invalid(format!(
                "mempool {name:?}: a per-lcore cache of {cache} buffers needs at most {} and \
                 at most 2/3 of the {mbufs} buffers",
                sys::RTE_MEMPOOL_CACHE_MAX_SIZE
            )));
        }
        let c_name = CString::new(name).map_err(|_| {
            DpdkError::Invalid(format!("mempool name {name:?} contains a NUL byte"))
        })?;
        // SAFETY: EAL is initialised (eal exists); c_name is a valid string for the call;
        // the sizes were checked above.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                mbufs,
                cache,
                0,
                data_room,
                sys::SOCKET_ID_ANY,
            )
        };
        let ptr =
            NonNull::new(ptr).ok_or_else(|| call_error("rte_pktmbuf_pool_create", errno()))?;
        Ok(Arc::new(Mempool {
            ptr,
            name: name.to_owned(),
            size: mbufs,
            data_room,
        }))
    }

    /// Buffers in the pool, including those in the per-lcore caches.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid while self lives; the call only reads counters.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Buffers taken from the pool (by queues' rings, in flight, or held as [`Mbuf`]s).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid while self lives; the call only reads counters.
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Number of buffers the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes per buffer, headroom included.
    pub fn data_room(&self) -> u16 {
        self.data_room
    }

    /// The longest frame one buffer holds (data room minus headroom).
    pub fn max_frame(&self) -> usize {
        usize::from(self.data_room) - HEADROOM
    }

    /// The underlying `rte_mempool`, for raw DPDK calls.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let in_use = self.in_use();
        if in_use != 0 {
            log(
                Level::Warn,
                format_args!(
                    "dpdk mempool={} buffers_out={in_use} msg=\"not freed: buffers still in use\"",
                    self.name
                ),
            );
            return;
        }
        // SAFETY: the pool is valid and no buffer is out (no Mbuf, queue or port refers to
        // it), and no other reference to self exists.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("data_room", &self.data_room)
            .field("available", &self.available())
            .finish()
    }
}

/// An owned packet buffer. Dropping it returns it to its pool (`rte_pktmbuf_free`, the
/// whole chain); it leaves Rust's ownership only through [`Mbuf::into_raw`].
pub struct Mbuf {
    ptr: NonNull<sys::rte_mbuf>,
}

// SAFETY: an Mbuf is the only reference to its buffer (see from_raw), and DPDK buffers may
// be freed from any thread.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes an empty buffer from `pool` (`rte_pktmbuf_alloc`); `None` if the pool is empty.
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: the pool is valid while the reference lives.
        let ptr = unsafe { sys::vbng_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(ptr).map(|ptr| Mbuf { ptr })
    }

    /// The data of the first segment.
    pub fn data(&self) -> &[u8] {
        let (p, len) = self.raw_data();
        // SAFETY: the first segment holds len initialised bytes at p, valid while self is
        // borrowed.
        unsafe { std::slice::from_raw_parts(p, len) }
    }

    /// The data of the first segment, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (p, len) = self.raw_data();
        // SAFETY: as in data(); we own the buffer exclusively, so the bytes may be mutated
        // through this unique borrow.
        unsafe { std::slice::from_raw_parts_mut(p, len) }
    }

    /// Start and length of the first segment's data.
    fn raw_data(&self) -> (*mut u8, usize) {
        let m = self.ptr.as_ptr();
        // SAFETY: m is a valid buffer we own.
        let p = unsafe { sys::vbng_pktmbuf_mtod(m) };
        (p.cast::<u8>(), self.len())
    }

    /// Length of the first segment's data.
    pub fn len(&self) -> usize {
        // SAFETY: reads a field of a valid buffer we own.
        usize::from(unsafe { sys::vbng_pktmbuf_data_len(self.ptr.as_ptr()) })
    }

    /// True if the first segment holds no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the whole packet (all segments).
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: reads a field of a valid buffer we own.
        unsafe { sys::vbng_pktmbuf_pkt_len(self.ptr.as_ptr()) }
    }

    /// Number of segments.
    pub fn segments(&self) -> u16 {
        // SAFETY: reads a field of a valid buffer we own.
        unsafe { sys::vbng_pktmbuf_nb_segs(self.ptr.as_ptr()) }
    }

    /// Bytes that [`Mbuf::append`] can still add to the last segment.
    pub fn tailroom(&self) -> u16 {
        // SAFETY: reads fields of a valid buffer we own.
        unsafe { sys::vbng_pktmbuf_tailroom(self.ptr.as_ptr()) }
    }

    /// Grows the packet by `len` bytes at the end (`rte_pktmbuf_append`) and returns them
    /// (their contents are whatever the buffer held); `None`, changing nothing, if the last
    /// segment has less than `len` bytes of tailroom.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: we own the buffer; append only moves lengths within the buffer.
        let p = unsafe { sys::vbng_pktmbuf_append(self.ptr.as_ptr(), len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: p points to len bytes inside the buffer that now belong to the packet;
        // the unique borrow of self covers them.
        Some(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), usize::from(len)) })
    }

    /// Gives up ownership: the caller must pass the pointer to DPDK (which frees it, e.g.
    /// `rte_eth_tx_burst`) or back to [`Mbuf::from_raw`].
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Takes ownership of a buffer.
    ///
    /// # Safety
    /// `p` is a valid, non-null packet buffer of a pool that outlives its use, that nothing
    /// else refers to or will free (its reference count is 1 and the caller gives up its
    /// pointer), e.g. one returned by [`Mbuf::into_raw`] or received by
    /// [`super::DpdkQueue::rx_burst_raw`].
    ///
    /// # Panics
    /// If `p` is null.
    pub unsafe fn from_raw(p: *mut sys::rte_mbuf) -> Mbuf {
        Mbuf {
            ptr: NonNull::new(p).expect("Mbuf::from_raw: null pointer"),
        }
    }

    /// The underlying `rte_mbuf`, still owned by self.
    pub fn as_ptr(&self) -> *const sys::rte_mbuf {
        self.ptr.as_ptr()
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the buffer and nothing else refers to it.
        unsafe { sys::vbng_pktmbuf_free(self.ptr.as_ptr()) };
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("pkt_len", &self.pkt_len())
            .field("segments", &self.segments())
            .finish()
    }
}
