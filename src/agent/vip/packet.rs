//! The one codec of link-layer frames in the crate: Ethernet + ARP (gratuitous ARP,
//! requests, replies) and Ethernet + IPv6 + ICMPv6 neighbour discovery (unsolicited
//! and solicited NA, solicitations), built and recognised here. The VIP driver and
//! its responder use it, and so does the lab's probe (its who-has and the replies to
//! it), which is why it is public.
//!
//! Owns the byte layout of those frames, including the ICMPv6 checksum. Must never do
//! IO: it takes plain values and returns bytes, so every frame is checked against
//! fixtures without a socket. Must never panic on a frame from the network: anything
//! short or foreign yields `None`.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A 48-bit Ethernet (MAC) address.
pub type Mac = [u8; 6];

/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

const BROADCAST: Mac = [0xff; 6];
/// ff02::1 (all nodes) and its Ethernet multicast mapping (RFC 2464: 33:33 + low 32 bits).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: Mac = [0x33, 0x33, 0, 0, 0, 1];

const ETH_HEADER_LEN: usize = 14;
/// Minimum Ethernet frame without FCS. We pad ARP ourselves so the frame on the wire
/// is the same whatever the driver does with runt frames (veth does not pad).
const ETH_MIN_FRAME: usize = 60;
const ARP_LEN: usize = 28;
/// The fixed start of an Ethernet/IPv4 ARP packet: hardware type 1 (Ethernet),
/// protocol type 0x0800 (IPv4), address lengths 6 and 4.
const ARP_ETHERNET_IPV4: [u8; 6] = [0, 1, 8, 0, 6, 4];
const IPV6_HEADER_LEN: usize = 40;
/// ICMPv6 NA body (24) + target link-layer address option (8).
const NA_LEN: usize = 32;
const ICMPV6: u8 = 58;
const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const NA_FLAG_SOLICITED: u8 = 0x40;
const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 NS body: type, code, checksum, reserved, target.
const NS_LEN: usize = 24;
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;
/// RFC 4861 7.1.2: receivers drop neighbour discovery packets whose hop limit is not
/// 255 (proof that they were not routed).
const ND_HOP_LIMIT: u8 = 255;

/// The IPv4 gratuitous ARP for `vip`: an ARP *request* with sender = target = VIP,
/// sent to broadcast from `mac` (RFC 5227 "ARP announcement").
///
/// Why the request form only: every stack updates an existing neighbour entry from
/// the sender fields of any ARP packet it receives, and switches learn the MAC from
/// the Ethernet source either way; the request is what RFC 5227 and RFC 5944 specify
/// and what `arping -U` and keepalived send, while a broadcast *reply* answers no
/// question and is flagged as spoofing by some ARP inspection setups. Target hardware
/// address is zero, as RFC 5227 asks.
pub fn gratuitous_arp(mac: Mac, vip: Ipv4Addr) -> Vec<u8> {
    arp_request(mac, vip, vip)
}

/// A broadcast ARP request from `mac`/`sender_ip` asking who has `target_ip` (target
/// hardware address zero). With `sender_ip` 0.0.0.0 it is an RFC 5227 probe, which
/// is what the lab's probe sends: a node answering it learns nothing from it.
pub fn arp_request(mac: Mac, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    Arp {
        operation: ArpOperation::Request,
        sender_mac: mac,
        sender_ip,
        target_mac: [0; 6],
        target_ip,
    }
    .to_frame(BROADCAST)
}

/// The IPv6 unsolicited neighbour advertisement for `vip` (RFC 4861 7.2.6): ICMPv6
/// type 136 from the VIP to ff02::1, Override set (so caches replace the old owner's
/// MAC), Solicited clear, with a target link-layer address option carrying `mac`.
pub fn unsolicited_na(mac: Mac, vip: Ipv6Addr) -> Vec<u8> {
    neighbor_advert(mac, vip, ALL_NODES_MAC, ALL_NODES, NA_FLAG_OVERRIDE)
}

