//! The crate's one raw packet-socket module: the AF_PACKET sockets of the VIP driver,
//! one that puts announcement frames on an interface, and one that receives the
//! frames of one EtherType on an interface (for the ARP/NDP responder, for the tests
//! that check what goes out on the wire, and for the lab's probe, which sends its
//! who-has and reads the replies through it).
//!
//! Owns the only unsafe code of the crate: the libc calls that open, bind, send on,
//! filter and receive from a packet socket. Must never build or interpret frames
//! (that is `packet.rs`), and must never send on any interface but the one it is
//! bound to.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::packet::{self, Mac};

/// A raw packet socket bound to one interface (and to one EtherType for receiving;
/// 0 receives nothing, which is what a sender wants so no queue fills up).
#[derive(Debug)]
pub(super) struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// Opens a non-blocking `AF_PACKET`/`SOCK_RAW` socket bound to `ifindex`.
    /// Needs CAP_NET_RAW.
    pub(super) fn bind(ifindex: u32, protocol: u16) -> io::Result<Self> {
        let ifindex = i32::try_from(ifindex).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range")
        })?;
        // SAFETY: plain syscall with constant arguments; no pointers are passed.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                i32::from(protocol.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor the kernel just returned to us and nothing else
        // owns it; OwnedFd closes it exactly once.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let addr = link_addr(ifindex, protocol, [0; 6]);
        // SAFETY: `addr` is a fully initialised sockaddr_ll that outlives the call,
        // and the length passed is its exact size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                sockaddr_ll_len(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, ifindex })
    }

    /// Sends one complete Ethernet frame (header included) out of the interface.
    pub(super) fn send(&self, frame: &[u8]) -> io::Result<()> {
        let (Some(dst), Some(ethertype)) = (packet::destination(frame), packet::ethertype(frame))
        else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame shorter than an Ethernet header",
            ));
        };
        let addr = link_addr(self.ifindex, ethertype, dst);
        // SAFETY: `frame` and `addr` are valid for the lengths passed and outlive the
        // call; the kernel only reads from them.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const addr).cast::<libc::sockaddr>(),
                sockaddr_ll_len(),
            )
        };
        match usize::try_from(sent) {
            Ok(n) if n == frame.len() => Ok(()),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "frame sent partially",
            )),
            Err(_) => Err(io::Error::last_os_error()),
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn link_addr(ifindex: i32, protocol: u16, dst: Mac) -> libc::sockaddr_ll {
    let mut sll_addr = [0u8; 8];
    sll_addr[..6].copy_from_slice(&dst);
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr,
    }
}

fn sockaddr_ll_len() -> libc::socklen_t {
    // sockaddr_ll is 20 bytes: the cast cannot truncate.
    size_of::<libc::sockaddr_ll>() as libc::socklen_t
}

/// A receiving packet socket on tokio's reactor: the ARP responder's (which also
/// sends its replies through it), the tests' capture of what goes on the wire, and
/// the lab probe's ARP socket.
#[derive(Debug)]
pub(crate) struct Capture(tokio::io::unix::AsyncFd<PacketSocket>);

impl Capture {
    /// Captures the frames of `ethertype` arriving on (or leaving) `ifindex`. Must be
    /// called inside a tokio runtime. Needs CAP_NET_RAW.
    pub(crate) fn bind(ifindex: u32, ethertype: u16) -> io::Result<Self> {
        let socket = PacketSocket::bind(ifindex, ethertype)?;
        // SAFETY: the PacketSocket owns its descriptor and neither closes nor replaces
        // it while registered; it is closed only when the AsyncFd (and it) is dropped.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(socket) }.map_err(io::Error::from)?;
        Ok(Self(fd))
    }

    /// Waits for the next frame.
    pub(crate) async fn next_frame(&self) -> io::Result<Vec<u8>> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|socket| recv(socket.get_ref())) {
                Ok(frame) => return frame,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one complete Ethernet frame out of the interface it is bound to.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.0.get_ref().send(frame)
    }

    /// Lets only ICMPv6 neighbour solicitations through to this socket (a classic BPF
    /// filter run by the kernel), so that an IPv6 capture does not copy every IPv6
    /// packet of the interface to user space. Frames queued before the filter was
    /// attached still arrive; callers parse every frame anyway.
    pub(super) fn only_neighbor_solicitations(&self) -> io::Result<()> {
        // ldh [12]; jeq #0x86dd; ldb [20] (next header); jeq #58 (ICMPv6);
        // ldb [54] (ICMPv6 type); jeq #135; accept whole frame | drop.
        let mut program = [
            bpf(0x28, 0, 0, 12),
            bpf(0x15, 0, 5, u32::from(packet::ETHERTYPE_IPV6)),
            bpf(0x30, 0, 0, 20),
            bpf(0x15, 0, 3, 58),
            bpf(0x30, 0, 0, 54),
            bpf(0x15, 0, 1, 135),
            bpf(0x06, 0, 0, u32::MAX),
            bpf(0x06, 0, 0, 0),
        ];
        let fprog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_mut_ptr(),
        };
        // SAFETY: `fprog` points to `program`, both alive for the whole call; the
        // kernel copies the program and keeps no pointer to it.
        let rc = unsafe {
            libc::setsockopt(
                self.0.get_ref().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&raw const fprog).cast::<libc::c_void>(),
                size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Has the interface receive frames sent to the multicast `mac` for as long as
    /// this socket is open (the solicited-node group of an address that is not on
    /// the interface itself, so the kernel did not join it).
    pub(super) fn join(&self, mac: Mac) -> io::Result<()> {
        let socket = self.0.get_ref();
        let mut mr_address = [0u8; 8];
        mr_address[..6].copy_from_slice(&mac);
        let request = libc::packet_mreq {
            mr_ifindex: socket.ifindex,
            mr_type: libc::PACKET_MR_MULTICAST as u16,
            mr_alen: 6,
            mr_address,
        };
        // SAFETY: `request` is a fully initialised packet_mreq that outlives the call,
        // and the length passed is its exact size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&raw const request).cast::<libc::c_void>(),
                size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn recv(socket: &PacketSocket) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let got = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    buf.truncate(got);
    Ok(buf)
}
