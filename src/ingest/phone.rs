//! One raw phone to E.164, as phonenumber 0.3 reads it: the fast path (`phone_fast`) decides
//! the common shapes on precompiled metadata, the crate's own parse decides the rest.
//!
//! The answer is the crate's either way: a number it parses and calls valid gets the crate's
//! E.164 form, anything else is rejected. The tests below check that on generated numbers of
//! every region rather than assume it.

use phonenumber::country::Id as RegionId;
use phonenumber::country::Source;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, PhoneNumber};

use super::phone_fast::{self, Fast};

/// E.164 with `+`, or `None` if the number is not valid. `raw`: trimmed. `region`: `None` for
/// a number written with a leading `+` (read without a region), else the region its national
/// form is read with.
pub(crate) fn e164(raw: &str, region: Option<RegionId>) -> Option<String> {
    match phone_fast::e164(raw, region) {
        Fast::Valid(e164) => Some(e164),
        Fast::Invalid => None,
        Fast::Defer => crate_e164(raw, region),
    }
}

/// The crate's parse, `is_valid` and E.164 format, with the workaround for foreign numbers
/// read under a region (see `reparse_foreign`).
pub(crate) fn crate_e164(raw: &str, region: Option<RegionId>) -> Option<String> {
    let number = match region {
        // The number names its own country; no region may be applied to it.
        None => parse_valid(None, raw)?,
        Some(region) => {
            let first = phonenumber::parse(Some(region), raw).ok()?;
            let own_code = DATABASE.by_id(region.as_ref()).map(|m| m.country_code());
            if Some(first.code().value()) == own_code {
                first.is_valid().then_some(first)?
            } else {
                // Dialled with an international prefix ("011 44 …", "0044 …").
                reparse_foreign(raw, first.code())?
            }
        }
    };
    Some(number.format().mode(Mode::E164).to_string())
}

/// A parse that is also a valid number.
fn parse_valid(region: Option<RegionId>, text: &str) -> Option<PhoneNumber> {
    let number = phonenumber::parse(region, text).ok()?;
    number.is_valid().then_some(number)
}

