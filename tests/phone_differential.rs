//! Phones read as libphonenumber reads them: our `Normalizer::e164` against Python's
//! `phonenumbers` (a port of libphonenumber, the library Google and Meta match with) on
//! generated numbers of every region the metadata has, in the forms people write them.
//!
//! Both directions count: a valid number we refuse is a lost match, an invalid one we accept
//! may hash to someone else. The oracle is `tests/phone_oracle.py` (`phonenumbers.parse` +
//! `is_valid_number` + E.164); its release must be the one whose metadata the `phonenumber`
//! crate ships (`Cargo.lock`: `phonenumber 0.3.10+9.0.33`), or disagreements would be metadata
//! drift. In CI (`CI=true`) a missing `phonenumbers` fails the test; locally it skips.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use audiencesync::ingest::identity::Normalizer;
use phonenumber::metadata::{Metadata, DATABASE};
use rand::{Rng as _, SeedableRng as _};

/// The libphonenumber release of the crate's metadata (the `+9.0.33` of its version).
const METADATA_RELEASE: &str = "9.0.33";

/// Regions national numbers are also read in, one per generated region in turn: some share
/// a calling code with others (US, GB), some have other trunk and international prefixes.
const OTHER_REGIONS: [&str; 8] = ["US", "GB", "DE", "FR", "IT", "AU", "BR", "RU"];

/// One input: the text, the country it is read with, and what kind of form it is.
struct Case {
    raw: String,
    country: &'static str,
    form: &'static str,
    region: String,
}

fn python_ready() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import phonenumbers"])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The oracle's answers, in input order.
fn oracle(cases: &[Case]) -> Vec<Option<String>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/phone_oracle.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the oracle");
    let mut input = String::new();
    for c in cases {
        let q = serde_json::json!({"raw": c.raw, "region": c.country});
        input.push_str(&q.to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("oracle output");
    writer.join().expect("writer").expect("write to the oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let head: serde_json::Value =
        serde_json::from_str(lines.next().expect("version line")).expect("json");
    assert_eq!(
        head["version"], METADATA_RELEASE,
        "phonenumbers must be the release of the crate's metadata: \
         python3 -m pip install phonenumbers=={METADATA_RELEASE}"
    );
    let answers: Vec<Option<String>> = lines
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["e164"].as_str().map(str::to_owned)
        })
        .collect();
    assert_eq!(answers.len(), cases.len(), "one answer per input");
    answers
}

/// The example national numbers of a region: fixed line and mobile first, then one of
/// each other type.
fn examples(meta: &Metadata) -> Vec<String> {
    let d = meta.descriptors();
    let mut out: Vec<String> = [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|d| d.example().map(str::to_owned))
    .collect();
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| seen.insert(e.clone()));
    out
}

/// `digits` in groups of 3 or 4 joined by `sep`.
fn grouped(digits: &str, sep: &str) -> String {
    let mut out = String::new();
    let mut rest = digits;
    while rest.len() > 4 {
        out.push_str(&rest[..3]);
        out.push_str(sep);
        rest = &rest[3..];
    }
    out.push_str(rest);
    out
}

/// ASCII digits replaced by those of another script, whose zero is `zero`; `+` by the
/// full-width plus when `wide_plus`.
fn script(s: &str, zero: char, wide_plus: bool) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(u32::from(zero) + (c as u32 - '0' as u32)).unwrap_or(c),
            '+' if wide_plus => '\u{FF0B}',
            c => c,
        })
        .collect()
}

/// The written forms of national number `n` of a region with calling code `cc`, national
/// (trunk) prefix `np` and international dialling prefix `idd`, with the kind of each.
fn forms(
    cc: u16,
    np: &str,
    idd: Option<&str>,
    nanpa: bool,
    n: &str,
) -> Vec<(&'static str, String)> {
    let half = n.len() / 2;
    let (a, b) = n.split_at(half);
    let trunk = if np.is_empty() { "0" } else { np };
    let mut out = vec![
        ("e164", format!("+{cc}{n}")),
        ("plus spaced", format!("+{cc} {}", grouped(n, " "))),
        ("plus dashes", format!("+{cc}-{}", grouped(n, "-"))),
        ("plus dots", format!("+{cc}.{}", grouped(n, "."))),
        ("plus parens", format!("+{cc} ({a}) {}", grouped(b, "-"))),
        ("national", n.to_owned()),
        ("national trunk", format!("{np}{n}")),
        ("national spaced", format!("{np}{}", grouped(n, " "))),
        ("national parens", format!("({np}{a}) {}", grouped(b, "-"))),
        ("national dashes", grouped(&format!("{np}{n}"), "-")),
        ("national dots", grouped(&format!("{np}{n}"), ".")),
        ("redundant trunk", format!("+{cc} {trunk}{n}")),
        ("redundant trunk parens", format!("+{cc} ({trunk}) {n}")),
        ("code without plus", format!("{cc}{n}")),
        ("code without plus, trunk", format!("{cc} {np}{n}")),
        ("too long", format!("+{cc}{n}5")),
        ("too long national", format!("{np}{n}5")),
        ("too short", format!("+{cc}{}", &n[..n.len() - 1])),
        ("too short national", format!("{np}{}", &n[..n.len() - 1])),
        (
            "full-width",
            script(&format!("+{cc} {}", grouped(n, " ")), '\u{FF10}', true),
        ),
        (
            "full-width national",
            script(&format!("{np}{n}"), '\u{FF10}', false),
        ),
        (
            "arabic-indic",
            script(&format!("+{cc}{n}"), '\u{0660}', false),
        ),
        (
            "arabic-indic national",
            script(&format!("{np}{n}"), '\u{0660}', false),
        ),
        (
            "persian",
            script(&format!("{np}{}", grouped(n, " ")), '\u{06F0}', false),
        ),
        (
            "devanagari",
            script(&format!("+{cc} {n}"), '\u{0966}', false),
        ),
        ("tel uri", format!("tel:+{cc}-{}", grouped(n, "-"))),
        ("extension", format!("+{cc} {n} ext. 123")),
        (
            "foreign idd",
            format!("{} {cc} {n}", if nanpa { "00" } else { "011" }),
        ),
        ("double plus", format!("++{cc}{n}")),
    ];
    if let Some(idd) = idd {
        out.push(("idd", format!("{idd}{cc}{n}")));
        out.push(("idd spaced", format!("{idd} {cc} {}", grouped(n, " "))));
        out.push(("idd trunk", format!("{idd} {cc} {trunk}{n}")));
    }
    // A national part that starts with the calling code: the example with its first digits
    // replaced by the code's (same length), read nationally and with the code.
    let code = cc.to_string();
    if n.len() > code.len() + 2 {
        let starts_with_code = format!("{code}{}", &n[code.len()..]);
        out.push(("national starts with code", starts_with_code.clone()));
        out.push((
            "national starts with code, trunk",
            format!("{np}{starts_with_code}"),
        ));
        out.push((
            "plus, national starts with code",
            format!("+{cc}{starts_with_code}"),
        ));
    }
    out
}

