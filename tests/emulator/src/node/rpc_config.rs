//! ApplyConfiguration: validated like Talos, stored on STATE; STAGED waits for the next boot.

use talos_api::machine;
use tonic::Status;

use super::calls::{Attempt, RecoveryCall};
use super::machine_config::MachineConfig;
use super::{Node, lock};

impl Node {
    pub async fn apply_configuration(
        &self,
        request: machine::ApplyConfigurationRequest,
    ) -> Result<machine::ApplyConfigurationResponse, Status> {
        let mut attempt = self.attempt(RecoveryCall::ApplyConfiguration).await;
        let result = self
            .apply_configuration_checked(request, &mut attempt)
            .await;
        attempt.finish(result)
    }

    async fn apply_configuration_checked(
        &self,
        request: machine::ApplyConfigurationRequest,
        attempt: &mut Attempt,
    ) -> Result<machine::ApplyConfigurationResponse, Status> {
        use machine::apply_configuration_request::Mode;
        let mode = Mode::try_from(request.mode).map_err(|_| {
            Status::invalid_argument(format!("unknown apply mode {}", request.mode))
        })?;
        let config = MachineConfig::parse(&request.data)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let maintenance = lock(&self.inner.state).active_config.is_none();
        if maintenance && !request.dry_run && mode != Mode::Staged && mode != Mode::Try {
            // In maintenance mode the first config is stored and the node boots with it.
            attempt.act();
            let node = self.clone();
            tokio::spawn(async move {
                node.store_config(request.data).await?;
                node.inner
                    .kmsg
                    .talos("machine configuration received in maintenance mode, rebooting");
                node.start_reboot();
                Ok::<_, Status>(())
            })
            .await
            .map_err(|e| Status::internal(format!("failed to store config: {e}")))??;
            return Ok(reply(
                Mode::Reboot,
                "Applied configuration with a reboot".to_string(),
            ));
        }
        let details = match mode {
            Mode::Staged => "Staged configuration to be applied after the next reboot",
            Mode::Reboot => {
                return Err(Status::unimplemented(
                    "apply configuration in REBOOT mode is not supported, use AUTO or STAGED",
                ));
            }
            Mode::Try => {
                return Err(Status::unimplemented(
                    "apply configuration in TRY mode is not supported by this node",
                ));
            }
            Mode::Auto | Mode::NoReboot => {
                let active = lock(&self.inner.state)
                    .active_config
                    .as_ref()
                    .map(|c| c.machine_type);
                if active != Some(config.machine_type) {
                    return Err(Status::invalid_argument(
                        "the machine type can't be changed without a reboot: apply it with mode STAGED",
                    ));
                }
                "Applied configuration without a reboot"
            }
        };
        if request.dry_run {
            return Ok(reply(mode, "Dry run: no changes were applied".to_string()));
        }
        attempt.act();
        // Accepted: the config is stored even if the caller goes away meanwhile.
        let node = self.clone();
        tokio::spawn(async move {
            node.store_config(request.data).await?;
            {
                let mut state = lock(&node.inner.state);
                state.config_version += 1;
                if mode != Mode::Staged {
                    state.active_config = Some(config);
                }
            }
            node.inner.kmsg.talos(format!(
                "applied configuration in mode {}",
                mode.as_str_name()
            ));
            Ok::<_, Status>(())
        })
        .await
        .map_err(|e| Status::internal(format!("failed to store config: {e}")))??;
        Ok(reply(mode, details.to_string()))
    }

    async fn store_config(&self, data: Vec<u8>) -> Result<(), Status> {
        tokio::fs::write(self.inner.volumes.config_file(), data)
            .await
            .map_err(|e| Status::internal(format!("failed to store config: {e}")))
    }
}

fn reply(
    mode: machine::apply_configuration_request::Mode,
    details: String,
) -> machine::ApplyConfigurationResponse {
    machine::ApplyConfigurationResponse {
        messages: vec![machine::ApplyConfiguration {
            metadata: None,
            warnings: Vec::new(),
            mode: mode as i32,
            mode_details: details,
        }],
    }
}
