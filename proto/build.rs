//! Compiles the Talos/COSI protos with protox so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "common/common.proto",
        "google/rpc/status.proto",
        "machine/machine.proto",
        "resource/config/config.proto",
        "resource/definitions/enums/enums.proto",
        "resource/definitions/block/block.proto",
        "v1alpha1/resource.proto",
        "v1alpha1/state.proto",
        "v1alpha1/meta.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
