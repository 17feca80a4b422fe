//! vbng-vm: the launcher of per-customer vBNG instances.
//!
//! Each instance is the `vbng-uk` image (unikernel-target/image) in a QEMU `microvm`
//! (`-nodefaults`, `-no-reboot`, no firmware: QEMU loads the image through its PVH note),
//! with two virtio-net devices on virtio-mmio: the access side first, the core side
//! second. Day-0 configuration (the customer's sessions, addresses, rates, NAT) travels on
//! the kernel command line.
//!
//! # Module map
//! - [`spec`]: what an instance is made of ([`VmSpec`]) and the QEMU command line for it.
//! - [`vm`]: a running instance ([`Vm`]): start, serial console, boot report, stop.
//! - [`host`]: facts about this host the launcher needs (accelerator, TSC rate).
//! - [`tap`]: opening a tap in another network namespace for QEMU to inherit.
//! - [`image`]: where the image is and how to build it.

pub mod host;
pub mod image;
pub mod spec;
pub mod tap;
pub mod vm;

pub use spec::{Accel, NetBackend, QemuBinary, Transport, VmSpec};
pub use vm::{BootReport, Vm, VmError};
