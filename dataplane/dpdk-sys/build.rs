//! Build script: finds DPDK through `pkg-config libdpdk`, generates bindings with bindgen over
//! a narrow allowlist, compiles the C shim and links the DPDK libraries plus the poll-mode
//! drivers (PMDs) the project uses.
//!
//! Debian ships every PMD as its own shared library (`librte_net_null.so`, ...) that
//! `pkg-config --libs libdpdk` does not list, and that exports no symbol a program could
//! reference, so a normal (`--as-needed`) link drops them and a library crate cannot pass
//! `--no-as-needed` to the final link of its dependents. Instead this script records where
//! each PMD library is (`PMD_LIBRARIES`, generated into `pmds.rs`); the safe layer hands
//! them to EAL with `-d <library>`, which loads them before devices are probed, whether or
//! not EAL also scans its default plugin directory.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, exit};

/// The oldest DPDK whose API this crate is written against.
const MIN_VERSION: &str = "22.11";

/// PMD libraries to record for EAL (library name without `lib` and `.so`), and the
/// vdev drivers each provides.
const PMDS: &[(&str, &str)] = &[
    ("rte_net_null", "net_null"),
    ("rte_net_ring", "net_ring"),
    ("rte_net_pcap", "net_pcap"),
    ("rte_net_af_packet", "net_af_packet"),
    ("rte_net_vhost", "net_vhost"),
    ("rte_net_virtio", "net_virtio_user"),
];

/// Functions the safe layer calls (exact names, joined into one regex).
const FUNCTIONS: &[&str] = &[
    "rte_eal_init",
    "rte_eal_cleanup",
    "rte_thread_register",
    "rte_thread_unregister",
    "rte_lcore_count",
    "rte_get_main_lcore",
    "rte_get_tsc_hz",
    "rte_strerror",
    "rte_dev_probe",
    "rte_pktmbuf_pool_create",
    "rte_pktmbuf_free_bulk",
    "rte_mempool_free",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_eth_dev_count_avail",
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_info_get",
    "rte_eth_dev_socket_id",
    "rte_eth_dev_configure",
    "rte_eth_dev_adjust_nb_rx_tx_desc",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_macaddr_get",
    "rte_eth_link_get_nowait",
    "rte_eth_stats_get",
    "rte_eth_xstats_get_names",
    "rte_eth_xstats_get",
    "rte_eth_promiscuous_enable",
    "rte_eth_dev_rss_reta_update",
    "rte_eth_dev_rss_hash_update",
    "vbng_.*",
];

/// Constants (macros and `static const`s).
const VARS: &[&str] = &[
    "RTE_ETH_RSS_(IPV4|FRAG_IPV4|NONFRAG_IPV4_.*|IPV6|FRAG_IPV6|NONFRAG_IPV6_.*)",
    "RTE_ETH_RSS_(L2_PAYLOAD|L3_DST_ONLY|L4_SRC_ONLY|L4_DST_ONLY|PPPOE|GTPU|ETH|S_VLAN|C_VLAN)",
    "RTE_ETH_RSS_(IP|UDP|TCP|SCTP|PROTO_MASK)",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MBUF_DEFAULT_DATAROOM",
    "RTE_MEMPOOL_CACHE_MAX_SIZE",
    "RTE_MAX_LCORE",
    "RTE_MAX_ETHPORTS",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_ETH_XSTATS_NAME_SIZE",
    "RTE_ETH_RETA_GROUP_SIZE",
    "RTE_ETH_LINK_.*",
    "RTE_ETH_SPEED_NUM_.*",
    "SOCKET_ID_ANY",
    "LCORE_ID_ANY",
];

/// Types the bindings only pass by pointer: kept opaque so their (large, version-specific)
/// insides stay out of the bindings. `rte_mbuf` stays transparent so its layout is checked.
const OPAQUE: &[&str] = &[
    "rte_mempool",
    "rte_device",
    "rte_eth_rxconf",
    "rte_eth_txconf",
    "rte_eth_dev_portconf",
    "rte_eth_switch_info",
    "rte_eth_desc_lim",
    "rte_mbuf_ext_shared_info",
    "__tile1024i_str",
    "rte_arp_ipv4",
    "rte_arp_hdr",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim/vbng_shim.c");
    println!("cargo:rerun-if-changed=shim/vbng_shim.h");
    println!("cargo:rerun-if-changed=shim/wrapper.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");

    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    let version = pkg_config_query(&pkg_config, &["--modversion", "libdpdk"]);
    let Some(version) = version else {
        fail(&format!(
            "`{pkg_config} --modversion libdpdk` found no DPDK. dpdk-sys needs DPDK {MIN_VERSION}+ \
             development files: on Debian run `apt-get install libdpdk-dev pkg-config clang \
             libclang-dev` (scripts/setup.sh does), or build vbng-dataplane without DPDK: \
             `cargo build -p vbng-dataplane --no-default-features --features std`"
        ));
    };
    if pkg_config_query(&pkg_config, &["--atleast-version", MIN_VERSION, "libdpdk"]).is_none() {
        fail(&format!(
            "pkg-config found DPDK {version}, dpdk-sys needs {MIN_VERSION} or newer"
        ));
    }
    let cflags =
        split(&pkg_config_query(&pkg_config, &["--cflags", "libdpdk"]).unwrap_or_default());
    let libs = split(&pkg_config_query(&pkg_config, &["--libs", "libdpdk"]).unwrap_or_default());
    let libdir = pkg_config_query(&pkg_config, &["--variable=libdir", "libdpdk"])
        .map(|s| PathBuf::from(s.trim()));

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    generate_bindings(&cflags, &out);
    compile_shim(&cflags);
    link(&libs, libdir.as_deref());
}

