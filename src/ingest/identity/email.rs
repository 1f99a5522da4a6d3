//! Each network's form of an email address: Google's (whitespace removed, Gmail dots and `+tag`
//! dropped) and Meta's (trimmed, lower case), each checked for the shape both need.

use super::IdentityError;

/// Google's email form: trim, remove all whitespace, lowercase; for `gmail.com` and
/// `googlemail.com` drop the dots in the local part and cut it at the first `+`.
///
/// Gmail ignores dots and `+tags`, so Google matches on the stripped form; other providers may
/// not, so their addresses keep both. `googlemail.com` is not rewritten to `gmail.com` (the guide
/// and Google's Java util do not). Used for the CSV destination and tests.
pub fn google_email(raw: &str) -> Result<String, IdentityError> {
    let mut s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    s = s.to_lowercase();
    let (local, domain) = split_email(&s)?;
    if domain == "gmail.com" || domain == "googlemail.com" {
        let local = local.split('+').next().unwrap_or_default().replace('.', "");
        let out = format!("{local}@{domain}");
        split_email(&out)?;
        return Ok(out);
    }
    Ok(s)
}

/// Meta's email form: trim leading/trailing whitespace and lowercase, nothing else (Meta's doc
/// rule; no Gmail handling). Used for the CSV destination and tests.
pub fn meta_email(raw: &str) -> Result<String, IdentityError> {
    let s = raw.trim().to_lowercase();
    split_email(&s)?;
    Ok(s)
}

/// Checks the shape both networks need: exactly one `@`, a non-empty local part, and a domain
/// with at least one dot and no empty labels. Returns (local, domain).
fn split_email(s: &str) -> Result<(&str, &str), IdentityError> {
    let (local, domain) = s.split_once('@').ok_or(IdentityError::InvalidEmail)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.split('.').any(str::is_empty)
    {
        return Err(IdentityError::InvalidEmail);
    }
    Ok((local, domain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::sha256;
    use crate::ingest::identity::Normalizer;

    fn us() -> Normalizer {
        Normalizer::new("US").expect("US is a phone region")
    }

    #[test]
    fn gmail_vs_other_domains() {
        // Google's doc example for a non-Gmail domain: dots and plus kept.
        assert_eq!(
            google_email("user.name+NYC@Example.com").unwrap(),
            "user.name+nyc@example.com"
        );
        assert_eq!(google_email("a.b+c@gmail.com").unwrap(), "ab@gmail.com");
        assert_eq!(
            google_email("a.b+c@googlemail.com").unwrap(),
            "ab@googlemail.com"
        );
        assert_eq!(
            google_email("a.b+c@gmail.co.uk").unwrap(),
            "a.b+c@gmail.co.uk"
        );
        assert_eq!(
            google_email("a.b+c@mail.gmail.com").unwrap(),
            "a.b+c@mail.gmail.com"
        );
        // The dots after the first plus go too (cut first, then remove dots: same result).
        assert_eq!(google_email("a+b.c@GMAIL.COM").unwrap(), "a@gmail.com");
        let n = us();
        let gmail = n.email("j.doe+x@gmail.com").unwrap();
        let other = n.email("j.doe+x@example.com").unwrap();
        assert_eq!(gmail.google, sha256("jdoe@gmail.com"));
        assert_eq!(other.google, sha256("j.doe+x@example.com"));
        assert_eq!(gmail.meta, sha256("j.doe+x@gmail.com"));
        assert_eq!(other.google, other.meta);
    }

    #[test]
    fn google_removes_inner_whitespace_meta_only_trims() {
        assert_eq!(
            google_email(" ma ry@exam ple.com ").unwrap(),
            "mary@example.com"
        );
        assert_eq!(
            google_email("mary@\u{a0}example.com").unwrap(),
            "mary@example.com"
        );
        assert_eq!(
            meta_email("\t Mary@Example.com \n").unwrap(),
            "mary@example.com"
        );
    }

    #[test]
    fn invalid_emails() {
        let n = us();
        for raw in [
            "",
            "   ",
            "mary",
            "mary@",
            "@example.com",
            "mary@example",
            "mary@@example.com",
            "mary@ex@ample.com",
            "mary@example..com",
            "mary@.example.com",
            "mary@example.com.",
            "+tag@gmail.com", // empty local part after Google's Gmail rule
            "...@gmail.com",
        ] {
            assert_eq!(n.email(raw), Err(IdentityError::InvalidEmail), "{raw:?}");
        }
        assert_eq!(
            google_email("+x@gmail.com"),
            Err(IdentityError::InvalidEmail)
        );
        assert_eq!(meta_email("+x@gmail.com").unwrap(), "+x@gmail.com");
    }
}
