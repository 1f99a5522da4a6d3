//! libphonenumber's metadata as `phone` reads it: the `phonenumber` crate's copy of
//! `PhoneNumberMetadata.xml`, indexed by region and calling code, each region's patterns
//! compiled once on its first use.
//!
//! Only the data comes from the crate (its version names the metadata release, e.g.
//! `0.3.10+9.0.33`); the rules applied to it are libphonenumber's, which the crate does not
//! follow everywhere. So the XML is read the way libphonenumber's own metadata build reads it
//! (`BuildMetadataFromXml`): the general description's possible lengths are the union of every
//! number type's (the XML gives none for it, and the crate leaves them empty), a missing
//! `nationalPrefixForParsing` is the national prefix, and patterns match whole strings (the
//! crate asks for a match at the start only, which takes a number a digit too long as valid).
//! Patterns stay in memory once a region was seen: ~0.1 MB per region, ~25 MB if all are.

use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input};

/// Longest string a number type is asked about: libphonenumber's longest national number.
pub(crate) const MAX_NSN: usize = 17;
/// Largest calling code (they have at most 3 digits).
const MAX_CODE: usize = 999;
/// `Patterns::set_for_len` entry for lengths no number type allows.
const NO_SET: u8 = u8::MAX;
/// libphonenumber's id of the non-geographic entities (+800, +808, +870, …).
pub(crate) const NON_GEO: &str = "001";

/// Every entry of the metadata, indexed by region id and by calling code.
pub(crate) struct Table {
    regions: Vec<Region>,
    /// Geographic regions by id ("001" is shared by all non-geographic entities).
    by_id: rustc_hash::FxHashMap<&'static str, usize>,
    /// Index = calling code: the entries sharing it, the main country first, then the others
    /// in the XML's order (libphonenumber's `CountryCodeToRegionCodeMap`). Empty: unknown code.
    by_code: Vec<Vec<usize>>,
}

/// One entry of the metadata and, once used, its compiled patterns.
pub(crate) struct Region {
    pub(crate) meta: &'static Metadata,
    /// `None` inside: a pattern did not compile (never with the shipped metadata; a test
    /// checks every region), so the region's numbers are refused rather than guessed.
    compiled: OnceLock<Option<Patterns>>,
}

/// What `libphonenumber`'s `_test_number_length` answers for the general description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// One region's patterns and lengths, as parsing and validating use them.
pub(crate) struct Patterns {
    /// The general description's pattern, matched against whole strings.
    general: meta::Regex,
    /// Possible lengths of the general description: every type's, as a bit set.
    lengths: u64,
    /// Local-only lengths of the general description (those no type has as a full length).
    local_lengths: u64,
    min_length: usize,
    max_length: usize,
    /// The number types libphonenumber's `_number_type_helper` tries (premium rate, toll
    /// free, shared cost, VoIP, personal, pager, UAN, voicemail, fixed line, mobile): any one
    /// matching makes a number valid. A type only counts at its own possible lengths, so
    /// there is one multi-pattern regex per distinct set of types allowed at a length.
    type_sets: Vec<meta::Regex>,
    /// Index into `type_sets` by string length, `NO_SET` when no type allows the length.
    set_for_len: [u8; MAX_NSN + 1],
    /// Matched at the start; `match.end()` is where the country code begins.
    international_prefix: Option<meta::Regex>,
    /// Matched at the start, prefix only (libphonenumber's `re.match`).
    leading_digits: Option<meta::Regex>,
    /// Anchored at the start; its groups feed the transform rule.
    national_prefix_for_parsing: Option<regex::Regex>,
    /// With `${n}` group references.
    transform_rule: Option<String>,
}

/// The whole table, built on first use (regions' patterns compile later, one by one).
pub(crate) static TABLE: LazyLock<Table> = LazyLock::new(Table::build);

impl Table {
    fn build() -> Self {
        let metas = all_metadata();
        let regions: Vec<Region> = metas
            .iter()
            .map(|&meta| Region {
                meta,
                compiled: OnceLock::new(),
            })
            .collect();
        let by_id = metas
            .iter()
            .enumerate()
            .filter(|(_, m)| m.id() != NON_GEO)
            .map(|(i, m)| (m.id(), i))
            .collect();
        let index_of = |m: &Metadata| metas.iter().position(|&x| std::ptr::eq(x, m));
        let mut by_code = vec![Vec::new(); MAX_CODE + 1];
        for (code, slot) in by_code.iter_mut().enumerate() {
            let Ok(code) = u16::try_from(code) else {
                continue;
            };
            // The crate keeps a code's entries as libphonenumber orders them.
            if let Some(entries) = DATABASE.by_code(&code) {
                *slot = entries.into_iter().filter_map(index_of).collect();
            }
        }
        Table {
            regions,
            by_id,
            by_code,
        }
    }

