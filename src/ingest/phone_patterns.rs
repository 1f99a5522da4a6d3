//! phonenumber's own metadata, compiled once per region, for the phone fast path.
//!
//! phonenumber 0.3 runs every metadata pattern through one shared 100-entry LRU (`regex-cache`)
//! that locks a mutex and SipHashes the whole pattern text on each use, and recompiles patterns
//! the LRU evicted; that was most of the cost of a phone. Here a region's patterns are compiled
//! on its first use and kept, so only regions actually seen cost memory. The pattern texts and
//! length lists are read from the crate's database: the rules stay the crate's, only how they
//! are run differs (each difference is argued where it is made, and `phone`'s tests compare the
//! results with the crate's own parse on generated numbers of every region).

use std::sync::{LazyLock, OnceLock};

use phonenumber::country::Id as RegionId;
use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input};

/// Longest string a pattern is asked about: raw phones are at most 64 bytes, and a national
/// prefix transform rule adds at most 4 digits.
const MAX_LEN: usize = 80;
/// Largest calling code (they have at most 3 digits).
const MAX_CODE: usize = 999;
/// `Patterns::set_for_len` entry for lengths no number type allows.
const NO_SET: u8 = u8::MAX;

/// Every region of phonenumber's database, indexed by id and by calling code.
pub(crate) struct Table {
    regions: Vec<Region>,
    by_id: rustc_hash::FxHashMap<&'static str, usize>,
    /// Index = calling code.
    by_code: Vec<Code>,
}

/// What the table knows about a calling code.
#[derive(Clone)]
pub(crate) enum Code {
    /// No region has it: the crate rejects the number.
    Unknown,
    /// Known, but not in a shape this table replicates (see `Table::build`): ask the crate.
    Deferred,
    /// The regions sharing it, in the order the crate tries them.
    Regions(Vec<usize>),
}

/// One region's metadata and, once used, its compiled patterns.
pub(crate) struct Region {
    pub(crate) meta: &'static Metadata,
    /// The crate's `source_for` returns a region only if its id parses as a `country::Id`
    /// (or is "001", the non-geographic entities).
    pub(crate) usable_id: bool,
    /// `None` inside: a pattern failed to compile, so callers leave the number to the crate.
    compiled: OnceLock<Option<Patterns>>,
}

/// The patterns of one region that parsing to E.164 and validating need.
pub(crate) struct Patterns {
    general: Desc,
    /// The number types `number_type` checks after the general pattern (premium rate, toll
    /// free, shared cost, VoIP, personal, pager, UAN, voicemail, fixed line, mobile): any one
    /// matching makes a number valid. Each type only counts at its own possible lengths, so
    /// there is one multi-pattern regex per distinct set of types allowed at a length.
    type_sets: Vec<meta::Regex>,
    /// Index into `type_sets` by string length, `NO_SET` when no type allows the length.
    set_for_len: [u8; MAX_LEN + 1],
    international_prefix: Option<meta::Regex>,
    leading_digits: Option<meta::Regex>,
    /// Kept as the crate's own `regex::Regex` with the crate's options: its find, captures
    /// and replace (with the transform rule) are used exactly as the crate uses them.
    national_prefix_for_parsing: Option<regex::Regex>,
}

/// A descriptor: its possible lengths and its pattern, anchored at the start.
struct Desc {
    lengths: &'static [u16],
    re: meta::Regex,
}

/// The whole table, built on first use (regions' patterns compile later, one by one).
pub(crate) static TABLE: LazyLock<Table> = LazyLock::new(Table::build);

impl Table {
    fn build() -> Self {
        let mut metas: Vec<&'static Metadata> = DATABASE.iter().collect();
        metas.sort_by(|a, b| a.id().cmp(b.id()));
        let regions: Vec<Region> = metas
            .iter()
            .map(|&meta| Region {
                meta,
                usable_id: meta.id() == "001" || meta.id().parse::<RegionId>().is_ok(),
                compiled: OnceLock::new(),
            })
            .collect();
        let by_id: rustc_hash::FxHashMap<&'static str, usize> =
            metas.iter().enumerate().map(|(i, m)| (m.id(), i)).collect();
        let mut by_code = vec![Code::Unknown; MAX_CODE + 1];
        for (code, slot) in by_code.iter_mut().enumerate() {
            let Ok(code) = u16::try_from(code) else {
                continue;
            };
            let (Some(ids), Some(by_code_metas)) =
                (DATABASE.region(&code), DATABASE.by_code(&code))
            else {
                continue;
            };
            *slot = Code::Deferred;
            // The crate picks a code's region from `region` (ids) and its metadata from
            // `by_code`; both keep the same order. A code where they differ, or a region id
            // the crate cannot parse among several (it would panic), stays deferred.
            let indices: Option<Vec<usize>> = ids.iter().map(|id| by_id.get(id).copied()).collect();
            let Some(indices) = indices else { continue };
            let same_order = indices.len() == by_code_metas.len()
                && indices
                    .iter()
                    .zip(&by_code_metas)
                    .all(|(&i, m)| std::ptr::eq(regions[i].meta, *m));
            let parsable = indices.len() == 1 || indices.iter().all(|&i| regions[i].usable_id);
            if same_order && parsable {
                *slot = Code::Regions(indices);
            }
        }
        Table {
            regions,
            by_id,
            by_code,
        }
    }

