//! tonic clients for the emulated endpoints, configured like talosctl's.

use std::net::Ipv4Addr;

use talos_api::MAX_MESSAGE_SIZE;
use talos_api::cosi::resource::state_client::StateClient;
use talos_api::machine::machine_service_client::MachineServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::pki::CertAndKey;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("building the endpoint https://{endpoint}: {source}")]
    Endpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("connecting to https://{endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// A TLS channel to `ip:port` trusting `ca_pem`, presenting `identity` when given
/// (its Talos `ED25519 PRIVATE KEY` is relabelled for rustls).
pub async fn connect(
    ca_pem: &str,
    identity: Option<&CertAndKey>,
    ip: Ipv4Addr,
    port: u16,
) -> Result<Channel, ClientError> {
    let endpoint = format!("{ip}:{port}");
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some(identity) = identity {
        tls = tls.identity(Identity::from_pem(
            &identity.cert_pem,
            identity.key_pem_for_rustls(),
        ));
    }
    Endpoint::from_shared(format!("https://{endpoint}"))
        .and_then(|e| e.tls_config(tls))
        .map_err(|source| ClientError::Endpoint {
            endpoint: endpoint.clone(),
            source,
        })?
        .connect()
        .await
        .map_err(|source| ClientError::Connect { endpoint, source })
}

pub fn machine_client(channel: Channel) -> MachineServiceClient<Channel> {
    MachineServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

pub fn state_client(channel: Channel) -> StateClient<Channel> {
    StateClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}