/// Re-reads a number whose country code differs from the region it was parsed with.
///
/// phonenumber 0.3.10 applies the *given region's* national-prefix rule to the digits after a
/// foreign country code: with region US, "+44 113 243 0987" comes out as "+4432430987" and
/// "+33 1 42 68 53 00" as an invalid number; a wrong but valid result would hash someone else.
/// Parsing without a region uses the number's own metadata. So `+` numbers never get a region
/// (see `identity`'s `e164`; the `Plus` arm here catches "tel:+…"), and for an international
/// dialling prefix ("011 44 …", "0044 …") each digit position is tried as the start of
/// "+<country code>…": exactly one valid reading with the same country code must exist, else
/// the number is rejected rather than guessed.
fn reparse_foreign(raw: &str, code: &phonenumber::country::Code) -> Option<PhoneNumber> {
    let same_code = |n: &PhoneNumber| n.code().value() == code.value();
    match code.source() {
        Source::Plus => parse_valid(None, raw).filter(same_code),
        Source::Idd | Source::Number => {
            let min_skip = usize::from(code.source() == Source::Idd);
            let mut found = None;
            let mut candidate = String::with_capacity(raw.len() + 1);
            for (digits_before, (pos, _)) in raw
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .enumerate()
            {
                if digits_before < min_skip {
                    continue;
                }
                candidate.clear();
                candidate.push('+');
                candidate.push_str(&raw[pos..]);
                if let Some(n) = parse_valid(None, &candidate).filter(same_code) {
                    if found
                        .as_ref()
                        .is_some_and(|f: &PhoneNumber| f.national() != n.national())
                    {
                        return None;
                    }
                    found = Some(n);
                }
            }
            found
        }
        Source::Default => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::phone_patterns::{Code, TABLE};
    use phonenumber::metadata::Metadata;
    use proptest::prelude::*;
    use rand::SeedableRng as _;

    /// Every region of the database, by id (deterministic order).
    fn metas() -> Vec<&'static Metadata> {
        let mut metas: Vec<&'static Metadata> = DATABASE.iter().collect();
        metas.sort_by(|a, b| a.id().cmp(b.id()));
        metas
    }

    fn region(id: &str) -> Option<RegionId> {
        id.parse().ok()
    }

    /// The example national numbers the metadata gives for a region, all types.
    fn examples(meta: &Metadata) -> Vec<String> {
        let d = meta.descriptors();
        let mut out: Vec<String> = [
            Some(d.general()),
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
            d.emergency(),
            d.short_code(),
            d.standard_rate(),
            d.carrier(),
            d.no_international(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|d| d.example().map(str::to_owned))
        .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `digits` split in groups of 3 or 4 by `sep`.
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

    /// Variants of one national number: itself, near misses (a digit more, less, changed).
    fn near_misses(ex: &str, rng: &mut impl rand::Rng) -> Vec<String> {
        let mut out = vec![ex.to_owned()];
        if ex.len() > 1 {
            out.push(ex[..ex.len() - 1].to_owned());
        }
        out.push(format!("{ex}{}", rng.random_range(0..10)));
        let mut changed = ex.as_bytes().to_vec();
        let at = rng.random_range(0..changed.len());
        changed[at] = b'0' + rng.random_range(0..10u8);
        out.push(String::from_utf8(changed).expect("digits"));
        out
    }

    /// Written forms of a number with `+` and its country code.
    fn plus_forms(cc: u16, national_prefix: &str, n: &str) -> Vec<String> {
        let half = n.len() / 2;
        vec![
            format!("+{cc}{n}"),
            format!("+{cc} {n}"),
            format!("+{cc} {}", grouped(n, " ")),
            format!("+{cc}-{}", grouped(n, "-")),
            format!("+{cc}.{}", grouped(n, ".")),
            format!("+{cc}({}){}", &n[..half], &n[half..]),
            format!("+{cc} ({}) {}", &n[..half], grouped(&n[half..], "-")),
            format!("+{cc}/{n}"),
            format!("+{cc}{}/{}", &n[..half], &n[half..]),
            format!("+{cc}-{}/{}", &n[..half], &n[half..]),
            format!("+{cc} (0) {n}"),
            format!("+{cc} 0{n}"),
            format!("+{cc}{national_prefix}{n}"),
            format!("+0{cc}{n}"),
            format!("+{cc}{cc}{n}"),
            format!("+{cc}{n}-"),
            format!("({cc}) {n}"),
        ]
    }

    /// Written forms of a number without `+`: national, with the national prefix, with the
    /// country code, dialled with an international prefix.
    fn national_forms(cc: u16, national_prefix: &str, idd: Option<&str>, n: &str) -> Vec<String> {
        let half = n.len() / 2;
        let mut out = vec![
            n.to_owned(),
            format!("{national_prefix}{n}"),
            format!(
                "({national_prefix}{}) {}",
                &n[..half],
                grouped(&n[half..], "-")
            ),
            format!("{national_prefix}{}", grouped(n, " ")),
            format!("{national_prefix}{}", grouped(n, ".")),
            format!("{national_prefix}{}/{}", &n[..half], &n[half..]),
            grouped(n, "-"),
            format!("{cc}{n}"),
            format!("{cc} {n}"),
            format!("{cc}-{}", grouped(n, "-")),
            format!("{cc}{national_prefix}{n}"),
            format!("00{cc}{n}"),
            format!("011 {cc} {n}"),
            format!("0{n}"),
        ];
        if let Some(idd) = idd {
            out.push(format!("{idd}{cc}{n}"));
            out.push(format!("{idd} {cc} {}", grouped(n, " ")));
            out.push(format!("{idd}0{cc}{n}"));
        }
        out
    }

    /// Checks the fast path against the crate on one input; returns whether it decided.
    fn check(raw: &str, region: Option<RegionId>, mismatches: &mut Vec<String>) -> bool {
        let fast = phone_fast::e164(raw, region);
        if fast == Fast::Defer {
            return false;
        }
        let want = crate_e164(raw, region);
        let got = match fast {
            Fast::Valid(e) => Some(e),
            _ => None,
        };
        if got != want {
            mismatches.push(format!(
                "{raw:?} region {region:?}: fast {got:?}, crate {want:?}"
            ));
        }
        true
    }

    #[test]
    fn every_region_compiles_and_every_code_is_handled() {
        for (i, meta) in metas().iter().enumerate() {
            let index = TABLE.by_id(meta.id()).expect("indexed");
            assert_eq!(TABLE.region(index).meta.id(), meta.id(), "{i}");
            assert!(TABLE.patterns(index).is_some(), "{} compiles", meta.id());
            assert!(
                matches!(TABLE.by_code(meta.country_code()), Code::Regions(_)),
                "{} ({}) handled",
                meta.id(),
                meta.country_code()
            );
        }
    }

    /// Argentina's and Brazil's national mobile forms: "15" after the area code, a carrier
    /// code after the prefix. These reach the crate's national-prefix transform rules, and
    /// its check that a transform does not turn a valid-looking number into an invalid one.
    fn carrier_forms(national_prefix: &str, n: &str) -> Vec<String> {
        let mut out = Vec::new();
        for m in [n, &n[1..]] {
            for k in 2..=4.min(m.len()) {
                out.push(format!("{}15{}", &m[..k], &m[k..]));
                out.push(format!("{national_prefix}{} 15-{}", &m[..k], &m[k..]));
                // Same length, "15" in place of two digits: a fixed line that only looks
                // like a mobile ("11 15xx xxxx" in Buenos Aires).
                if m.len() > k + 2 {
                    out.push(format!("{}15{}", &m[..k], &m[k + 2..]));
                }
            }
        }
        out.push(format!("0 15 {n}"));
        out.push(format!("90 21 {n}"));
        out.push(format!("{national_prefix}21{n}"));
        out
    }

    /// Up to `k` of `forms`, chosen at random.
    fn some(forms: Vec<String>, k: usize, rng: &mut impl rand::Rng) -> Vec<String> {
        let mut forms = forms;
        let mut out = Vec::new();
        while out.len() < k && !forms.is_empty() {
            out.push(forms.swap_remove(rng.random_range(0..forms.len())));
        }
        out
    }

    /// The equivalence the fast path rests on, on generated numbers of every region: the
    /// metadata's example numbers of every type in many written forms (with `+`, national,
    /// national prefix, international prefix, country code written twice, carrier codes) and
    /// near misses (a digit more, less, changed; a sample of the forms for those).
    #[test]
    fn fast_path_agrees_with_the_crate_on_every_region() {
        // Only speed: the crate's 100-entry regex LRU thrashes across regions (recompiling in
        // a debug build); a larger one changes no answer.
        if let Ok(mut cache) = DATABASE.cache().lock() {
            cache.set_capacity(100_000);
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut mismatches = Vec::new();
        let (mut decided, mut total, mut valid) = (0usize, 0usize, 0usize);
        let others = ["US", "GB", "DE", "IT", "AU"].map(|id| region(id).expect("region"));
        for (i, meta) in metas().into_iter().enumerate() {
            let cc = meta.country_code();
            let np = meta.national_prefix().unwrap_or("");
            let idd = meta
                .preferred_international_prefix()
                .or(meta.international_prefix().map(|re| re.as_str()))
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
            // Read with its own region and with one other (some other region's prefixes).
            let regions: Vec<RegionId> = region(meta.id())
                .into_iter()
                .chain([others[i % others.len()]])
                .collect();
            for ex in examples(meta) {
                for (j, n) in near_misses(&ex, &mut rng).into_iter().enumerate() {
                    let k = if j == 0 { usize::MAX } else { 5 };
                    for raw in some(plus_forms(cc, np, &n), k, &mut rng) {
                        total += 1;
                        decided += usize::from(check(&raw, None, &mut mismatches));
                        valid += usize::from(crate_e164(&raw, None).is_some());
                    }
                    let mut national = some(national_forms(cc, np, idd, &n), k, &mut rng);
                    national.extend(some(carrier_forms(np, &n), k, &mut rng));
                    for raw in national {
                        for r in &regions {
                            total += 1;
                            decided += usize::from(check(&raw, Some(*r), &mut mismatches));
                        }
                    }
                }
            }
        }
        assert!(
            mismatches.is_empty(),
            "{} of {decided} decided inputs differ:\n{}",
            mismatches.len(),
            mismatches[..mismatches.len().min(30)].join("\n")
        );
        // The fast path must carry most of the load, or the test proves little.
        assert!(decided * 10 >= total * 8, "decided {decided} of {total}");
        assert!(valid > 2_000, "only {valid} valid plus forms");
    }

    /// Shapes real shop data has, and what goes to the crate instead.
    #[test]
    fn fast_path_decides_common_shapes_and_defers_the_rest() {
        let us = region("US");
        let gb = region("GB");
        for (raw, r, want) in [
            ("+1 (212) 555-0100", None, "+12125550100"),
            ("+12125550100", None, "+12125550100"),
            ("+1-800-555-0100", None, "+18005550100"),
            ("+44 20 7946 0958", None, "+442079460958"),
            ("+44 (0)20 7946 0958", None, "+442079460958"),
            ("+39 06 6982 0000", None, "+390669820000"),
            ("(800) 555-0100", us, "+18005550100"),
            ("1-800-555-0100", us, "+18005550100"),
            ("800.555.0100", us, "+18005550100"),
            ("020 7946 0958", gb, "+442079460958"),
            ("07400 123456", gb, "+447400123456"),
        ] {
            assert_eq!(
                phone_fast::e164(raw, r),
                Fast::Valid(want.to_owned()),
                "{raw}"
            );
        }
        for (raw, r) in [
            ("+1 555 987 6543", None),
            ("+999 123 456 789", None),
            ("(555) 987-6543", us),
        ] {
            assert_eq!(phone_fast::e164(raw, r), Fast::Invalid, "{raw}");
        }
        for (raw, r) in [
            ("++18005550100", None),
            ("tel:+1-800-555-0100", None),
            ("+1 800 555 0100 ext. 12", None),
            ("1-800-FLOWERS", us),
            ("12", us),
            ("011 44 20 7946 0958", us),
        ] {
            assert_eq!(phone_fast::e164(raw, r), Fast::Defer, "{raw}");
        }
    }

    /// Inputs on the edges of the fast path's argument (each names the branch it reaches);
    /// some were found by the property below against deliberately broken versions of it.
    #[test]
    fn edge_cases_agree_with_the_crate() {
        let cases: &[(&str, Option<&str>)] = &[
            // RFC 3966 branch: the digits before the first separator are the country code.
            ("+1-800-555-0100", None),
            ("+44-20-7946-0958", None),
            ("+4420-7946-0958", None),
            ("+1(800)555-0100", None),
            ("+1.800.555.0100", None),
            ("+999-123-456-789", None),
            ("+12 (0)", None),
            ("+3901) 9000", None),
            ("+0464200 (0)00", None),
            ("+0-44-20-7946-0958", None),
            ("+1234-567-8901", None),
            ("+44-20", None),
            // ... and where it does not apply.
            ("+(1)800-555-0100", None),
            ("+1/800/555/0100", None),
            ("+1-800/555-0100", None),
            ("+18005550100-", None),
            // National prefix written after the country code; Italy's leading zero.
            ("+44 (0)20 7946 0958", None),
            ("+39 06 6982 0000", None),
            ("+39 0 6 6982 0000", None),
            // All zeros, too long for a national number.
            ("+1 000 000 0000", None),
            ("+44 00000000000000000000", None),
            ("+1 99999999999999999999", None),
            // International prefix of the region; a 0 after it keeps it.
            ("011 1 212 555 0100", Some("US")),
            ("011 0 212 555 0100", Some("US")),
            ("00514100000 0", Some("GB")),
            ("0044 20 7946 0958", Some("GB")),
            ("1 (0)0000 (0)000", Some("FR")),
            // Country code written without "+".
            ("1 212 555 0100", Some("US")),
            ("44 20 7946 0958", Some("GB")),
            ("33 1 42 68 53 00", Some("FR")),
            // Transform rules: Argentina's "15" mobiles and a fixed line that looks like one.
            ("011 15 2345-6789", Some("AR")),
            ("11 15 2345-6789", Some("AR")),
            ("1115787488", Some("AR")),
            ("0 15 11 98765 4321", Some("BR")),
            ("901504233388442", Some("BR")),
            // NANPA local numbers and other regions sharing +1 and +44.
            ("460 1234", Some("AG")),
            ("268 460 1234", Some("AG")),
            ("+1 268 460 1234", None),
            ("+44 1534 456789", None),
            ("01534 456789", Some("JE")),
            // Too short, two digits.
            ("12", Some("US")),
            ("+12", None),
            ("123", Some("US")),
        ];
        for &(raw, r) in cases {
            let r = r.map(|id| region(id).expect("region"));
            assert_eq!(e164(raw, r), crate_e164(raw, r), "{raw:?} {r:?}");
        }
    }

    fn any_region() -> impl Strategy<Value = Option<RegionId>> {
        prop::sample::select(vec![
            None, // with a leading "+" only, as identity's e164 calls it
            region("US"),
            region("CA"),
            region("AG"),
            region("GB"),
            region("JE"),
            region("DE"),
            region("FR"),
            region("IT"),
            region("VA"),
            region("AR"),
            region("MX"),
            region("BR"),
            region("IN"),
            region("AU"),
            region("NZ"),
            region("JP"),
            region("RU"),
            region("KZ"),
            region("HU"),
            region("CO"),
        ])
    }

    /// A phone-ish string: an optional start (plus, country code, international or national
    /// prefix), then digit groups with separators, sometimes a stray character.
    fn phoneish() -> impl Strategy<Value = String> {
        let start = prop::sample::select(vec![
            "", "", "+", "+1", "+44", "+39", "+7", "+54", "+0", "++", "00", "011", "0", "1", "(",
            "+(", "+ ",
        ]);
        let group = "[0-9]{1,4}";
        let sep = prop::sample::select(vec!["", "", " ", "-", ".", "/", "(", ")", ") ", " (0)"]);
        let tail = prop::sample::select(vec!["", "", "", "-", " ", "x12", ";ext=3", "#", "a"]);
        (start, prop::collection::vec((group, sep), 1..6), tail).prop_map(
            |(start, groups, tail)| {
                let mut s = start.to_owned();
                for (g, sep) in groups {
                    s.push_str(&g);
                    s.push_str(sep);
                }
                s.push_str(tail);
                s
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Whatever the input, `e164` answers what the crate answers.
        #[test]
        fn e164_is_the_crates_answer(raw in phoneish(), r in any_region()) {
            let raw = raw.trim();
            prop_assume!(!raw.is_empty());
            // identity's e164 reads "+" numbers without a region, others with one.
            let r = if raw.starts_with('+') { None } else { r.or(region("US")) };
            prop_assert_eq!(e164(raw, r), crate_e164(raw, r), "{:?} {:?}", raw, r);
        }
    }
}
