//! Where the api is mounted: the path prefix in front of its routes.
//!
//! Under Spin the app can sit at any route (`route = "/api/..."`); Spin then
//! passes the part after the prefix in the `spin-path-info` header and
//! keeps the full path in the request. The api routes on that part and
//! puts the prefix back in the URLs it writes (`Location`, `Link`), so that
//! clients can follow them. Every other runtime serves it at `/`.
//!
//! The header is only believed when it agrees with the path: it must be a
//! suffix of it, so a client that sends one itself (where no Spin sets it)
//! can at most make the api ignore a leading part of its own path, never
//! reach a path it did not ask for. The prefix must look like a path
//! (`/a/b`, not `//host`), so written URLs never leave the origin.

/// Spin's header with the path after the route prefix.
pub const PATH_INFO_HEADER: &str = "spin-path-info";

/// A request path split into the mount prefix and the api's own path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    /// The prefix in front of the api's routes: empty, or `/a` (no
    /// trailing `/`).
    pub base: String,
    /// The path the api routes on: `/items/...`.
    pub path: String,
}

impl Mounted {
    /// `path` (one of the api's own, starting with `/`) as a URL path for
    /// the client.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Splits `path` by Spin's `spin-path-info` value, when there is one that
/// agrees with it; otherwise the whole path is the api's.
pub fn mount(path: &str, path_info: Option<&str>) -> Mounted {
    let unmounted = || Mounted {
        base: String::new(),
        path: path.to_string(),
    };
    let Some(info) = path_info else {
        return unmounted();
    };
    if !(info.is_empty() || info.starts_with('/')) {
        return unmounted();
    }
    let Some(base) = path.strip_suffix(info) else {
        return unmounted();
    };
    let looks_like_a_path = base.is_empty()
        || (base.starts_with('/') && !base.starts_with("//") && !base.ends_with('/'));
    if !looks_like_a_path {
        return unmounted();
    }
    Mounted {
        base: base.to_string(),
        path: if info.is_empty() { "/" } else { info }.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(path: &str, info: Option<&str>) -> (String, String) {
        let m = mount(path, info);
        (m.base, m.path)
    }

    fn pair(base: &str, path: &str) -> (String, String) {
        (base.to_string(), path.to_string())
    }

    #[test]
    fn spin_prefixes_are_taken_off_and_put_back() {
        assert_eq!(split("/items/a", None), pair("", "/items/a"));
        assert_eq!(split("/items/a", Some("/items/a")), pair("", "/items/a"));
        assert_eq!(
            split("/api/items/a", Some("/items/a")),
            pair("/api", "/items/a")
        );
        assert_eq!(
            split("/v1/api/items", Some("/items")),
            pair("/v1/api", "/items")
        );
        assert_eq!(
            split("/api/items/a%2Fb", Some("/items/a%2Fb")),
            pair("/api", "/items/a%2Fb")
        );
        // `/api` and `/api/` under route `/api/...`.
        assert_eq!(split("/api", Some("")), pair("/api", "/"));
        assert_eq!(split("/api/", Some("/")), pair("/api", "/"));
        let m = mount("/api/items", Some("/items"));
        assert_eq!(m.url("/items/x"), "/api/items/x");
    }

    #[test]
    fn a_header_that_disagrees_with_the_path_is_ignored() {
        // Not a suffix: the path is the api's, whatever the header says.
        assert_eq!(split("/items/a", Some("/items/b")), pair("", "/items/a"));
        assert_eq!(split("/healthz", Some("/items")), pair("", "/healthz"));
        // Not a path.
        assert_eq!(split("/xitems", Some("items")), pair("", "/xitems"));
        // A prefix that would make written URLs leave the origin, or end
        // in a slash.
        assert_eq!(
            split("//evil.example/items", Some("/items")),
            pair("", "//evil.example/items")
        );
        assert_eq!(
            split("/api//items", Some("/items")),
            pair("", "/api//items")
        );
    }
}
