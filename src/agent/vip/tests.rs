//! Root tests of the VIP driver against the real kernel. Each runs on its own thread
//! in a fresh network namespace (`unshare(CLONE_NEWNET)` affects only that thread),
//! so they touch nothing of the host and leave nothing behind: the namespace and its
//! links vanish when the thread ends. Without the privilege to unshare, they print
//! SKIP and pass, so `cargo test` works for non-root users.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use futures::TryStreamExt;
use nix::sched::{CloneFlags, unshare};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::{Handle, LinkUnspec, LinkVeth};

use super::packet::{self, ETHERTYPE_ARP, ETHERTYPE_IPV6};
use super::socket::Capture;
use super::*;

fn in_netns<F, Fut>(test: &'static str, body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            eprintln!(
                "SKIP {test}: needs root (CAP_SYS_ADMIN) for a private network namespace: unshare failed: {e}"
            );
            return;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(body());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

fn vip(cidr: &str, interface: Option<&str>) -> VirtualIp {
    let (address, prefix) = cidr.split_once('/').unwrap();
    VirtualIp {
        address: address.parse().unwrap(),
        prefix_len: prefix.parse().unwrap(),
        interface: interface.map(str::to_owned),
    }
}

async fn index_of(handle: &Handle, name: &str) -> u32 {
    let link = handle
        .link()
        .get()
        .match_name(name.to_owned())
        .execute()
        .try_next()
        .await
        .unwrap();
    link.unwrap().header.index
}

async fn up_with(handle: &Handle, name: &str, cidrs: &[&str]) {
    let index = index_of(handle, name).await;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .unwrap();
    for cidr in cidrs {
        let v = vip(cidr, None);
        handle
            .address()
            .add(index, v.address, v.prefix_len)
            .execute()
            .await
            .unwrap();
    }
}

/// A veth pair `name`/`name`p, both up, with `cidrs` on `name`. (Not a dummy link:
/// the dummy driver is not available in every kernel; veth is what the lab uses.)
async fn veth_with(handle: &Handle, name: &str, cidrs: &[&str]) {
    let peer = format!("{name}p");
    handle
        .link()
        .add(LinkVeth::new(name, &peer).build())
        .execute()
        .await
        .unwrap();
    up_with(handle, name, cidrs).await;
    up_with(handle, &peer, &[]).await;
}

/// (valid_lft, preferred_lft, flags) of every kernel entry for `address`.
async fn entries(handle: &Handle, address: IpAddr) -> Vec<(u32, u32, AddressFlags)> {
    let messages: Vec<_> = handle
        .address()
        .get()
        .set_address_filter(address)
        .execute()
        .try_collect()
        .await
        .unwrap();
    messages
        .iter()
        .map(|m| {
            let mut info = (0, 0, AddressFlags::empty());
            for attribute in &m.attributes {
                match attribute {
                    AddressAttribute::CacheInfo(c) => {
                        (info.0, info.1) = (c.ifa_valid, c.ifa_preferred)
                    }
                    AddressAttribute::Flags(f) => info.2 = *f,
                    _ => {}
                }
            }
            info
        })
        .collect()
}

#[test]
fn acquire_sets_lifetime_renews_in_place_and_release_is_idempotent() {
    in_netns("acquire_sets_lifetime", || async {
        let driver = VipDriver::new().unwrap();
        veth_with(&driver.handle, "vip0", &["10.77.0.1/24"]).await;
        let bound = driver.resolve(&vip("10.77.0.100/24", None)).await.unwrap();
        assert_eq!(bound.interface(), "vip0");
        assert!(!driver.held(&bound).await.unwrap());

        driver
            .acquire(&bound, Duration::from_millis(9500))
            .await
            .unwrap();
        let first = entries(&driver.handle, bound.vip().address).await;
        assert_eq!(first.len(), 1, "{first:?}");
        let (valid, preferred, flags) = first[0];
        assert!(valid > 0 && valid <= 10, "valid_lft {valid}");
        assert!(
            preferred > 0 && preferred <= 10,
            "preferred_lft {preferred}"
        );
        assert!(!flags.contains(AddressFlags::Permanent));
        assert!(driver.held(&bound).await.unwrap());

        // Renewal: same entry, lifetime now the new one (longer than the first could be).
        driver
            .acquire(&bound, Duration::from_secs(60))
            .await
            .unwrap();
        let renewed = entries(&driver.handle, bound.vip().address).await;
        assert_eq!(renewed.len(), 1, "{renewed:?}");
        assert!(renewed[0].0 > 10 && renewed[0].0 <= 60, "{renewed:?}");

        driver.release(&bound).await.unwrap();
        assert!(!driver.held(&bound).await.unwrap());
        assert!(
            entries(&driver.handle, bound.vip().address)
                .await
                .is_empty()
        );
        driver.release(&bound).await.unwrap();
        // The node's own address is untouched.
        assert_eq!(
            entries(&driver.handle, "10.77.0.1".parse().unwrap())
                .await
                .len(),
            1
        );
    });
}

