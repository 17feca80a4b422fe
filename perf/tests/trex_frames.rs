//! The TRex profiles' packets are what the user plane expects: pcaps written by
//! `trex-profiles` (scapy) for every encapsulation and VLAN layout go through the pipeline
//! with the scheme's sessions installed, and every frame is forwarded out of the other
//! side, rewritten as the user plane rewrites it, none dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use vbng_dataplane::isa::Isa;
use vbng_dataplane::packet::Frame;
use vbng_dataplane::pipeline::{BURST, DropReason, Verdict};
use vbng_dataplane::wire::EtherType;
use vbng_dataplane::wire::frame::L2Header;
use vbng_perf::fastpath::scheme::{FrameSize, Protocol, Replay, Scheme, Vlan, read_pcap};
use vbng_perf::fastpath::setup::{
    ACCESS_PORT, CORE_PORT, PipelineKind, PipelineOptions, build_pipeline,
};

const PYTHON: &str = "/usr/bin/python3";
const SESSIONS: u32 = 300;

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../trex-profiles")
}

/// Why the scapy side cannot run here, if it cannot.
fn scapy_missing() -> Option<String> {
    let ok = Command::new(PYTHON)
        .args(["-c", "import scapy.all"])
        .output()
        .is_ok_and(|o| o.status.success());
    (!ok).then(|| format!("{PYTHON} cannot import scapy (apt-get install python3-scapy)"))
}

fn write_pcap(dir: &Path, scheme: &Scheme, direction: &str) -> Vec<Vec<u8>> {
    let out = dir.join(format!(
        "{}-{}-{}-{direction}.pcap",
        scheme.protocol.name(),
        scheme.vlan.name(),
        scheme.size.name()
    ));
    let status = Command::new(PYTHON)
        .current_dir(profiles_dir())
        .args(["-m", "trex_profiles.to_pcap"])
        .args(["--sessions", &SESSIONS.to_string()])
        .args(["--protocol", scheme.protocol.name()])
        .args(["--vlan", scheme.vlan.name()])
        .args(["--size", &scheme.size.name()])
        .args(["--direction", direction])
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run trex_profiles.to_pcap");
    assert!(status.success(), "to_pcap failed for {}", out.display());
    read_pcap(&out).expect("read the pcap")
}

/// Runs `frames` received on `port` through a fresh pipeline; returns the forwarded frames
/// and the drops by reason.
fn forward(scheme: Scheme, frames: &[Vec<u8>], port: u8) -> (Vec<Vec<u8>>, Vec<(DropReason, u64)>) {
    let opts = PipelineOptions {
        kind: PipelineKind::Ipoe,
        scheme,
        qos: false,
        isa: Isa::detect(),
    };
    let mut pipeline = build_pipeline(&opts, 0, 1).expect("pipeline with the scheme's sessions");
    let mut burst: Vec<Frame> = (0..BURST).map(|_| Frame::new()).collect();
    let mut verdicts = [Verdict::Drop(DropReason::Malformed); BURST];
    let mut out = Vec::new();
    for chunk in frames.chunks(BURST) {
        for (f, data) in burst.iter_mut().zip(chunk) {
            f.set_data(data).expect("frame fits");
            f.port = port;
        }
        let n = chunk.len();
        pipeline.process_burst(1, &mut burst[..n], &mut verdicts[..n]);
        for (f, v) in burst[..n].iter().zip(&verdicts[..n]) {
            if let Verdict::Forward(to) = v {
                assert_ne!(*to, port, "forwarded back out of its own port");
                out.push(f.data().to_vec());
            }
        }
    }
    let drops = DropReason::ALL
        .iter()
        .map(|&r| (r, pipeline.counters().drop_count(r)))
        .filter(|&(_, n)| n > 0)
        .collect();
    (out, drops)
}

#[test]
fn scapy_frames_forward_through_the_pipeline() {
    if let Some(why) = scapy_missing() {
        println!("SKIPPED: trex_frames: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vbng-trex-frames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layouts = [
        (Protocol::Ipoe, Vlan::None, FrameSize::Fixed(64)),
        (Protocol::Ipoe, Vlan::Single, FrameSize::Fixed(64)),
        (Protocol::Ipoe, Vlan::Qinq, FrameSize::Imix),
        (Protocol::Pppoe, Vlan::None, FrameSize::Fixed(64)),
        (Protocol::Pppoe, Vlan::Qinq, FrameSize::Fixed(64)),
    ];
    for (protocol, vlan, size) in layouts {
        let scheme = Scheme {
            sessions: SESSIONS,
            protocol,
            vlan,
            size,
            replay: Replay::All,
        };
        let what = format!("{} {} {}", protocol.name(), vlan.name(), size.name());

        let up = write_pcap(&dir, &scheme, "up");
        assert_eq!(
            up.len() as u32,
            SESSIONS * scheme.packets_per_session(),
            "{what}"
        );
        let (sent, drops) = forward(scheme, &up, ACCESS_PORT);
        assert_eq!(drops, [], "{what}: upstream drops");
        assert_eq!(
            sent.len(),
            up.len(),
            "{what}: every upstream frame forwarded"
        );
        for frame in &sent {
            // Out of the core port: untagged IPv4 from the core MAC to the next hop.
            let (l2, _) = L2Header::parse(frame).unwrap();
            assert_eq!(l2.ethertype, EtherType::Ipv4, "{what}");
            assert_eq!((l2.svlan, l2.cvlan), (None, None), "{what}");
        }

        let down = write_pcap(&dir, &scheme, "down");
        let (sent, drops) = forward(scheme, &down, CORE_PORT);
        assert_eq!(drops, [], "{what}: downstream drops");
        assert_eq!(
            sent.len(),
            down.len(),
            "{what}: every downstream frame forwarded"
        );
        for frame in &sent {
            // Into the access port with the subscriber's tags and encapsulation.
            let (l2, _) = L2Header::parse(frame).unwrap();
            let expected = match protocol {
                Protocol::Ipoe => EtherType::Ipv4,
                Protocol::Pppoe => EtherType::PppoeSession,
            };
            assert_eq!(l2.ethertype, expected, "{what}");
            let tags = usize::from(l2.svlan.is_some()) + usize::from(l2.cvlan.is_some());
            let expected_tags = match vlan {
                Vlan::None => 0,
                Vlan::Single => 1,
                Vlan::Qinq => 2,
            };
            assert_eq!(tags, expected_tags, "{what}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