/// Every entry of the metadata. By calling code: the crate's own iterator goes through its
/// index by id, which keeps only one of the non-geographic entities (all "001").
fn all_metadata() -> Vec<&'static Metadata> {
    let mut metas: Vec<&'static Metadata> = Vec::new();
    for code in 1..1000u16 {
        for m in DATABASE.by_code(&code).unwrap_or_default() {
            if !metas.iter().any(|&x| std::ptr::eq(x, m)) {
                metas.push(m);
            }
        }
    }
    metas.sort_by_key(|m| (m.id().to_owned(), m.country_code()));
    metas
}

fn cases() -> Vec<Case> {
    let metas = all_metadata();
    // Countries our normalizer reads phones in (ISO codes with phone metadata).
    let readable: Vec<&'static str> = metas
        .iter()
        .map(|m| m.id())
        .filter(|id| Normalizer::new(id).is_ok())
        .map(|id| &*Box::leak(id.to_owned().into_boxed_str()))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20_251_207);
    let mut out = Vec::new();
    for (i, meta) in metas.iter().enumerate() {
        let cc = meta.country_code();
        let np = meta.national_prefix().unwrap_or("");
        let idd = meta
            .preferred_international_prefix()
            .or(meta.international_prefix().map(|re| re.as_str()))
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
        let own = readable.iter().copied().find(|&r| r == meta.id());
        let other = OTHER_REGIONS[i % OTHER_REGIONS.len()];
        let region = if meta.id() == "001" {
            format!("001/{cc}")
        } else {
            meta.id().to_owned()
        };
        for (k, n) in examples(meta).into_iter().take(3).enumerate() {
            // Every form of the first example; a sample of the others' (enough to see each
            // form in every region across the examples, few enough to run quickly).
            let mut forms = forms(cc, np, idd, cc == 1, &n);
            if k > 0 {
                let keep = 8.min(forms.len());
                for j in 0..keep {
                    let pick = rng.random_range(j..forms.len());
                    forms.swap(j, pick);
                }
                forms.truncate(keep);
            }
            for (form, raw) in forms {
                // In its own region (when it is one we read in), else in another; a country
                // the phone metadata lacks (AQ) leaves only numbers with their country code.
                let country = match (own, rng.random_range(0..10)) {
                    (_, 0) => "AQ",
                    (Some(own), 1..=7) => own,
                    _ => other,
                };
                out.push(Case {
                    raw,
                    country,
                    form,
                    region: region.clone(),
                });
            }
        }
    }
    out
}

#[test]
fn phones_agree_with_libphonenumber_in_every_region() {
    if let Err(why) = python_ready() {
        let msg = format!(
            "python3 with phonenumbers is needed \
             (python3 -m pip install phonenumbers=={METADATA_RELEASE})"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}: {why}");
        }
        eprintln!("SKIPPED: {msg}: {why}");
        return;
    }
    let cases = cases();
    let theirs = oracle(&cases);
    let n = Normalizer::new("US").expect("US");
    let mut wrong = Vec::new();
    let mut wrong_by_form: BTreeMap<&str, usize> = BTreeMap::new();
    let mut valid = 0;
    let mut regions = std::collections::BTreeSet::new();
    for (c, want) in cases.iter().zip(&theirs) {
        regions.insert(c.region.as_str());
        let ours = n.e164(&c.raw, Some(c.country)).ok();
        valid += usize::from(want.is_some());
        if &ours != want {
            *wrong_by_form.entry(c.form).or_default() += 1;
            wrong.push(format!(
                "{} {:?} ({}) read in {}: ours {:?}, libphonenumber {:?}",
                c.region, c.raw, c.form, c.country, ours, want
            ));
        }
    }
    eprintln!(
        "{} inputs from {} regions, {} valid for libphonenumber, {} disagreements",
        cases.len(),
        regions.len(),
        valid,
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{} of {} inputs disagree; by form: {wrong_by_form:?}; first ones:\n{}",
        wrong.len(),
        cases.len(),
        wrong[..wrong.len().min(25)].join("\n")
    );
    // The inputs must reach both answers often, or agreeing proves little.
    assert!(regions.len() >= 250, "only {} regions", regions.len());
    assert!(
        valid * 4 >= cases.len(),
        "only {valid} of {} valid",
        cases.len()
    );
    assert!(
        (cases.len() - valid) * 4 >= cases.len(),
        "only {} of {} invalid",
        cases.len() - valid,
        cases.len()
    );
}
