//! ETags and the `If-Match` / `If-None-Match` preconditions (RFC 9110
//! §13.1). Pure, so the parsing rules are unit tested natively.

/// The ETag of an item version: strong, `"<version>"`.
pub fn etag(version: &str) -> String {
    format!("\"{version}\"")
}

/// One entity tag from a header: its opaque text and whether it was weak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// Written `W/"..."`; `If-Match` never matches a weak tag.
    pub weak: bool,
    /// The text between the quotes: an item's version for our own tags.
    pub opaque: String,
}

/// A parsed `If-Match` or `If-None-Match` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `*`.
    Any,
    /// A list of one or more entity tags.
    Tags(Vec<EntityTag>),
}

/// Why a header value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedCondition;

/// Parses `*` or a comma-separated list of (possibly weak) entity tags.
/// Header lines repeated by the client are expected joined with `,`.
pub fn parse(value: &str) -> Result<Condition, MalformedCondition> {
    let value = value.trim();
    if value == "*" {
        return Ok(Condition::Any);
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, after_prefix) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let quoted = after_prefix.strip_prefix('"').ok_or(MalformedCondition)?;
        let end = quoted.find('"').ok_or(MalformedCondition)?;
        tags.push(EntityTag {
            weak,
            opaque: quoted[..end].to_string(),
        });
        rest = &quoted[end + 1..];
        let next = rest.trim_start_matches([' ', '\t']);
        if !(next.is_empty() || next.starts_with(',')) {
            return Err(MalformedCondition);
        }
        rest = next;
    }
    if tags.is_empty() {
        return Err(MalformedCondition);
    }
    Ok(Condition::Tags(tags))
}

/// `If-None-Match` on a read: weak comparison, so `W/"3"` matches version 3.
/// True means "not modified" (304).
pub fn none_match(condition: &Condition, version: &str) -> bool {
    match condition {
        Condition::Any => true,
        Condition::Tags(tags) => tags.iter().any(|t| t.opaque == version),
    }
}

/// What `If-Match` asks of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: write unconditionally.
    Absent,
    /// `*`: the item must exist.
    Exists,
    /// One strong tag: the store checks the version atomically.
    Version(String),
    /// Several strong tags: the current version must be one of them.
    AnyOf(Vec<String>),
    /// Nothing can match (only weak tags, or a malformed value); carries
    /// why, for the 412 detail.
    Never(&'static str),
}

/// Reads an `If-Match` header value (`None` when absent). `If-Match` uses
/// the strong comparison, so weak tags never match.
pub fn if_match(value: Option<&str>) -> IfMatch {
    let Some(value) = value else {
        return IfMatch::Absent;
    };
    match parse(value) {
        Ok(Condition::Any) => IfMatch::Exists,
        Ok(Condition::Tags(tags)) => {
            let mut strong: Vec<String> = tags
                .into_iter()
                .filter(|t| !t.weak)
                .map(|t| t.opaque)
                .collect();
            strong.sort();
            strong.dedup();
            match strong.len() {
                0 => IfMatch::Never(
                    "If-Match compares strongly, so weak ETags (W/\"...\") never match; send the ETag exactly as received",
                ),
                1 => IfMatch::Version(strong.remove(0)),
                _ => IfMatch::AnyOf(strong),
            }
        }
        Err(MalformedCondition) => IfMatch::Never(
            "If-Match must be `*` or a comma-separated list of quoted ETags such as \"3\"",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(weak: bool, opaque: &str) -> EntityTag {
        EntityTag {
            weak,
            opaque: opaque.into(),
        }
    }

    #[test]
    fn parses_lists_and_star() {
        assert_eq!(parse(" * "), Ok(Condition::Any));
        assert_eq!(
            parse(r#""1", W/"2" ,"a,b""#),
            Ok(Condition::Tags(vec![
                tag(false, "1"),
                tag(true, "2"),
                tag(false, "a,b")
            ]))
        );
        assert_eq!(parse(r#""""#), Ok(Condition::Tags(vec![tag(false, "")])));
        for bad in ["", "1", r#""1"x"#, r#""1"#, "W/1", ",", r#"*, "1""#] {
            assert_eq!(parse(bad), Err(MalformedCondition), "{bad}");
        }
    }

    #[test]
    fn if_none_match_is_weak() {
        let cond = parse(r#"W/"3", "4""#).unwrap();
        assert!(none_match(&cond, "3"));
        assert!(none_match(&cond, "4"));
        assert!(!none_match(&cond, "5"));
        assert!(none_match(&Condition::Any, "x"));
    }

    #[test]
    fn if_match_is_strong() {
        assert_eq!(if_match(None), IfMatch::Absent);
        assert_eq!(if_match(Some("*")), IfMatch::Exists);
        assert_eq!(if_match(Some(r#""7""#)), IfMatch::Version("7".into()));
        assert_eq!(
            if_match(Some(r#"W/"6", "7""#)),
            IfMatch::Version("7".into())
        );
        assert_eq!(
            if_match(Some(r#""6", "7""#)),
            IfMatch::AnyOf(vec!["6".into(), "7".into()])
        );
        assert!(matches!(if_match(Some(r#"W/"7""#)), IfMatch::Never(_)));
        assert!(matches!(if_match(Some("7")), IfMatch::Never(_)));
    }

    #[test]
    fn etag_round_trips() {
        assert_eq!(if_match(Some(&etag("42"))), IfMatch::Version("42".into()));
    }
}