/// A neighbour advertisement from `mac`/`vip` to `dst_mac`/`dst`, with `flags` (the
/// first byte after the checksum) and a target link-layer address option.
fn neighbor_advert(mac: Mac, vip: Ipv6Addr, dst_mac: Mac, dst: Ipv6Addr, flags: u8) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(NA_LEN);
    icmp.push(ICMPV6_NEIGHBOR_ADVERT);
    icmp.push(0); // code
    icmp.extend_from_slice(&[0, 0]); // checksum, filled in below
    icmp.extend_from_slice(&[flags, 0, 0, 0]);
    icmp.extend_from_slice(&vip.octets());
    icmp.push(OPT_TARGET_LLADDR);
    icmp.push(1); // option length in units of 8 octets
    icmp.extend_from_slice(&mac);
    let checksum = icmpv6_checksum(vip, dst, &icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = Vec::with_capacity(ETH_HEADER_LEN + IPV6_HEADER_LEN + NA_LEN);
    ethernet_header(&mut frame, dst_mac, mac, ETHERTYPE_IPV6);
    frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow 0
    frame.extend_from_slice(&(NA_LEN as u16).to_be_bytes());
    frame.push(ICMPV6);
    frame.push(ND_HOP_LIMIT);
    frame.extend_from_slice(&vip.octets());
    frame.extend_from_slice(&dst.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// A neighbour solicitation seen on the wire: who asks and for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborSolicitation {
    /// The source link-layer address option, else the Ethernet source.
    pub sender_mac: Mac,
    /// :: for duplicate address detection.
    pub sender_ip: Ipv6Addr,
    pub target: Ipv6Addr,
}

/// Recognises an ICMPv6 neighbour solicitation (RFC 4861 7.1.1: hop limit 255, code
/// 0, valid checksum, ICMPv6 right after the IPv6 header), and takes its source
/// link-layer address option when there is one.
pub fn parse_neighbor_solicitation(frame: &[u8]) -> Option<NeighborSolicitation> {
    let icmp = neighbor_discovery(frame, ICMPV6_NEIGHBOR_SOLICIT, NS_LEN)?;
    // The IPv6 source address (bytes 8..24 of the header).
    let src: [u8; 16] = frame
        .get(ETH_HEADER_LEN + 8..ETH_HEADER_LEN + 24)?
        .try_into()
        .ok()?;
    let target: [u8; 16] = icmp[8..24].try_into().ok()?;
    let mut sender_mac: Mac = frame.get(6..12)?.try_into().ok()?;
    // Options: type, length in units of 8 octets, value; a zero length is invalid.
    let mut options = &icmp[NS_LEN..];
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if options[0] == OPT_SOURCE_LLADDR && len == 8 {
            sender_mac = options[2..8].try_into().ok()?;
        }
        options = &options[len..];
    }
    Some(NeighborSolicitation {
        sender_mac,
        sender_ip: src.into(),
        target: target.into(),
    })
}

/// The neighbour advertisement answering `solicitation` for `vip` at `mac`, as Linux
/// answers a multicast solicitation (`ndisc_recv_ns`): to the asker with Solicited
/// and Override set; for duplicate address detection (asker ::) to ff02::1 with
/// Override only. Router clear, like [`unsolicited_na`].
pub fn solicited_na(mac: Mac, vip: Ipv6Addr, solicitation: &NeighborSolicitation) -> Vec<u8> {
    if solicitation.sender_ip.is_unspecified() {
        neighbor_advert(mac, vip, ALL_NODES_MAC, ALL_NODES, NA_FLAG_OVERRIDE)
    } else {
        neighbor_advert(
            mac,
            vip,
            solicitation.sender_mac,
            solicitation.sender_ip,
            NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
        )
    }
}

/// The Ethernet multicast address of `address`'s solicited-node group (ff02::1:ffXX:XXXX,
/// RFC 4291 2.7.1, mapped by RFC 2464 7): where neighbour solicitations for it go.
pub fn solicited_node_mac(address: Ipv6Addr) -> Mac {
    let o = address.octets();
    [0x33, 0x33, 0xff, o[13], o[14], o[15]]
}