    /// The geographic region with this id (upper case).
    pub(crate) fn by_id(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The entries of a calling code, main country first; empty when the code is unknown.
    pub(crate) fn by_code(&self, code: u16) -> &[usize] {
        self.by_code
            .get(usize::from(code))
            .map_or(&[], Vec::as_slice)
    }

    pub(crate) fn region(&self, index: usize) -> &Region {
        &self.regions[index]
    }

    /// How many entries the table has (regions and non-geographic entities).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.regions.len()
    }

    /// The region's compiled patterns (compiled on first use); `None` if one did not compile.
    pub(crate) fn patterns(&self, index: usize) -> Option<&Patterns> {
        let region = &self.regions[index];
        region
            .compiled
            .get_or_init(|| Patterns::compile(region.meta))
            .as_ref()
    }
}

/// Every entry of the metadata, by id then calling code. Read by calling code: the crate's
/// iterator goes through its index by id, which keeps one of the non-geographic entities
/// (all "001").
pub(crate) fn all_metadata() -> Vec<&'static Metadata> {
    let mut metas: Vec<&'static Metadata> = Vec::new();
    for code in 1..=MAX_CODE {
        let Ok(code) = u16::try_from(code) else {
            continue;
        };
        for m in DATABASE.by_code(&code).unwrap_or_default() {
            if !metas.iter().any(|&x| std::ptr::eq(x, m)) {
                metas.push(m);
            }
        }
    }
    metas.sort_by(|a, b| {
        a.id()
            .cmp(b.id())
            .then(a.country_code().cmp(&b.country_code()))
    });
    metas
}

/// A type's descriptor with its pattern text without whitespace (the XML indents patterns;
/// libphonenumber compares them without it).
fn squeezed(d: &Descriptor) -> String {
    d.national_number()
        .as_str()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn bits(lengths: &[u16]) -> u64 {
    lengths
        .iter()
        .filter(|&&l| l < 64)
        .fold(0, |acc, &l| acc | 1 << l)
}

impl Patterns {
    fn compile(meta: &'static Metadata) -> Option<Self> {
        let d = meta.descriptors();
        // libphonenumber skips mobile when its pattern is the fixed-line one
        // (`same_mobile_and_fixed_line_pattern`).
        let same_mobile = match (d.mobile(), d.fixed_line()) {
            (Some(m), Some(f)) => squeezed(m) == squeezed(f),
            _ => false,
        };
        let types: Vec<&Descriptor> = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile().filter(|_| !same_mobile),
        ]
        .into_iter()
        .flatten()
        .collect();
        // `BuildMetadataFromXml.setPossibleLengthsGeneralDesc`: every description's lengths
        // but "no international dialling"'s; a local-only length that is some type's full
        // length is not local-only for the whole.
        let all: Vec<&Descriptor> = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.emergency(),
            d.voicemail(),
            d.short_code(),
            d.standard_rate(),
            d.carrier(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let lengths = all.iter().fold(0, |acc, t| acc | bits(t.possible_length()));
        let local_lengths = all
            .iter()
            .fold(0, |acc, t| acc | bits(t.possible_local_length()))
            & !lengths;
        if lengths == 0 {
            return None;
        }
        let min_length = lengths.trailing_zeros() as usize;
        let max_length = 63 - lengths.leading_zeros() as usize;

        let mut type_sets = Vec::new();
        let mut masks: Vec<u16> = Vec::new();
        let mut set_for_len = [NO_SET; MAX_NSN + 1];
        for (len, slot) in set_for_len.iter_mut().enumerate() {
            let mask = types
                .iter()
                .enumerate()
                .filter(|(_, t)| length_allowed(t.possible_length(), len))
                .fold(0u16, |m, (i, _)| m | 1 << i);
            if mask == 0 {
                continue;
            }
            let at = match masks.iter().position(|&m| m == mask) {
                Some(at) => at,
                None => {
                    let patterns: Vec<&str> = types
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & 1 << i != 0)
                        .map(|(_, t)| t.national_number().as_str())
                        .collect();
                    type_sets.push(whole(&patterns)?);
                    masks.push(mask);
                    masks.len() - 1
                }
            };
            *slot = u8::try_from(at).ok()?;
        }
        let prefix = |pattern: Option<&str>| match pattern {
            None => Some(None),
            Some(p) => start(p).map(Some),
        };
        let parsing = meta
            .national_prefix_for_parsing()
            .map(|re| re.as_str().to_owned())
            .or_else(|| meta.national_prefix().map(regex::escape))
            .filter(|p| !p.trim().is_empty());
        Some(Patterns {
            general: whole(&[d.general().national_number().as_str()])?,
            lengths,
            local_lengths,
            min_length,
            max_length,
            type_sets,
            set_for_len,
            international_prefix: prefix(meta.international_prefix().map(|re| re.as_str()))?,
            leading_digits: prefix(meta.leading_digits().map(|re| re.as_str()))?,
            national_prefix_for_parsing: match parsing {
                None => None,
                Some(p) => Some(anchored_regex(&p)?),
            },
            transform_rule: meta
                .national_prefix_transform_rule()
                .filter(|r| !r.is_empty())
                .map(braced_groups),
        })
    }

    /// libphonenumber's `_match_national_number(s, general_desc)`: the general pattern
    /// matches the whole string (lengths not checked).
    pub(crate) fn general_match(&self, s: &str) -> bool {
        whole_match(&self.general, s)
    }

    /// libphonenumber's `_number_type_helper(s) != UNKNOWN`: the general description
    /// matches (a possible length and the whole pattern), and so does one of the number types
    /// allowed at this length.
    pub(crate) fn is_typed(&self, s: &str) -> bool {
        let len = s.len();
        if len >= 64 || self.lengths & 1 << len == 0 || !self.general_match(s) {
            return false;
        }
        match self.set_for_len.get(len) {
            Some(&NO_SET) | None => false,
            Some(&i) => whole_match(&self.type_sets[usize::from(i)], s),
        }
    }

    /// libphonenumber's `_test_number_length` for an unknown type: the general description's
    /// lengths.
    pub(crate) fn length(&self, s: &str) -> Length {
        let len = s.len();
        if len < 64 && self.local_lengths & 1 << len != 0 {
            Length::LocalOnly
        } else if len == self.min_length {
            Length::Possible
        } else if len < self.min_length {
            Length::TooShort
        } else if len > self.max_length {
            Length::TooLong
        } else if self.lengths & 1 << len != 0 {
            Length::Possible
        } else {
            Length::Invalid
        }
    }

    /// End of the international dialling prefix when it matches at the first digit.
    pub(crate) fn international_prefix_end(&self, digits: &str) -> Option<usize> {
        let re = self.international_prefix.as_ref()?;
        re.find(Input::new(digits).anchored(Anchored::Yes))
            .map(|m| m.end())
    }

    /// `Some(matched at the start)` if the region has a leading-digits pattern.
    pub(crate) fn leading_digits_match(&self, s: &str) -> Option<bool> {
        self.leading_digits
            .as_ref()
            .map(|re| re.is_match(Input::new(s).anchored(Anchored::Yes)))
    }

    pub(crate) fn national_prefix_for_parsing(&self) -> Option<&regex::Regex> {
        self.national_prefix_for_parsing.as_ref()
    }

    pub(crate) fn transform_rule(&self) -> Option<&str> {
        self.transform_rule.as_deref()
    }
}

