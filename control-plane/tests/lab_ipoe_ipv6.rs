//! Dual-stack IPoE with the real clients: a subscriber behind the lab's
//! access node (C-VLAN 100, option 82) takes its IPv4 lease with ISC
//! dhclient, then its Linux kernel takes vbng-cp's router advertisements
//! (sent back through vbng-up's redirect, with the gateway MAC as their
//! link-layer address) and `dhclient -6 -N -P` an address (IA_NA) and a
//! delegated prefix (IA_PD). The control plane lists them with the
//! session; vbng-up forwards IPv6 both ways (pings from the address and
//! from the delegated prefix to the Internet host). When the subscriber
//! releases its IPv4 lease, the session ends and its IPv6 goes back to the
//! pools.
//!
//! Needs root, network namespaces and dhclient; prints a `SKIPPED:` line
//! and passes without them.

use std::io::Write;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use vbng_cp::lab::procs::Dhclient;
use vbng_cp::lab::topology::{INTERNET_HOST6, Lab, Subscriber};
use vbng_cp::lab::{ScratchDir, find_binary, netns};

/// Each subscriber's /64 comes from here, its delegated prefix from
/// [`PD_PREFIX`].
const IPV6_PREFIX: &str = "2001:db8:100::/48";
const PD_PREFIX: &str = "2001:db8:8000::/40";

fn config() -> String {
    format!(
        "[[pools]]\nname = \"default\"\nnetwork = \"100.64.0.0\"\nprefix_len = 24\n\
         gateway = \"100.64.0.1\"\nrange_start = \"100.64.0.10\"\nrange_end = \"100.64.0.250\"\n\
         dns = [\"192.0.2.53\"]\nipv6_prefix = \"{IPV6_PREFIX}\"\npd_prefix = \"{PD_PREFIX}\"\n\
         pd_length = 56\ndns6 = [\"2001:db8::53\"]\n"
    )
}

/// The value after `key` on a line of dhclient's lease file (`iaaddr
/// 2001:db8:... {`, `iaprefix 2001:db8:.../56 {`).
fn lease_value<'a>(lease: &'a str, key: &str) -> Option<&'a str> {
    lease
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
}

/// Polls `check` every 200 ms until it is true or `timeout` passes.
fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check()
}

#[test]
fn ipoe_subscriber_gets_ipv6_by_ra_and_dhcpv6_through_vbng() {
    let unavailable = netns::lab_unavailable().or_else(|| {
        netns::which("dhclient")
            .is_none()
            .then(|| "dhclient (Debian package isc-dhcp-client) is not installed".to_string())
    });
    if let Some(why) = unavailable {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: lab_ipoe_ipv6::ipoe_subscriber_gets_ipv6_by_ra_and_dhcpv6_through_vbng: {why}"
        );
        return;
    }
    let up_bin = find_binary("vbng-up").expect("vbng-up binary");
    let cp_bin = find_binary("vbng-cp").expect("vbng-cp binary");
    let dir = ScratchDir::new("ipoe6-lab");
    let mut lab = Lab::build(&format!("vi6{}-", std::process::id()), &dir).expect("build the lab");
    let config_path = dir.join("vbng-cp-ipv6.toml");
    std::fs::write(&config_path, config()).unwrap();
    lab.start_user_plane(&up_bin).expect("start vbng-up");
    lab.start_control_plane_with(&cp_bin, &["--config", &config_path.display().to_string()])
        .expect("start vbng-cp");
    lab.wait_associated(Duration::from_secs(15))
        .expect("PFCP association");

    // The Internet host routes both pools to the user plane.
    lab.route6_to_user_plane(IPV6_PREFIX)
        .expect("route the /48");
    lab.route6_to_user_plane(PD_PREFIX)
        .expect("route the PD pool");
    // Subscriber 1 is untagged, subscriber 2 behind the access node's
    // C-VLAN: each gets its own /64, address and /56.
    let mut clients = Vec::new();
    let mut addresses = Vec::new();
    for who in [Subscriber::One, Subscriber::Two] {
        let (client, address, delegated) = dual_stack(&mut lab, who);
        assert!(
            !addresses
                .iter()
                .any(|(_, a, d)| *a == address || *d == delegated),
            "{who:?} got another subscriber's IPv6: {address} {delegated} {addresses:?}"
        );
        clients.push(client);
        addresses.push((who, address, delegated));
    }

    // Subscriber 2's session ends with its IPv4 lease: its IPv6 link closes
    // and the user plane forwards no more for it; subscriber 1 keeps IPv6.
    clients[1].kill();
    lab.release(Subscriber::Two).expect("DHCPRELEASE");
    assert!(
        wait_for(Duration::from_secs(10), || lab
            .sessions()
            .is_ok_and(|s| s.len() == 1)),
        "the session stayed after the release"
    );
    assert!(
        wait_for(Duration::from_secs(5), || {
            std::fs::read_to_string(lab.dir.join("vbng-cp.log"))
                .is_ok_and(|log| log.contains("IPv6 link of the IPoE subscriber closed"))
        }),
        "the IPv6 link was not closed:\n{}",
        lab.logs()
    );
    let (_, address2, _) = addresses[1];
    assert!(
        ping6(&lab, Subscriber::Two, address2, 1).is_err(),
        "IPv6 still forwarded after the session ended"
    );
    let (_, address1, _) = addresses[0];
    ping6(&lab, Subscriber::One, address1, 3)
        .unwrap_or_else(|e| panic!("subscriber 1 after subscriber 2 left: {e}\n{}", lab.logs()));
}