    /// The region with this id.
    pub(crate) fn by_id(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// What the table knows about a calling code.
    pub(crate) fn by_code(&self, code: u16) -> &Code {
        self.by_code
            .get(usize::from(code))
            .unwrap_or(&Code::Unknown)
    }

    pub(crate) fn region(&self, index: usize) -> &Region {
        &self.regions[index]
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

impl Patterns {
    fn compile(meta: &'static Metadata) -> Option<Self> {
        let d = meta.descriptors();
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
            d.mobile(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut type_sets = Vec::new();
        let mut masks: Vec<u16> = Vec::new();
        let mut set_for_len = [NO_SET; MAX_LEN + 1];
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
                    type_sets.push(build(&patterns)?);
                    masks.push(mask);
                    masks.len() - 1
                }
            };
            *slot = u8::try_from(at).ok()?;
        }
        let optional = |pattern: Option<&str>| match pattern {
            None => Some(None),
            Some(p) => build(&[p]).map(Some),
        };
        Some(Patterns {
            general: Desc {
                lengths: d.general().possible_length(),
                re: build(&[d.general().national_number().as_str()])?,
            },
            type_sets,
            set_for_len,
            international_prefix: optional(meta.international_prefix().map(|re| re.as_str()))?,
            leading_digits: optional(meta.leading_digits().map(|re| re.as_str()))?,
            national_prefix_for_parsing: match meta.national_prefix_for_parsing() {
                None => None,
                Some(re) => Some(crate_regex(re.as_str())?),
            },
        })
    }

    /// The crate's `Descriptor::is_match` on the general descriptor: a possible length (when
    /// the list is not empty) and a match of the pattern starting at the first character.
    pub(crate) fn general_match(&self, s: &str) -> bool {
        length_allowed(self.general.lengths, s.len()) && starts_match(&self.general.re, s)
    }

    /// The crate's `number_type(meta, s) != Type::Unknown`: the general descriptor matches and
    /// so does one of the number types allowed at this length.
    pub(crate) fn is_typed(&self, s: &str) -> bool {
        if !self.general_match(s) {
            return false;
        }
        match self.set_for_len.get(s.len()) {
            Some(&NO_SET) => false,
            Some(&i) => starts_match(&self.type_sets[usize::from(i)], s),
            // Longer than any string a number can give; `MAX_LEN` bounds what callers pass.
            None => false,
        }
    }

    /// End of the international dialling prefix when it matches from the first digit (the
    /// crate's `find` and `start == 0`: the leftmost-first match starting at 0 is the match an
    /// anchored search finds).
    pub(crate) fn international_prefix_end(&self, digits: &str) -> Option<usize> {
        let re = self.international_prefix.as_ref()?;
        re.find(Input::new(digits).anchored(Anchored::Yes))
            .map(|m| m.end())
    }

    /// `Some(matched at the start)` if the region has a leading-digits pattern.
    pub(crate) fn leading_digits_match(&self, s: &str) -> Option<bool> {
        self.leading_digits.as_ref().map(|re| starts_match(re, s))
    }

    pub(crate) fn national_prefix_for_parsing(&self) -> Option<&regex::Regex> {
        self.national_prefix_for_parsing.as_ref()
    }
}

/// `possible_length` as `Descriptor::is_match` reads it: an empty list allows any length.
fn length_allowed(lengths: &[u16], len: usize) -> bool {
    lengths.is_empty() || u16::try_from(len).is_ok_and(|len| lengths.contains(&len))
}

/// True if some pattern matches starting at the first character. The crate asks
/// `find(s).start() == 0`; the leftmost match starts at 0 exactly when some match does.
fn starts_match(re: &meta::Regex, s: &str) -> bool {
    re.is_match(Input::new(s).anchored(Anchored::Yes))
}

/// The crate compiles metadata patterns with `ignore_whitespace` (the XML indents them) and
/// Unicode on. Here Unicode is off: these patterns only ever see ASCII digits (the fast path
/// reads nothing else), on which `\d` and every other class match exactly as with Unicode,
/// and the automata are a fifth of the size (all regions compiled: ~25 MB instead of ~170).
fn build(patterns: &[&str]) -> Option<meta::Regex> {
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

/// A pattern compiled exactly as `regex-cache` compiles it for the crate (its default
/// options plus `ignore_whitespace`).
fn crate_regex(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .ignore_whitespace(true)
        .size_limit(10 * (1 << 20))
        .dfa_size_limit(2 * (1 << 20))
        .build()
        .ok()
}
