//! The probe's raw `AF_PACKET` socket for ARP, bound to one interface.
//!
//! Owns: the only unsafe code of the lab — three libc calls (socket, bind,
//! setsockopt). Sending and receiving go through safe `File` read/write on the owned
//! descriptor (a bound packet socket sends on its interface). Must never: hand out the
//! raw descriptor or be used by the agent (the agent has its own VIP socket module).
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use super::arp::ETH_P_ARP;

/// An `AF_PACKET`/`SOCK_RAW` socket receiving and sending ARP frames on one interface.
#[derive(Debug)]
pub struct ArpSocket {
    file: File,
}

impl ArpSocket {
    /// Opens the socket on interface `ifindex`; reads time out after `recv_timeout`.
    /// Needs CAP_NET_RAW.
    pub fn open(ifindex: u32, recv_timeout: Duration) -> io::Result<Self> {
        let proto = ETH_P_ARP.to_be();
        // SAFETY: plain syscall with constant arguments; the result is checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns; OwnedFd
        // closes it on every path from here on.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let ifindex = i32::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a valid sockaddr_ll that outlives the call, and the length
        // passed is its exact size.
        let rc = unsafe {
            libc::bind(
                fd,
                (&raw const addr).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let tv = libc::timeval {
            tv_sec: recv_timeout.as_secs() as libc::time_t,
            tv_usec: libc::suseconds_t::from(recv_timeout.subsec_micros()),
        };
        // SAFETY: `tv` is a valid timeval that outlives the call; the length is its size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast::<libc::c_void>(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ArpSocket {
            file: File::from(owned),
        })
    }

    /// Sends one complete Ethernet frame on the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let n = (&self.file).write(frame)?;
        if n == frame.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short packet write",
            ))
        }
    }

    /// Receives one frame; `WouldBlock`/`TimedOut` when the receive timeout passes.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }
}
