//! Picking a burn device at run time among the backends compiled in by Cargo features.
//!
//! burn 0.22 tensors carry no backend type: the `Device` decides. Features decide which
//! constructors exist; `--device NAME` picks one, and a name whose feature is off is an error
//! that says which feature to enable.

use anyhow::{bail, Result};
use burn::prelude::Device;

/// Backends this binary was compiled with, in preference order.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push("flex");
    }
    if cfg!(feature = "ndarray") {
        v.push("ndarray");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// `--device` help: the devices this build can run (others need a rebuild with a feature).
pub fn device_help() -> String {
    format!("Device: {}", device_choices())
}

/// The devices this build can run, for help texts: `flex, wgpu[:N] (default flex)`.
pub fn device_choices() -> String {
    let forms: Vec<&str> = compiled_backends()
        .into_iter()
        .map(|b| match b {
            "wgpu" => "wgpu[:N]",
            "cuda" => "cuda[:N]",
            other => other,
        })
        .collect();
    format!("{} (default {})", forms.join(", "), default_device_name())
}

/// The default device: flex when compiled in, else the first compiled backend.
pub fn default_device_name() -> &'static str {
    compiled_backends().first().copied().unwrap_or("flex")
}

/// Parses a comma-separated device list (`cuda:0,cuda:1`): training splits every batch over
/// them (data parallelism), the first holds the model, the optimizer and evaluation.
pub fn parse_devices(spec: &str) -> Result<Vec<Device>> {
    spec.split(',')
        .map(|one| parse_device(one.trim()))
        .collect()
}

/// Parses `flex`, `ndarray`, `wgpu`, `wgpu:N`, `cuda`, `cuda:N` (and `cpu` for the default CPU
/// backend) into a device (inference device: call `.autodiff()` for training).
pub fn parse_device(spec: &str) -> Result<Device> {
    let (name, index) = match spec.split_once(':') {
        Some((n, i)) => {
            let index: usize = i
                .parse()
                .map_err(|_| anyhow::anyhow!("device `{spec}`: `{i}` is not a device index"))?;
            (n, Some(index))
        }
        None => (spec, None),
    };
    let missing = |feature: &str| -> Result<Device> {
        bail!(
            "device `{spec}` needs the `{feature}` backend, which this build does not include; \
             rebuild with `--features {feature}` (compiled in: {})",
            compiled_backends().join(", ")
        )
    };
    match name {
        "cpu" if cfg!(feature = "flex") => parse_device("flex"),
        "cpu" => parse_device("ndarray"),
        "flex" => {
            if index.is_some() {
                bail!("device `{spec}`: flex is the CPU and takes no index");
            }
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            #[allow(unreachable_code)]
            missing("flex")
        }
        "ndarray" => {
            if index.is_some() {
                bail!("device `{spec}`: ndarray is the CPU and takes no index");
            }
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // kept as an option while burn still ships it
            return Ok(Device::ndarray());
            #[allow(unreachable_code)]
            missing("ndarray")
        }
        "wgpu" | "vulkan" => {
            #[cfg(feature = "wgpu")]
            {
                use burn::prelude::DeviceKind;
                let kind = match index {
                    None => DeviceKind::DefaultDevice,
                    Some(i) => DeviceKind::DiscreteGpu(i),
                };
                return Ok(Device::wgpu(kind));
            }
            #[allow(unreachable_code)]
            missing("wgpu")
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index.unwrap_or(0)));
            #[allow(unreachable_code)]
            missing("cuda")
        }
        other => bail!(
            "unknown device `{other}`; expected one of flex, ndarray, wgpu[:N], cuda[:N] \
             (compiled in: {})",
            compiled_backends().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_is_a_clear_error() {
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu`"), "{err}");
        let err = parse_device("cuda:x").unwrap_err().to_string();
        assert!(err.contains("not a device index"), "{err}");
    }

    #[test]
    #[cfg(not(feature = "cuda"))]
    fn missing_backend_names_the_feature() {
        let err = parse_device("cuda:0").unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    #[test]
    #[cfg(feature = "flex")]
    fn device_lists_parse_in_order_and_name_the_bad_entry() {
        assert_eq!(parse_devices("flex, flex").unwrap().len(), 2);
        let err = parse_devices("flex,gpu7").unwrap_err().to_string();
        assert!(err.contains("gpu7"), "{err}");
        assert!(parse_devices("flex,").is_err());
    }

    #[test]
    #[cfg(feature = "flex")]
    fn flex_parses() {
        assert!(parse_device("flex").is_ok());
        assert!(parse_device("cpu").is_ok());
        assert!(parse_device("flex:1").is_err());
    }
}