/// Prints `message` as the build error and stops.
fn fail(message: &str) -> ! {
    eprintln!("error: dpdk-sys: {message}");
    println!("cargo:warning=dpdk-sys: {message}");
    exit(1);
}

/// Runs pkg-config; `Some(stdout)` if it exited 0.
fn pkg_config_query(pkg_config: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(pkg_config).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Splits pkg-config output into arguments (DPDK's flags contain no quoting).
fn split(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn generate_bindings(cflags: &[String], out: &Path) {
    let target = bindgen::RustTarget::stable(85, 0).unwrap_or_else(|e| fail(&format!("{e}")));
    let mut builder = bindgen::Builder::default()
        .header("shim/wrapper.h")
        .clang_args(cflags)
        .clang_arg("-Ishim")
        .rust_target(target)
        .rust_edition(bindgen::RustEdition::Edition2024)
        .use_core()
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(out)
        .allowlist_function(FUNCTIONS.join("|"))
        .allowlist_var(VARS.join("|"))
        .allowlist_type("rte_eth_rx_mq_mode|rte_eth_tx_mq_mode")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .merge_extern_blocks(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .parse_callbacks(Box::new(RssBitsAreU64));
    for ty in OPAQUE {
        builder = builder.opaque_type(*ty);
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        fail(&format!(
            "bindgen over the DPDK headers failed ({e}); libclang is needed: \
             `apt-get install clang libclang-dev`"
        ))
    });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("writing bindings.rs: {e}")));
}

/// Gives every `RTE_ETH_RSS_*` constant the type of `rte_eth_conf.rss_hf` (u64); bindgen
/// would pick u32 for the small ones.
#[derive(Debug)]
struct RssBitsAreU64;

impl bindgen::callbacks::ParseCallbacks for RssBitsAreU64 {
    fn int_macro(&self, name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        name.starts_with("RTE_ETH_RSS_")
            .then_some(bindgen::callbacks::IntKind::U64)
    }
}

fn compile_shim(cflags: &[String]) {
    let mut build = cc::Build::new();
    build.file("shim/vbng_shim.c").include("shim").opt_level(3);
    for f in cflags {
        build.flag(f);
    }
    // DPDK's headers trip a few of cc's default warnings; they are not ours to fix.
    build.warnings(false);
    build.compile("vbng_dpdk_shim");
}

/// Emits the link lines (the shim is done by cc) and records the PMD libraries.
fn link(libs: &[String], libdir: Option<&Path>) {
    let mut search: Vec<PathBuf> = Vec::new();
    for arg in libs {
        if let Some(dir) = arg.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
            search.push(PathBuf::from(dir));
        } else if let Some(lib) = arg.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
        // `-Wl,--as-needed` is rustc's default on Linux already.
    }
    if let Some(dir) = libdir {
        search.push(dir.to_path_buf());
    }
    search.push(PathBuf::from("/usr/lib/x86_64-linux-gnu"));
    search.push(PathBuf::from("/usr/local/lib"));
    search.push(PathBuf::from("/usr/local/lib/x86_64-linux-gnu"));
    let mut found = String::from(
        "/// The PMD shared libraries found at build time: (driver, canonical path).\n\
         pub const PMD_LIBRARIES: &[(&str, &str)] = &[\n",
    );
    for (lib, driver) in PMDS {
        let file = format!("lib{lib}.so");
        match search.iter().map(|d| d.join(&file)).find(|p| p.exists()) {
            Some(path) => {
                let path = path.canonicalize().unwrap_or(path);
                found.push_str(&format!(
                    "    ({driver:?}, {:?}),\n",
                    path.display().to_string()
                ));
            }
            None => println!(
                "cargo:warning=dpdk-sys: {file} not found; the {driver} driver is only \
                 available if EAL finds it in its plugin directory"
            ),
        }
    }
    found.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("pmds.rs"), found)
        .unwrap_or_else(|e| fail(&format!("writing pmds.rs: {e}")));
}