/// Pings the Internet host `count` times from `source` in `who`'s namespace.
fn ping6(lab: &Lab, who: Subscriber, source: Ipv6Addr, count: u32) -> Result<(), String> {
    let (count, source, host) = (
        count.to_string(),
        source.to_string(),
        INTERNET_HOST6.to_string(),
    );
    lab.ns(who)
        .exec(
            "ping",
            &[
                "-6", "-n", "-c", &count, "-i", "0.2", "-W", "2", "-I", &source, &host,
            ],
        )
        .map(|_| ())
        .map_err(|e| format!("ping from {source}: {e}"))
}

/// Takes `who`'s IPv4 lease, then its IPv6: a default route from the router
/// advertisement and the /64 on-link, an address and a /56 by DHCPv6 (the
/// control plane lists them with the session), and pings through the user
/// plane from the address and from the delegated prefix. Returns the
/// running DHCPv6 client, the address and the delegated prefix.
fn dual_stack(lab: &mut Lab, who: Subscriber) -> (Dhclient, Ipv6Addr, String) {
    // IPv4 first: the session IPv6 joins.
    lab.dhcp(who)
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    let sub = lab.ns(who);
    for setting in ["accept_dad=0", "accept_ra=1", "disable_ipv6=0"] {
        sub.exec("sysctl", &["-qw", &format!("net.ipv6.conf.eth0.{setting}")])
            .expect("sysctl");
    }
    // The kernel solicits a router as IPv6 comes up; the advertisement
    // gives it a default route through our link-local address and the /64
    // on-link.
    let default_route = || {
        sub.ip(&["-6", "route", "show", "default"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    assert!(
        wait_for(Duration::from_secs(15), || default_route()
            .contains("via fe80::")),
        "no default route from a router advertisement: {:?}\n{}",
        default_route(),
        lab.logs()
    );
    let routes = sub
        .ip(&["-6", "route", "show"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        routes.contains("2001:db8:100:"),
        "the /64 is not on-link: {routes}"
    );

    // DHCPv6: an address in the session's /64, a /56 from the PD pool.
    let client = Dhclient::new_ipv6(sub.name(), who.iface(), &lab.dir, &format!("{who:?}"))
        .expect("dhclient -6 files");
    let log = client
        .obtain_address_and_prefix()
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    let lease = client.lease_text();
    let address: Ipv6Addr = lease_value(&lease, "iaaddr")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no IA_NA address in the lease:\n{lease}\n{log}"));
    let delegated = lease_value(&lease, "iaprefix")
        .unwrap_or_else(|| panic!("no delegated prefix in the lease:\n{lease}\n{log}"));
    assert!(
        address.to_string().starts_with("2001:db8:100:"),
        "{address}"
    );
    assert!(
        delegated.starts_with("2001:db8:80") && delegated.ends_with("/56"),
        "{delegated}"
    );

    // The control plane lists them with the session.
    let sessions = lab.sessions().expect("sessions");
    let ipv6 = sessions
        .iter()
        .filter_map(|s| s.get("ipv6").filter(|v| !v.is_null()))
        .find(|v| v["address"] == address.to_string())
        .unwrap_or_else(|| panic!("no session with {address}: {sessions:?}"));
    assert_eq!(ipv6["address"], address.to_string(), "{ipv6}");
    assert_eq!(ipv6["delegated_prefix"], delegated, "{ipv6}");
    eprintln!("lab_ipoe_ipv6: {who:?}: {ipv6}");

    let pd_base: Ipv6Addr = delegated
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("delegated prefix address");
    let pd_host = Ipv6Addr::from_bits(pd_base.to_bits() | 1);
    sub.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{pd_host}/128"),
        "dev",
        "eth0",
        "nodad",
    ])
    .expect("an address of the delegated prefix");
    for source in [address, pd_host] {
        ping6(lab, who, source, 3).unwrap_or_else(|e| panic!("{who:?}: {e}\n{}", lab.logs()));
    }
    // Besides the answer to its solicitation, the subscriber hears the
    // unsolicited advertisements the control plane sends on its own.
    let advertisements = || {
        lab.ns(who)
            .exec("cat", &["/proc/net/snmp6"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .ok()
            .and_then(|t| {
                lease_value(&t, "Icmp6InRouterAdvertisements").and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    assert!(
        wait_for(Duration::from_secs(3), || advertisements() >= 2),
        "{who:?} heard {} router advertisements",
        advertisements()
    );
    (client, address, delegated.to_owned())
}