/// A multicast neighbour solicitation from `mac`/`src` for `target`, with a source
/// link-layer address option, as a node resolving `target` sends it (tests only: the
/// agent answers solicitations, it never sends one).
#[cfg(test)]
pub fn neighbor_solicitation(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let dst = Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let mut icmp = vec![ICMPV6_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[OPT_SOURCE_LLADDR, 1]);
    icmp.extend_from_slice(&mac);
    let checksum = icmpv6_checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    let mut frame = Vec::new();
    ethernet_header(&mut frame, solicited_node_mac(target), mac, ETHERTYPE_IPV6);
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    frame.push(ICMPV6);
    frame.push(ND_HOP_LIMIT);
    frame.extend_from_slice(&src.octets());
    frame.extend_from_slice(&dst.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// The operation of an ARP packet (RFC 826; the RARP and InARP codes are not ARP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOperation {
    Request,
    Reply,
}

impl ArpOperation {
    fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// An Ethernet/IPv4 ARP packet: who sends it (MAC and address) and about whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub operation: ArpOperation,
    pub sender_mac: Mac,
    /// 0.0.0.0 for an RFC 5227 probe.
    pub sender_ip: Ipv4Addr,
    /// Zero in a request.
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// The Ethernet frame carrying this packet from its sender to `destination`,
    /// padded to the Ethernet minimum.
    fn to_frame(self, destination: Mac) -> Vec<u8> {
        let mut frame = Vec::with_capacity(ETH_MIN_FRAME);
        ethernet_header(&mut frame, destination, self.sender_mac, ETHERTYPE_ARP);
        frame.extend_from_slice(&ARP_ETHERNET_IPV4);
        frame.extend_from_slice(&self.operation.code().to_be_bytes());
        frame.extend_from_slice(&self.sender_mac);
        frame.extend_from_slice(&self.sender_ip.octets());
        frame.extend_from_slice(&self.target_mac);
        frame.extend_from_slice(&self.target_ip.octets());
        frame.resize(ETH_MIN_FRAME, 0);
        frame
    }
}

/// Recognises an Ethernet/IPv4 ARP request or reply (padding after it is ignored).
pub fn parse_arp(frame: &[u8]) -> Option<Arp> {
    let arp = frame.get(ETH_HEADER_LEN..ETH_HEADER_LEN + ARP_LEN)?;
    if ethertype(frame)? != ETHERTYPE_ARP || arp[..6] != ARP_ETHERNET_IPV4 {
        return None;
    }
    let operation = match u16::from_be_bytes([arp[6], arp[7]]) {
        1 => ArpOperation::Request,
        2 => ArpOperation::Reply,
        _ => return None,
    };
    let sender_ip: [u8; 4] = arp[14..18].try_into().ok()?;
    let target_ip: [u8; 4] = arp[24..28].try_into().ok()?;
    Some(Arp {
        operation,
        sender_mac: arp[8..14].try_into().ok()?,
        sender_ip: sender_ip.into(),
        target_mac: arp[18..24].try_into().ok()?,
        target_ip: target_ip.into(),
    })
}

/// Recognises an ARP request that asks a question. A gratuitous ARP (sender =
/// target, as [`gratuitous_arp`] builds it) announces and asks nothing, so it is not
/// one; an RFC 5227 probe (sender 0.0.0.0) is.
pub fn parse_arp_request(frame: &[u8]) -> Option<Arp> {
    parse_arp(frame)
        .filter(|arp| arp.operation == ArpOperation::Request && arp.sender_ip != arp.target_ip)
}

/// Recognises an ARP reply.
pub fn parse_arp_reply(frame: &[u8]) -> Option<Arp> {
    parse_arp(frame).filter(|arp| arp.operation == ArpOperation::Reply)
}

/// The ARP reply saying that `vip` is at `mac`, for the node that sent `request`,
/// laid out as Linux answers (`arp_process`): unicast to the asker's sender MAC, the
/// target fields being the asker's sender fields (0.0.0.0 for a probe). Padded to the
/// Ethernet minimum like [`gratuitous_arp`].
pub fn arp_reply(mac: Mac, vip: Ipv4Addr, request: &Arp) -> Vec<u8> {
    Arp {
        operation: ArpOperation::Reply,
        sender_mac: mac,
        sender_ip: vip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    }
    .to_frame(request.sender_mac)
}

/// Recognises a gratuitous ARP as built by [`gratuitous_arp`] (request or reply,
/// sender = target) and returns the announced (MAC, address).
pub fn parse_gratuitous_arp(frame: &[u8]) -> Option<(Mac, Ipv4Addr)> {
    let arp = parse_arp(frame)?;
    (arp.sender_ip == arp.target_ip).then_some((arp.sender_mac, arp.sender_ip))
}

/// Recognises an unsolicited NA with the Override flag and a target link-layer
/// address option, verifying hop limit and ICMPv6 checksum; returns (MAC, target).
pub fn parse_unsolicited_na(frame: &[u8]) -> Option<(Mac, Ipv6Addr)> {
    let icmp = neighbor_discovery(frame, ICMPV6_NEIGHBOR_ADVERT, NA_LEN)?;
    if icmp[4] & NA_FLAG_OVERRIDE == 0 || icmp[24] != OPT_TARGET_LLADDR || icmp[25] != 1 {
        return None;
    }
    let target: [u8; 16] = icmp[8..24].try_into().ok()?;
    let mac: Mac = icmp[26..32].try_into().ok()?;
    Some((mac, Ipv6Addr::from(target)))
}

/// The ICMPv6 message of a neighbour-discovery frame of type `kind` (RFC 4861: IPv6
/// with hop limit 255, ICMPv6 right after the header, code 0, a valid checksum, at
/// least `min_len` bytes), cut to the IPv6 payload length.
fn neighbor_discovery(frame: &[u8], kind: u8, min_len: usize) -> Option<&[u8]> {
    let ip = frame.get(ETH_HEADER_LEN..ETH_HEADER_LEN + IPV6_HEADER_LEN)?;
    if ethertype(frame)? != ETHERTYPE_IPV6 || ip[0] >> 4 != 6 {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    if ip[6] != ICMPV6 || ip[7] != ND_HOP_LIMIT || payload_len < min_len {
        return None;
    }
    let icmp = frame
        .get(ETH_HEADER_LEN + IPV6_HEADER_LEN..)?
        .get(..payload_len)?;
    let src: [u8; 16] = ip[8..24].try_into().ok()?;
    let dst: [u8; 16] = ip[24..40].try_into().ok()?;
    // Summing a packet that carries its own checksum gives zero (one's complement).
    (icmp[0] == kind && icmp[1] == 0 && icmpv6_checksum(src.into(), dst.into(), icmp) == 0)
        .then_some(icmp)
}

/// The EtherType of a frame, if it is long enough to have one.
pub fn ethertype(frame: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?))
}

