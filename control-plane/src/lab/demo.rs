//! `vbngctl demo`: the lab run as a sequence of named steps.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::topology::{CP_API, INTERNET_HOST, Lab, PPP_PASSWORD, PPP_USER, Subscriber, UP_METRICS};
use super::uml::{PppAuth, PppClient, PppdOptions, uml_unavailable};
use super::{LabError, find_binary};

/// Options of `vbngctl demo`.
#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    /// Leave the lab running after the checks until Ctrl-C.
    pub keep: bool,
}

/// Namespace prefix of the demo lab (fixed, so `ip netns exec vbng-demo-sub1 ...`
/// works while `--keep` holds it open; a stale lab of a killed run is replaced).
pub const DEMO_PREFIX: &str = "vbng-demo-";

static STOP: AtomicBool = AtomicBool::new(false);

/// Blocks SIGINT and SIGTERM in this process and turns them into the
/// [`STOP`] flag, so that an interrupted demo still tears its lab down.
/// Must run before other threads start (they inherit the signal mask).
fn watch_signals() {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t owned by this frame.
    unsafe {
        libc::sigemptyset(&mut set);
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `set` was initialised by sigemptyset above.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    // SAFETY: blocks the two signals in this thread; `set` is initialised.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: `set` is initialised and `sig` is a valid out-pointer.
        unsafe { libc::sigwait(&set, &mut sig) };
        STOP.store(true, Ordering::SeqCst);
    });
}

fn check_stop() -> Result<(), LabError> {
    if STOP.load(Ordering::SeqCst) {
        Err(LabError::Interrupted)
    } else {
        Ok(())
    }
}

/// Runs one named step, printing its outcome.
fn step<T>(name: &str, f: impl FnOnce() -> Result<T, LabError>) -> Result<T, LabError> {
    check_stop()?;
    println!("==> {name}");
    match f() {
        Ok(v) => Ok(v),
        Err(LabError::Interrupted) => Err(LabError::Interrupted),
        Err(e) => Err(LabError::Step {
            step: name.to_owned(),
            detail: e.to_string(),
        }),
    }
}

/// Builds the lab, brings two DHCP subscribers up through the user plane,
/// pings the Internet host from both, prints the sessions and counters, and
/// tears everything down. Fails naming the step that did not work.
pub fn run_demo(opts: &DemoOptions) -> Result<(), LabError> {
    watch_signals();
    if let Some(why) = super::netns::lab_unavailable() {
        return Err(LabError::Step {
            step: "check prerequisites".into(),
            detail: why,
        });
    }
    let up_bin = find_binary("vbng-up")?;
    let cp_bin = find_binary("vbng-cp")?;
    let ctl_bin = find_binary("vbngctl")?;
    let dir = PathBuf::from("/run/vbng-demo");
    let mut lab = step(
        "build the namespace lab (subscribers, BNG, Internet)",
        || Lab::build(DEMO_PREFIX, &dir),
    )?;
    step(
        "start vbng-up on acc0, acc1 (access) and core0 (core)",
        || lab.start_user_plane(&up_bin),
    )?;
    step("start vbng-cp with the local subscriber file", || {
        lab.start_control_plane(&cp_bin)
    })?;
    step("PFCP association between vbng-cp and vbng-up", || {
        lab.wait_associated(Duration::from_secs(15))
    })?;
    for who in [Subscriber::One, Subscriber::Two] {
        let what = match who {
            Subscriber::One => "subscriber 1 (untagged): dhclient gets an address",
            Subscriber::Two => {
                "subscriber 2 (behind the access node: C-VLAN 100, option 82): dhclient gets an address"
            }
        };
        let addr = step(what, || lab.dhcp(who))?;
        println!("    {} got {addr}", who.mac());
    }
    for who in [Subscriber::One, Subscriber::Two] {
        let number = if who == Subscriber::One { 1 } else { 2 };
        let what = format!("ping {INTERNET_HOST} from subscriber {number} through the user plane");
        let summary = step(&what, || {
            // The first echo may go while the user plane resolves its next hop.
            let _ = lab.ping_internet(who, 1);
            lab.ping_internet(who, 3)
        })?;
        println!("    {summary}");
    }
    // A PPPoE subscriber: real pppd in a User-Mode Linux guest on
    // subscriber 1's line, when this machine can run one.
    let pppoe = match uml_unavailable() {
        Some(why) => {
            println!("==> PPPoE subscriber: skipped ({why})");
            None
        }
        None => {
            let guest = dir.join("uml-pppd");
            let client = step(
                "PPPoE subscriber: pppd (CHAP) in a User-Mode Linux guest on subscriber 1's line",
                || {
                    std::fs::create_dir_all(&guest).map_err(|e| {
                        LabError::Command(format!("create {}: {e}", guest.display()))
                    })?;
                    let mut opts = PppdOptions::new(PPP_USER, PPP_PASSWORD, PppAuth::Chap);
                    opts.ping = Some((INTERNET_HOST, 3));
                    let mut c = PppClient::start(
                        lab.ns(Subscriber::One).name(),
                        Subscriber::One.iface(),
                        &guest,
                        opts,
                    )?;
                    let info = c.wait_up(Duration::from_secs(40))?;
                    println!(
                        "    {PPP_USER} got {} (peer {}, DNS {:?}) over IPCP",
                        info.local, info.remote, info.dns
                    );
                    Ok(c)
                },
            )?;
            Some(client)
        }
    };
    let mut pppoe = pppoe;
    let pppoe_ran = pppoe.is_some();
    if let Some(c) = pppoe.as_mut() {
        let summary = step(
            &format!("ping {INTERNET_HOST} from the PPPoE subscriber through the user plane"),
            || c.ping_result(Duration::from_secs(20)),
        )?;
        println!("    {summary}");
    }
    step("session table (vbngctl sessions)", || {
        let out = lab.bng.exec(
            ctl_bin.to_str().unwrap_or("vbngctl"),
            &["--api", CP_API, "sessions"],
        )?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        Ok(())
    })?;
    step("user plane counters (non-zero)", || {
        let text = lab.http_get(UP_METRICS)?;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if line.rsplit(' ').next().is_some_and(|v| v != "0") {
                println!("    {line}");
            }
        }
        Ok(())
    })?;
    if opts.keep {
        println!(
            "\nThe lab stays up until Ctrl-C. Try:\n  \
             ip netns exec {DEMO_PREFIX}sub1 ping {INTERNET_HOST}\n  \
             ip netns exec {DEMO_PREFIX}bng {} sessions\n  \
             ip netns exec {DEMO_PREFIX}bng curl -s {UP_METRICS}\n  \
             logs in {}",
            ctl_bin.display(),
            dir.display()
        );
        while !STOP.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            lab.check_daemons()?;
        }
    }
    if let Some(mut c) = pppoe.take() {
        step("PPPoE subscriber hangs up (LCP Terminate)", || {
            c.stop(Duration::from_secs(15))
        })?;
    }
    println!("==> tear down");
    drop(lab);
    println!(
        "demo passed: 2 subscribers bound over DHCP{}, programmed over PFCP, forwarding",
        if pppoe_ran { " and 1 over PPPoE" } else { "" }
    );
    Ok(())
}
