//! Compiles the wire-compatible etcd API subset the emulated nodes use to drive
//! their real etcd members (client side only; protox, no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let etcd = protox::compile(["etcdserverpb/rpc.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(etcd)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
