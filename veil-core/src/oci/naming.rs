//! The sandbox name a container gets: the operator's choice in the `veil.sandbox`
//! annotation, else the container's name, else its short id. The daemon still checks the
//! result (names are cgroup-safe, unique), so a clash stops the container rather than
//! merging two sandboxes.

/// The annotation that asks for a container to be a veil sandbox, and names it.
pub const SANDBOX_ANNOTATION: &str = "veil.sandbox";

/// Longest sandbox name.
const MAX_NAME: usize = 64;

/// The name for a container with id `id`, runtime name `container_name` (Podman's and
/// Docker's names; Docker's leading `/` is dropped), and the `veil.sandbox` annotation's value
/// `requested`. A requested name is returned as given (the daemon refuses a bad one, and the
/// container does not start); a derived one is made safe: bytes outside `A-Z a-z 0-9 _ . -`
/// become `-`, and it is cut to 64 bytes.
pub fn sandbox_name(requested: Option<&str>, container_name: Option<&str>, id: &str) -> String {
    if let Some(name) = requested.filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    let derived = container_name
        .map(|n| n.trim_start_matches('/'))
        .filter(|n| !n.is_empty())
        .map(safe)
        .filter(|n| n != "." && n != "..");
    derived.unwrap_or_else(|| format!("ctr-{}", safe(id).chars().take(12).collect::<String>()))
}

fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME)
        .collect()
}
