//! Spin's application variables (`fermyon:spin/variables@2.0.0`, through
//! spin-sdk), the way Spin passes configuration and secrets to a component.

/// The non-blank value of the component variable `name` lowercased (Spin's
/// variable names are lower snake case); `None` when Spin does not define it.
pub(crate) fn get(name: &str) -> Option<String> {
    spin_sdk::variables::get(&name.to_ascii_lowercase())
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}
