//! Who a container is, for the registry and the audit log: its runtime, name and image. Read
//! from what each runtime leaves where a root hook can see it; anything missing is left out
//! rather than guessed.

use std::{collections::BTreeMap, fs, path::Path};

use serde::Deserialize;

use crate::audit::Container;

/// Annotations veil's Docker wrapper sets on the bundles it creates.
pub const RUNTIME_ANNOTATION: &str = "veil.container.runtime";
/// The container's name, set by veil's Docker wrapper.
pub const NAME_ANNOTATION: &str = "veil.container.name";
/// The container's image, set by veil's Docker wrapper.
pub const IMAGE_ANNOTATION: &str = "veil.container.image";

/// Largest runtime bookkeeping file read.
const MAX_FILE: u64 = 64 << 20;

/// The container with id `id`, bundle `bundle` and `annotations`.
pub fn describe(id: &str, bundle: &Path, annotations: &BTreeMap<String, String>) -> Container {
    let get = |key: &str| annotations.get(key).filter(|v| !v.is_empty()).cloned();
    if let Some(runtime) = get(RUNTIME_ANNOTATION) {
        return Container {
            runtime,
            id: id.to_owned(),
            name: get(NAME_ANNOTATION),
            image: get(IMAGE_ANNOTATION),
        };
    }
    if annotations.get("io.container.manager").map(String::as_str) == Some("libpod") {
        let (name, image) = podman_names(id, bundle).unwrap_or_default();
        return Container {
            runtime: "podman".into(),
            id: id.to_owned(),
            name,
            image,
        };
    }
    if let Some(name) =
        get("io.kubernetes.cri-o.ContainerName").or_else(|| get("io.kubernetes.cri-o.Name"))
    {
        return Container {
            runtime: "cri-o".into(),
            id: id.to_owned(),
            name: Some(name),
            image: get("io.kubernetes.cri-o.ImageName"),
        };
    }
    Container {
        runtime: "oci".into(),
        id: id.to_owned(),
        name: None,
        image: None,
    }
}

/// Docker's name (without the leading `/`) and image for container `id`, from
/// `<data-root>/containers/<id>/config.v2.json`, which Docker writes before it creates the
/// container.
pub fn docker_names(data_root: &Path, id: &str) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "Name", default)]
        name: Option<String>,
        #[serde(rename = "Config", default)]
        config: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "Image", default)]
        image: Option<String>,
    }
    if !veil_core::oci::state::valid_id(id) {
        return (None, None);
    }
    let path = data_root.join("containers").join(id).join("config.v2.json");
    let Some(config) = read_json::<Config>(&path) else {
        return (None, None);
    };
    let name = config
        .name
        .map(|n| n.trim_start_matches('/').to_owned())
        .filter(|n| !n.is_empty());
    (name, config.config.and_then(|c| c.image))
}

/// Podman's name and image for container `id` whose bundle is
/// `<graph-root>/overlay-containers/<id>/userdata`: containers/storage's `containers.json`
/// beside the container directories lists each container's names and metadata.
fn podman_names(id: &str, bundle: &Path) -> Option<(Option<String>, Option<String>)> {
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        names: Vec<String>,
        #[serde(default)]
        metadata: String,
    }
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(rename = "image-name", default)]
        image_name: Option<String>,
    }
    let list = bundle.parent()?.parent()?.join("containers.json");
    let entries: Vec<Entry> = read_json(&list)?;
    let entry = entries.into_iter().find(|e| e.id == id)?;
    let image = serde_json::from_str::<Metadata>(&entry.metadata)
        .ok()
        .and_then(|m| m.image_name)
        .filter(|i| !i.is_empty());
    Some((entry.names.into_iter().next(), image))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let meta = fs::metadata(path).ok()?;
    if meta.len() > MAX_FILE {
        return None;
    }
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}
