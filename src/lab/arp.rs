//! ARP wire format for the probe: an Ethernet frame carrying an ARP who-has, and the
//! parser for replies. Pure; no sockets.
//!
//! Owns: byte layout only. Must never: panic on a malformed frame (replies come from
//! the network; anything short or foreign yields `None`).

use std::net::Ipv4Addr;

/// Ethertype of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// Length of an Ethernet + IPv4-over-Ethernet ARP frame (without padding).
pub const FRAME_LEN: usize = 42;

/// A MAC address.
pub type Mac = [u8; 6];

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_to_string(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A broadcast ARP probe (RFC 5227 style: sender IP 0.0.0.0) asking who has `target`,
/// sent from `src` (a MAC that is not the client's own, see the probe).
///
/// Sender IP 0 matters: a node answering it learns nothing (no neighbour entry for a
/// fake MAC), so the probe cannot disturb the traffic it measures.
pub fn who_has(src: Mac, target: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // op: request
    f[22..28].copy_from_slice(&src);
    // f[28..32] sender IP 0.0.0.0, f[32..38] target MAC 0.
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// An ARP reply seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
}

/// Parses an Ethernet frame; `Some` only for an IPv4-over-Ethernet ARP reply.
pub fn parse_reply(frame: &[u8]) -> Option<Reply> {
    let arp = frame.get(14..42)?;
    if frame.get(12..14)? != ETH_P_ARP.to_be_bytes()
        || arp[0..2] != 1u16.to_be_bytes()
        || arp[2..4] != 0x0800u16.to_be_bytes()
        || arp[4] != 6
        || arp[5] != 4
        || arp[6..8] != 2u16.to_be_bytes()
    {
        return None;
    }
    let mut sender_mac = [0u8; 6];
    sender_mac.copy_from_slice(&arp[8..14]);
    let sender_ip = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    let mut target_mac = [0u8; 6];
    target_mac.copy_from_slice(&arp[18..24]);
    Some(Reply {
        sender_mac,
        sender_ip,
        target_mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Mac = [0x02, 0x77, 0, 0, 0, 1];
    const NODE: Mac = [0x52, 0x54, 0, 0xaa, 0xbb, 0xcc];

    fn reply_frame() -> Vec<u8> {
        // What a Linux node answers to `who_has`: a reply to our MAC, target IP 0.
        let mut f = who_has(SRC, Ipv4Addr::new(10, 77, 0, 100)).to_vec();
        f[0..6].copy_from_slice(&SRC);
        f[6..12].copy_from_slice(&NODE);
        f[20..22].copy_from_slice(&2u16.to_be_bytes());
        f[22..28].copy_from_slice(&NODE);
        f[28..32].copy_from_slice(&[10, 77, 0, 100]);
        f[32..38].copy_from_slice(&SRC);
        f[38..42].copy_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(&[0; 18]); // Ethernet padding
        f
    }

    #[test]
    fn who_has_layout() {
        let f = who_has(SRC, Ipv4Addr::new(10, 77, 0, 100));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1]);
        assert_eq!(&f[22..28], &SRC);
        assert_eq!(&f[28..32], &[0, 0, 0, 0]);
        assert_eq!(&f[38..42], &[10, 77, 0, 100]);
        assert_eq!(parse_reply(&f), None, "a request is not a reply");
    }

    #[test]
    fn parses_a_reply_with_padding() {
        let r = parse_reply(&reply_frame()).unwrap();
        assert_eq!(r.sender_mac, NODE);
        assert_eq!(r.sender_ip, Ipv4Addr::new(10, 77, 0, 100));
        assert_eq!(r.target_mac, SRC);
    }

    #[test]
    fn rejects_short_and_foreign_frames() {
        let f = reply_frame();
        for len in 0..42 {
            assert_eq!(parse_reply(&f[..len]), None, "len {len}");
        }
        let mut ipv4 = f.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(parse_reply(&ipv4), None);
    }

    #[test]
    fn mac_round_trip() {
        assert_eq!(mac_to_string(&NODE), "52:54:00:aa:bb:cc");
        assert_eq!(parse_mac("52:54:00:aa:bb:cc\n"), Some(NODE));
        assert_eq!(parse_mac("52:54:00:aa:bb"), None);
        assert_eq!(parse_mac("52:54:00:aa:bb:cc:dd"), None);
        assert_eq!(parse_mac("zz:54:00:aa:bb:cc"), None);
    }
}