/// The destination MAC of a frame, if it is long enough to have one.
pub fn destination(frame: &[u8]) -> Option<Mac> {
    frame.get(..6)?.try_into().ok()
}

fn ethernet_header(frame: &mut Vec<u8>, dst: Mac, src: Mac, ethertype: u16) {
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
}

/// RFC 4443 2.3 / RFC 8200 8.1: one's complement sum over the pseudo-header (source,
/// destination, upper-layer length, next header) and the ICMPv6 message.
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let len = u32::try_from(icmp.len()).unwrap_or(u32::MAX);
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, ICMPV6]);
    let sum = [pseudo.as_slice(), icmp]
        .iter()
        .flat_map(|part| part.chunks(2))
        .map(|word| u32::from(u16::from_be_bytes([word[0], *word.get(1).unwrap_or(&0)])))
        .fold(0u32, |acc, word| {
            let acc = acc + word;
            (acc & 0xffff) + (acc >> 16)
        });
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0x00, 0x5e, 0x77, 0x00, 0x01];
    const V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
    const V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100);

    // Fixtures produced independently with scapy 2.6 (Ether/ARP padded to 60 bytes,
    // and Ether/IPv6(hlim=255)/ICMPv6ND_NA(O=1)/ICMPv6NDOptDstLLAddr) for MAC
    // 02:00:5e:77:00:01, VIPs 10.77.0.100 and fd77::100.
    const GARP_FIXTURE: &str = "ffffffffffff02005e7700010806000108000604000102005e7700010a4d0064\
                                0000000000000a4d0064000000000000000000000000000000000000";
    const NA_FIXTURE: &str = "33330000000102005e77000186dd6000000000203afffd7700000000000000\
                              00000000000100ff0200000000000000000000000000018800f93720000000\
                              fd770000000000000000000000000100020102005e770001";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn gratuitous_arp_matches_fixture() {
        assert_eq!(gratuitous_arp(MAC, V4), hex(GARP_FIXTURE));
    }

    #[test]
    fn unsolicited_na_matches_fixture_including_checksum() {
        let frame = unsolicited_na(MAC, V6);
        assert_eq!(frame, hex(NA_FIXTURE));
        assert_eq!(&frame[56..58], &[0xf9, 0x37]);
    }

    #[test]
    fn parse_round_trips() {
        assert_eq!(parse_gratuitous_arp(&hex(GARP_FIXTURE)), Some((MAC, V4)));
        assert_eq!(parse_unsolicited_na(&hex(NA_FIXTURE)), Some((MAC, V6)));
        assert_eq!(ethertype(&hex(NA_FIXTURE)), Some(ETHERTYPE_IPV6));
        assert_eq!(destination(&hex(GARP_FIXTURE)), Some(BROADCAST));
    }

    // An ordinary request (10.77.0.7 at 02:00:5e:77:00:02 asks for 10.77.0.100,
    // broadcast, padded to 60 bytes) and its reply from MAC, written field by field
    // from RFC 826; that the reply is what Linux itself sends is checked against the
    // kernel in tests.rs (`agent_reply_is_the_kernels_reply`).
    const ASKER: Mac = [0x02, 0x00, 0x5e, 0x77, 0x00, 0x02];
    const REQUEST_FIXTURE: &str = "ffffffffffff02005e77000208060001080006040001\
                                   02005e7700020a4d0007\
                                   0000000000000a4d0064\
                                   000000000000000000000000000000000000";
    const REPLY_FIXTURE: &str = "02005e77000202005e77000108060001080006040002\
                                 02005e7700010a4d0064\
                                 02005e7700020a4d0007\
                                 000000000000000000000000000000000000";

    #[test]
    fn arp_request_parses_and_is_answered_as_linux_does() {
        let request = parse_arp_request(&hex(REQUEST_FIXTURE)).unwrap();
        assert_eq!(
            request,
            Arp {
                operation: ArpOperation::Request,
                sender_mac: ASKER,
                sender_ip: Ipv4Addr::new(10, 77, 0, 7),
                target_mac: [0; 6],
                target_ip: V4,
            }
        );
        assert_eq!(
            arp_request(ASKER, Ipv4Addr::new(10, 77, 0, 7), V4),
            hex(REQUEST_FIXTURE)
        );
        assert_eq!(arp_reply(MAC, V4, &request), hex(REPLY_FIXTURE));
        // A probe (sender 0.0.0.0) is a question too, answered to 0.0.0.0.
        let mut probe = hex(REQUEST_FIXTURE);
        probe[28..32].copy_from_slice(&[0; 4]);
        let request = parse_arp_request(&probe).unwrap();
        assert_eq!(request.sender_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(&arp_reply(MAC, V4, &request)[38..42], &[0; 4]);
    }

    #[test]
    fn the_probes_who_has_is_an_rfc5227_probe_and_its_answer_a_reply() {
        let probe = arp_request(ASKER, Ipv4Addr::UNSPECIFIED, V4);
        assert_eq!(&probe[0..6], &BROADCAST);
        assert_eq!(&probe[12..14], &[0x08, 0x06]);
        assert_eq!(&probe[20..22], &[0, 1]);
        assert_eq!(&probe[22..28], &ASKER);
        assert_eq!(&probe[28..32], &[0, 0, 0, 0]);
        assert_eq!(&probe[32..38], &[0; 6]);
        assert_eq!(&probe[38..42], &V4.octets());
        assert_eq!(parse_arp_reply(&probe), None, "a request is not a reply");
        let answer = arp_reply(MAC, V4, &parse_arp_request(&probe).unwrap());
        let reply = parse_arp_reply(&answer).unwrap();
        assert_eq!(
            (reply.sender_mac, reply.sender_ip, reply.target_mac),
            (MAC, V4, ASKER)
        );
        assert_eq!(
            reply.target_ip,
            Ipv4Addr::UNSPECIFIED,
            "answered to the probe"
        );
        let fixture = parse_arp_reply(&hex(REPLY_FIXTURE)).unwrap();
        assert_eq!(
            (fixture.sender_mac, fixture.sender_ip, fixture.target_mac),
            (MAC, V4, ASKER)
        );
    }

    #[test]
    fn replies_that_are_short_or_foreign_are_ignored() {
        let reply = hex(REPLY_FIXTURE);
        for len in 0..42 {
            assert_eq!(parse_arp_reply(&reply[..len]), None, "len {len}");
        }
        let mut ipv4 = reply.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(parse_arp_reply(&ipv4), None);
        let mut rarp = reply.clone();
        rarp[20..22].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(parse_arp(&rarp), None, "RARP reply");
    }

    #[test]
    fn announcements_replies_and_short_frames_are_not_questions() {
        assert_eq!(parse_arp_request(&hex(GARP_FIXTURE)), None);
        assert_eq!(parse_arp_request(&hex(REPLY_FIXTURE)), None);
        assert_eq!(parse_arp_request(&hex(NA_FIXTURE)), None);
        let request = hex(REQUEST_FIXTURE);
        for len in 0..42 {
            assert_eq!(parse_arp_request(&request[..len]), None, "len {len}");
        }
        let mut ipv6_arp = request.clone();
        ipv6_arp[16..18].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse_arp_request(&ipv6_arp), None);
    }

    const ASKER6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 7);

    #[test]
    fn neighbor_solicitation_parses_and_is_answered_to_the_asker() {
        let ns = neighbor_solicitation(ASKER, ASKER6, V6);
        assert_eq!(destination(&ns), Some([0x33, 0x33, 0xff, 0, 1, 0]));
        let parsed = parse_neighbor_solicitation(&ns).unwrap();
        assert_eq!(
            parsed,
            NeighborSolicitation {
                sender_mac: ASKER,
                sender_ip: ASKER6,
                target: V6,
            }
        );
        let na = solicited_na(MAC, V6, &parsed);
        assert_eq!(destination(&na), Some(ASKER));
        assert_eq!(&na[38..54], &ASKER6.octets(), "to the asker");
        assert_eq!(na[58], NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
        // The same checks a receiver makes (hop limit, checksum, option) hold.
        assert_eq!(parse_unsolicited_na(&na), Some((MAC, V6)));
    }

    #[test]
    fn duplicate_address_detection_is_answered_to_all_nodes() {
        let mut ns = neighbor_solicitation(ASKER, Ipv6Addr::UNSPECIFIED, V6);
        // A DAD probe carries no source link-layer option: drop it (8 bytes).
        ns.truncate(ns.len() - 8);
        ns[18..20].copy_from_slice(&24u16.to_be_bytes());
        ns[56..58].copy_from_slice(&[0, 0]);
        let dst: [u8; 16] = ns[38..54].try_into().unwrap();
        let sum = icmpv6_checksum(Ipv6Addr::UNSPECIFIED, dst.into(), &ns[54..]);
        ns[56..58].copy_from_slice(&sum.to_be_bytes());
        let parsed = parse_neighbor_solicitation(&ns).unwrap();
        assert_eq!(parsed.sender_mac, ASKER, "from the Ethernet source");
        let na = solicited_na(MAC, V6, &parsed);
        assert_eq!(na, unsolicited_na(MAC, V6));
    }

    #[test]
    fn solicitations_that_are_not_valid_are_ignored() {
        let ns = neighbor_solicitation(ASKER, ASKER6, V6);
        let mut bad_sum = ns.clone();
        bad_sum[70] ^= 1;
        assert_eq!(parse_neighbor_solicitation(&bad_sum), None);
        let mut routed = ns.clone();
        routed[21] = 64;
        assert_eq!(parse_neighbor_solicitation(&routed), None);
        for len in 0..ns.len() {
            assert_eq!(parse_neighbor_solicitation(&ns[..len]), None, "len {len}");
        }
        assert_eq!(parse_neighbor_solicitation(&hex(NA_FIXTURE)), None);
        assert_eq!(parse_neighbor_solicitation(&hex(GARP_FIXTURE)), None);
    }

    #[test]
    fn parse_rejects_corruption_and_other_frames() {
        let mut na = hex(NA_FIXTURE);
        na[70] ^= 1; // a bit of the target address: the checksum no longer holds
        assert_eq!(parse_unsolicited_na(&na), None);
        let mut na = hex(NA_FIXTURE);
        na[21] = 64; // routed hop limit
        assert_eq!(parse_unsolicited_na(&na), None);
        let mut arp = hex(GARP_FIXTURE);
        arp[41] = 1; // target differs from sender: an ordinary request
        assert_eq!(parse_gratuitous_arp(&arp), None);
        assert_eq!(parse_gratuitous_arp(&hex(NA_FIXTURE)), None);
        assert_eq!(parse_unsolicited_na(&hex(GARP_FIXTURE)), None);
        assert_eq!(parse_unsolicited_na(&[0; 10]), None);
    }
}