#[test]
fn resolution_by_subnet_and_by_name_and_eligibility() {
    in_netns("resolution", || async {
        let driver = VipDriver::new().unwrap();
        veth_with(&driver.handle, "vipa", &["10.77.0.1/24"]).await;
        veth_with(&driver.handle, "vipb", &["10.77.1.1/24", "fd77::1/64"]).await;

        let by_subnet = vip("10.77.1.50/24", None);
        assert_eq!(
            driver.resolve(&by_subnet).await.unwrap().interface(),
            "vipb"
        );
        assert!(driver.eligible(&by_subnet).await.unwrap());
        let v6 = vip("fd77::50/64", None);
        assert_eq!(driver.resolve(&v6).await.unwrap().interface(), "vipb");

        // Named interface wins, but without the VIP's subnet the node is not eligible.
        let named = vip("10.77.1.50/24", Some("vipa"));
        let bound = driver.resolve(&named).await.unwrap();
        assert_eq!(
            (bound.interface(), bound.ifindex()),
            ("vipa", index_of(&driver.handle, "vipa").await)
        );
        assert!(!driver.eligible(&named).await.unwrap());
        assert!(
            driver
                .eligible(&vip("10.77.0.9/24", Some("vipa")))
                .await
                .unwrap()
        );

        let off_subnet = vip("10.77.9.9/24", None);
        let err = driver.resolve(&off_subnet).await.unwrap_err();
        assert!(matches!(err, VipError::NoInterface { .. }), "{err}");
        assert!(!driver.eligible(&off_subnet).await.unwrap());

        let unknown = vip("10.77.0.100/24", Some("nosuch0"));
        let err = driver.resolve(&unknown).await.unwrap_err();
        assert!(
            matches!(&err, VipError::UnknownInterface { interface, .. } if interface == "nosuch0")
        );
        assert_eq!(
            err.to_string(),
            "VIP 10.77.0.100/24: interface nosuch0 does not exist on this node"
        );
        assert!(!driver.eligible(&unknown).await.unwrap());

        let err = driver
            .resolve(&vip("10.77.0.100/33", None))
            .await
            .unwrap_err();
        assert!(matches!(err, VipError::InvalidPrefix { .. }), "{err}");

        // Holding the VIP does not make an off-subnet node eligible by itself.
        let lone = vip("10.77.5.5/24", Some("vipa"));
        let bound = driver.resolve(&lone).await.unwrap();
        driver
            .acquire(&bound, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(!driver.eligible(&lone).await.unwrap());
    });
}

#[test]
fn ipv6_vip_is_usable_at_once_and_released() {
    in_netns("ipv6_vip", || async {
        let driver = VipDriver::new().unwrap();
        veth_with(&driver.handle, "vip6", &["fd77::1/64"]).await;
        let bound = driver.resolve(&vip("fd77::100/64", None)).await.unwrap();
        driver
            .acquire(&bound, Duration::from_secs(5))
            .await
            .unwrap();
        driver
            .acquire(&bound, Duration::from_secs(7))
            .await
            .unwrap();
        let got = entries(&driver.handle, bound.vip().address).await;
        assert_eq!(got.len(), 1, "{got:?}");
        let (valid, preferred, flags) = got[0];
        assert!(
            valid > 5 && valid <= 7 && preferred > 5 && preferred <= 7,
            "{got:?}"
        );
        assert!(flags.contains(AddressFlags::Nodad), "{flags:?}");
        assert!(!flags.contains(AddressFlags::Tentative), "{flags:?}");
        driver.release(&bound).await.unwrap();
        assert!(!driver.held(&bound).await.unwrap());
        driver.release(&bound).await.unwrap();
    });
}

#[test]
fn remove_stale_removes_listed_vips_only() {
    in_netns("remove_stale", || async {
        let driver = VipDriver::new().unwrap();
        veth_with(&driver.handle, "vipa", &["10.77.0.1/24"]).await;
        veth_with(&driver.handle, "vipb", &["fd77::1/64"]).await;
        let stale = [vip("10.77.0.100/24", None), vip("fd77::100/64", None)];
        let kept = vip("10.77.0.200/24", None);
        for v in stale.iter().chain([&kept]) {
            let bound = driver.resolve(v).await.unwrap();
            driver
                .acquire(&bound, Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert_eq!(driver.remove_stale(&stale).await.unwrap(), 2);
        for v in &stale {
            assert!(
                entries(&driver.handle, v.address).await.is_empty(),
                "{v} left behind"
            );
        }
        assert_eq!(entries(&driver.handle, kept.address).await.len(), 1);
        assert_eq!(driver.remove_stale(&stale).await.unwrap(), 0);
    });
}

#[test]
fn kernel_expires_an_unrenewed_vip() {
    in_netns("kernel_expires", || async {
        let driver = VipDriver::new().unwrap();
        veth_with(&driver.handle, "vip0", &["10.77.0.1/24", "fd77::1/64"]).await;
        let bound = [
            driver.resolve(&vip("10.77.0.100/24", None)).await.unwrap(),
            driver.resolve(&vip("fd77::100/64", None)).await.unwrap(),
        ];
        for b in &bound {
            driver.acquire(b, Duration::from_secs(1)).await.unwrap();
            assert!(driver.held(b).await.unwrap());
        }
        // Bounded wait: 50 polls of 100 ms = 5 s.
        for _ in 0..50 {
            if !driver.held(&bound[0]).await.unwrap() && !driver.held(&bound[1]).await.unwrap() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for b in &bound {
            assert!(
                !driver.held(b).await.unwrap(),
                "{} still held after 5 s",
                b.vip()
            );
        }
    });
}

/// The frames captured that `wanted` accepts, until `count` arrived or 5 s passed.
async fn capture(capture: &Capture, count: usize, wanted: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while frames.len() < count {
        let Ok(frame) = tokio::time::timeout_at(deadline, capture.next_frame()).await else {
            break;
        };
        let frame = frame.unwrap();
        if wanted(&frame) {
            frames.push(frame);
        }
    }
    frames
}

#[test]
fn announcements_arrive_on_the_peer_as_built() {
    in_netns("announcements", || async {
        let driver = VipDriver::new().unwrap();
        driver
            .handle
            .link()
            .add(LinkVeth::new("vipa", "vipb").build())
            .execute()
            .await
            .unwrap();
        up_with(&driver.handle, "vipa", &["10.77.0.1/24", "fd77::1/64"]).await;
        up_with(&driver.handle, "vipb", &[]).await;
        let peer = index_of(&driver.handle, "vipb").await;

        let v4 = driver.resolve(&vip("10.77.0.100/24", None)).await.unwrap();
        let v6 = driver.resolve(&vip("fd77::100/64", None)).await.unwrap();
        let mac = v4.mac.unwrap();
        let arp = Capture::bind(peer, ETHERTYPE_ARP).unwrap();
        let ipv6 = Capture::bind(peer, ETHERTYPE_IPV6).unwrap();
        for b in [&v4, &v6] {
            driver.acquire(b, Duration::from_secs(30)).await.unwrap();
        }
        driver
            .announce(&v4, 3, Duration::from_millis(20))
            .await
            .unwrap();
        driver
            .announce(&v6, 2, Duration::from_millis(20))
            .await
            .unwrap();

        let IpAddr::V4(a4) = v4.vip().address else {
            unreachable!()
        };
        let IpAddr::V6(a6) = v6.vip().address else {
            unreachable!()
        };
        let garps = capture(&arp, 3, |f| {
            packet::parse_gratuitous_arp(f) == Some((mac, a4))
        })
        .await;
        assert_eq!(garps, vec![packet::gratuitous_arp(mac, a4); 3]);
        // Other IPv6 traffic (MLD reports, router solicitations) is filtered out.
        let nas = capture(&ipv6, 2, |f| {
            packet::parse_unsolicited_na(f).is_some_and(|(_, t)| t == a6)
        })
        .await;
        assert_eq!(nas, vec![packet::unsolicited_na(mac, a6); 2]);
    });
}

#[test]
fn announce_without_ethernet_address_is_a_clear_error() {
    in_netns("announce_no_mac", || async {
        let driver = VipDriver::new().unwrap();
        up_with(&driver.handle, "lo", &[]).await;
        let bound = driver
            .resolve(&vip("127.0.0.5/8", Some("lo")))
            .await
            .unwrap();
        let err = driver
            .announce(&bound, 1, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, VipError::NoHardwareAddress { .. }), "{err}");
    });
}

/// The frames captured that `wanted` accepts during `window`.
async fn capture_for(
    capture: &Capture,
    window: Duration,
    wanted: impl Fn(&[u8]) -> bool,
) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    // Bounded by the deadline, and by count so a flood cannot keep it busy.
    while frames.len() < 1000 {
        let Ok(frame) = tokio::time::timeout_at(deadline, capture.next_frame()).await else {
            break;
        };
        let frame = frame.unwrap();
        if wanted(&frame) {
            frames.push(frame);
        }
    }
    frames
}

/// Whether `frame` is an ARP reply for `address`.
fn reply_for(frame: &[u8], address: std::net::Ipv4Addr) -> bool {
    packet::parse_arp_reply(frame).is_some_and(|r| r.sender_ip == address)
}

/// An IPv4 setting of `interface` in this thread's network namespace, read through
/// /proc/sys (independently of the netlink the driver writes with).
fn ipv4_conf(interface: &str, name: &str) -> i32 {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{interface}/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn link_mac(driver: &VipDriver, name: &str) -> Mac {
    let links = driver.links().await.unwrap();
    links
        .into_iter()
        .find(|l| l.name == name)
        .unwrap()
        .mac
        .unwrap()
}

#[test]
fn agent_reply_is_the_kernels_reply() {
    in_netns("agent_reply_is_the_kernels_reply", || async {
        let driver = VipDriver::new().unwrap();
        veth_with(&driver.handle, "vipa", &["10.77.0.1/24"]).await;
        let node = link_mac(&driver, "vipa").await;
        let asker = link_mac(&driver, "vipap").await;
        let wire = Capture::bind(index_of(&driver.handle, "vipap").await, ETHERTYPE_ARP).unwrap();
        let own: std::net::Ipv4Addr = "10.77.0.1".parse().unwrap();
        for sender in ["10.77.0.7", "0.0.0.0"] {
            let request = packet::arp_request(asker, sender.parse().unwrap(), own);
            wire.send(&request).unwrap();
            let replies = capture(&wire, 1, |f| reply_for(f, own)).await;
            assert_eq!(replies.len(), 1, "the kernel answers {sender}");
            let ours = packet::arp_reply(node, own, &packet::parse_arp_request(&request).unwrap());
            // veth does not pad what the kernel sends; our frame is padded with zeros.
            assert_eq!(replies[0][..42], ours[..42], "asked by {sender}");
            assert!(ours[42..].iter().all(|b| *b == 0));
        }
    });
}

#[test]
fn a_held_vip_is_answered_by_the_agent_only_and_not_after_it_is_gone() {
    in_netns("agent_answers_arp", || async {
        let agent = VipDriver::new().unwrap();
        let observer = VipDriver::new().unwrap();
        veth_with(&agent.handle, "vipa", &["10.77.0.1/24"]).await;
        let node = link_mac(&agent, "vipa").await;
        let asker = link_mac(&agent, "vipap").await;
        let wire = Capture::bind(index_of(&agent.handle, "vipap").await, ETHERTYPE_ARP).unwrap();
        let bound = agent.resolve(&vip("10.77.0.100/24", None)).await.unwrap();
        assert!(bound.answered_by_agent());
        let IpAddr::V4(vip4) = bound.vip().address else {
            unreachable!()
        };
        let ask = |target| packet::arp_request(asker, "10.77.0.7".parse().unwrap(), target);

        agent.prepare(&bound).await.unwrap();
        assert_eq!(ipv4_conf("vipa", "arp_ignore"), 1);
        assert_eq!(ipv4_conf("vipa", "arp_announce"), 2);
        agent
            .acquire(&bound, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(agent.answering(&bound));
        // On loopback as a /32: no route for the subnet via lo.
        let lo = index_of(&agent.handle, "lo").await;
        let on_lo: Vec<_> = agent
            .addresses()
            .await
            .unwrap()
            .iter()
            .filter_map(OnLink::of)
            .filter(|a| a.address == bound.vip().address)
            .collect();
        assert_eq!(
            on_lo,
            vec![OnLink {
                index: lo,
                address: bound.vip().address,
                prefix_len: 32
            }]
        );

        // One answer, the agent's, as the kernel would have sent it.
        wire.send(&ask(vip4)).unwrap();
        let replies = capture_for(&wire, Duration::from_millis(300), |f| reply_for(f, vip4)).await;
        let request = packet::parse_arp_request(&ask(vip4)).unwrap();
        assert_eq!(replies, vec![packet::arp_reply(node, vip4, &request)]);
        // The node's own address is still the kernel's to answer.
        let own = "10.77.0.1".parse().unwrap();
        wire.send(&ask(own)).unwrap();
        assert_eq!(
            capture_for(&wire, Duration::from_millis(300), |f| reply_for(f, own))
                .await
                .len(),
            1
        );
        // Announcements are not questions: the agent does not answer its own.
        agent.announce(&bound, 1, Duration::ZERO).await.unwrap();
        assert!(
            capture_for(&wire, Duration::from_millis(200), |f| reply_for(f, vip4))
                .await
                .is_empty()
        );

        // The agent dies (its driver and responder go) while the kernel still holds
        // the VIP: nothing answers for it any more.
        drop(agent);
        tokio::task::yield_now().await;
        assert!(
            observer.held(&bound).await.unwrap(),
            "the address outlives the agent"
        );
        wire.send(&ask(vip4)).unwrap();
        let after = capture_for(&wire, Duration::from_millis(500), |f| reply_for(f, vip4)).await;
        assert!(
            after.is_empty(),
            "{} answers after the agent died",
            after.len()
        );

        // A new agent: release silences the VIP at once, restore puts the settings back.
        let agent = VipDriver::new().unwrap();
        let bound = agent.resolve(&vip("10.77.0.100/24", None)).await.unwrap();
        agent
            .acquire(&bound, Duration::from_secs(30))
            .await
            .unwrap();
        wire.send(&ask(vip4)).unwrap();
        assert_eq!(
            capture_for(&wire, Duration::from_millis(300), |f| reply_for(f, vip4))
                .await
                .len(),
            1
        );
        agent.release(&bound).await.unwrap();
        assert!(!agent.answering(&bound));
        wire.send(&ask(vip4)).unwrap();
        assert!(
            capture_for(&wire, Duration::from_millis(300), |f| reply_for(f, vip4))
                .await
                .is_empty()
        );
        // The settings this agent found were already quiet (the dead one's): nothing
        // of its own to restore. The first agent's originals died with it — which is
        // the point: a crash leaves the node quiet.
        assert_eq!(agent.restore_kernel().await.unwrap(), 0);
        assert_eq!(ipv4_conf("vipa", "arp_ignore"), 1);
    });
}

#[test]
fn restore_puts_back_what_the_driver_changed() {
    in_netns("restore_kernel", || async {
        let driver = VipDriver::new().unwrap();
        veth_with(&driver.handle, "vipa", &["10.77.0.1/24"]).await;
        let bound = driver.resolve(&vip("10.77.0.100/24", None)).await.unwrap();
        driver
            .acquire(&bound, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            (
                ipv4_conf("vipa", "arp_ignore"),
                ipv4_conf("vipa", "arp_announce")
            ),
            (1, 2)
        );
        driver.release(&bound).await.unwrap();
        assert_eq!(driver.restore_kernel().await.unwrap(), 1);
        assert_eq!(
            (
                ipv4_conf("vipa", "arp_ignore"),
                ipv4_conf("vipa", "arp_announce")
            ),
            (0, 0)
        );
        // Higher settings are left as they are (and nothing is restored).
        std::fs::write("/proc/sys/net/ipv4/conf/vipa/arp_ignore", "2").unwrap();
        std::fs::write("/proc/sys/net/ipv4/conf/vipa/arp_announce", "2").unwrap();
        driver
            .acquire(&bound, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(ipv4_conf("vipa", "arp_ignore"), 2);
        driver.release(&bound).await.unwrap();
        assert_eq!(driver.restore_kernel().await.unwrap(), 0);
    });
}

/// Adds `cidr` to `name` without duplicate address detection (usable at once).
async fn add_nodad(handle: &Handle, name: &str, cidr: &str) {
    let index = index_of(handle, name).await;
    let v = vip(cidr, None);
    let mut request = handle.address().add(index, v.address, v.prefix_len);
    request.message_mut().header.flags |=
        rtnetlink::packet_route::address::AddressHeaderFlags::Nodad;
    request.execute().await.unwrap();
}

/// Whether `frame` is a neighbour advertisement for `target`.
fn na_for(frame: &[u8], target: std::net::Ipv6Addr) -> bool {
    packet::parse_unsolicited_na(frame).is_some_and(|(_, t)| t == target)
}

#[test]
fn ipv6_vip_is_answered_by_the_agent_as_the_kernel_would_and_not_after_it_is_gone() {
    in_netns("agent_answers_ndp", || async {
        let agent = VipDriver::new().unwrap();
        let observer = VipDriver::new().unwrap();
        veth_with(&agent.handle, "vip6", &[]).await;
        add_nodad(&agent.handle, "vip6", "fd77::1/64").await;
        let node = link_mac(&agent, "vip6").await;
        let asker = link_mac(&agent, "vip6p").await;
        let asker_ip: std::net::Ipv6Addr = "fd77::7".parse().unwrap();
        let wire = Capture::bind(index_of(&agent.handle, "vip6p").await, ETHERTYPE_IPV6).unwrap();
        let solicit = |target| packet::neighbor_solicitation(asker, asker_ip, target);

        // The kernel's answer for the node's own address is what we send for a VIP.
        let own: std::net::Ipv6Addr = "fd77::1".parse().unwrap();
        wire.send(&solicit(own)).unwrap();
        let kernel = capture(&wire, 1, |f| na_for(f, own)).await;
        let request = packet::parse_neighbor_solicitation(&solicit(own)).unwrap();
        assert_eq!(kernel, vec![packet::solicited_na(node, own, &request)]);

        let bound = agent.resolve(&vip("fd77::100/64", None)).await.unwrap();
        assert!(bound.answered_by_agent());
        let IpAddr::V6(vip6) = bound.vip().address else {
            unreachable!()
        };
        agent.prepare(&bound).await.unwrap();
        agent
            .acquire(&bound, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(agent.answering(&bound));
        let lo = index_of(&agent.handle, "lo").await;
        let held: Vec<_> = agent
            .addresses()
            .await
            .unwrap()
            .iter()
            .filter_map(OnLink::of)
            .filter(|a| a.address == bound.vip().address)
            .collect();
        assert_eq!(
            held,
            vec![OnLink {
                index: lo,
                address: bound.vip().address,
                prefix_len: 128
            }]
        );
        // Nothing to quiet for IPv6: the kernel answers only for the interface's own.
        assert_eq!(ipv4_conf("vip6", "arp_ignore"), 0);

        wire.send(&solicit(vip6)).unwrap();
        let answers = capture_for(&wire, Duration::from_millis(300), |f| na_for(f, vip6)).await;
        let request = packet::parse_neighbor_solicitation(&solicit(vip6)).unwrap();
        assert_eq!(answers, vec![packet::solicited_na(node, vip6, &request)]);

        drop(agent);
        tokio::task::yield_now().await;
        assert!(
            observer.held(&bound).await.unwrap(),
            "the address outlives the agent"
        );
        wire.send(&solicit(vip6)).unwrap();
        let after = capture_for(&wire, Duration::from_millis(500), |f| na_for(f, vip6)).await;
        assert!(
            after.is_empty(),
            "{} answers after the agent died",
            after.len()
        );
    });
}

#[test]
fn loopback_vips_stay_where_they_are_and_are_not_answered() {
    in_netns("loopback_vip", || async {
        let driver = VipDriver::new().unwrap();
        up_with(&driver.handle, "lo", &[]).await;
        let bound = driver
            .resolve(&vip("192.0.2.5/32", Some("lo")))
            .await
            .unwrap();
        assert!(!bound.answered_by_agent());
        driver
            .acquire(&bound, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!driver.answering(&bound));
        assert!(driver.held(&bound).await.unwrap());
    });
}