/// `possible_length` as `_is_number_matching_desc` reads it: an empty list allows any length.
fn length_allowed(lengths: &[u16], len: usize) -> bool {
    lengths.is_empty() || u16::try_from(len).is_ok_and(|len| lengths.contains(&len))
}

fn whole_match(re: &meta::Regex, s: &str) -> bool {
    re.is_match(Input::new(s).anchored(Anchored::Yes))
}

/// Patterns that must match a whole string: anchored at the start by the search, at the end
/// by `$`. Metadata patterns are written with whitespace for layout (`ignore_whitespace`, as
/// the crate and libphonenumber's build read them). Unicode is off: these patterns only see
/// ASCII digits (`phone` normalizes every digit first), on which `\d` and every class match
/// as with Unicode, and the automata are a fifth of the size.
fn whole(patterns: &[&str]) -> Option<meta::Regex> {
    let wrapped: Vec<String> = patterns.iter().map(|p| format!("(?:{p}\n)$")).collect();
    build(&wrapped)
}

/// A pattern matched at the start only (a prefix).
fn start(pattern: &str) -> Option<meta::Regex> {
    build(&[pattern])
}

fn build<P: AsRef<str>>(patterns: &[P]) -> Option<meta::Regex> {
    meta::Regex::builder()
        .syntax(
            syntax::Config::new()
                .ignore_whitespace(true)
                .unicode(false)
                .utf8(false),
        )
        .build_many(patterns)
        .ok()
}

/// The national prefix for parsing, anchored at the start (libphonenumber `re.match`es it),
/// with capture groups for the transform rule.
fn anchored_regex(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(&format!("^(?:{pattern}\n)"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// A transform rule's `$1` as `${1}`, so a digit after a group reference stays a digit.
fn braced_groups(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len() + 4);
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push_str("${");
            if let Some(d) = chars.next() {
                out.push(d);
            }
            out.push('}');
        } else {
            out.push(c);
        }
    }
    out
}
