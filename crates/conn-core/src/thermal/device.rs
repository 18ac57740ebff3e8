//! Device heat (the encoder's own `eParamID_Temperature`), apart from connection heat.

use helo_transport::{names, HeloClientExt, HeloError};

/// What one device temperature reading means, from
/// [`ConnectionThermalManager::record_device_temperature`](crate::ConnectionThermalManager::record_device_temperature).
///
/// The manager does no I/O itself: when the opt-in `overheat_profile` is configured,
/// the first over-limit reading of an episode carries `switch_profile`, and the caller
/// performs it with [`DeviceHeat::apply`] on any client (a connection or a stack).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum DeviceHeat {
    /// At or below the limit.
    Normal {
        /// The reading.
        celsius: f64,
    },
    /// Above `device_temperature_limit`.
    Overheated {
        /// The reading.
        celsius: f64,
        /// The configured limit.
        limit: f64,
        /// First over-limit reading of this episode (an episode ends once the device
        /// falls to the limit minus `device_temperature_hysteresis`).
        newly: bool,
        /// Streaming profile to switch to; only on the first reading of an episode,
        /// and only when `overheat_profile` is configured.
        switch_profile: Option<u8>,
    },
}

impl DeviceHeat {
    /// The reading.
    pub fn celsius(&self) -> f64 {
        match self {
            Self::Normal { celsius } | Self::Overheated { celsius, .. } => *celsius,
        }
    }

    /// Above the limit.
    pub fn is_overheated(&self) -> bool {
        matches!(self, Self::Overheated { .. })
    }

    /// The profile switch the caller should make, if any.
    pub fn switch_profile(&self) -> Option<u8> {
        match self {
            Self::Overheated { switch_profile, .. } => *switch_profile,
            Self::Normal { .. } => None,
        }
    }

    /// Performs the profile switch, if any, by setting `eParamID_StreamingProfileSel`
    /// through `client`; answers the profile set.
    pub async fn apply<S>(&self, client: &S) -> Result<Option<u8>, S::Error>
    where
        S: HeloClientExt,
        S::Error: From<HeloError> + Send,
        S::Future: Send,
    {
        let Some(profile) = self.switch_profile() else {
            return Ok(None);
        };
        client.set_param(names::STREAMING_PROFILE, profile).await?;
        Ok(Some(profile))
    }
}
