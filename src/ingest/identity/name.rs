//! Each network's form of a first or last name: Google's (words kept, title prefixes and
//! suffixes removed) and Meta's (letters only, nothing stripped), for names in any script.

use super::IdentityError;

/// Title prefixes Google says not to include ("such as Mrs."); the list of Google's Java util.
const NAME_PREFIXES: &[&str] = &["mr", "mrs", "ms", "dr"];
/// Suffixes Google says not to include ("such as Jr."); the list of Google's Java util.
const NAME_SUFFIXES: &[&str] = &[
    "jr", "sr", "2nd", "3rd", "ii", "iii", "iv", "v", "vi", "cpa", "dc", "dds", "vm", "jd", "md",
    "phd",
];

/// Google's name form: lowercase, trim, no punctuation, leading title prefixes (`mrs.`, `dr.`)
/// and trailing suffixes (`jr.`, `iii`, `phd`) removed, words joined by one space.
///
/// Google's guide says no prefixes for given names and no suffixes for family names; shop data
/// puts them in either field, so both are stripped from both. A prefix or suffix is only removed
/// while another word remains ("V" or "Md" alone stays a name). Words are split on whitespace and
/// commas ("Smith, Jr."); other punctuation is deleted inside a word ("O'Brien" -> "obrien").
/// Letters of any script, digits and combining marks are kept. Used for the CSV destination.
pub fn google_name(raw: &str) -> Result<String, IdentityError> {
    let lower = raw.to_lowercase();
    let words: Vec<String> = lower
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.chars().filter(|&c| is_name_char(c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    let (mut start, mut end) = (0, words.len());
    while end - start > 1 && NAME_PREFIXES.contains(&words[start].as_str()) {
        start += 1;
    }
    while end - start > 1 && NAME_SUFFIXES.contains(&words[end - 1].as_str()) {
        end -= 1;
    }
    let out = words[start..end].join(" ");
    if out.is_empty() {
        return Err(IdentityError::InvalidName);
    }
    Ok(out)
}

/// Meta's name form: lowercase, no punctuation, no whitespace, no digits; letters of any script
/// kept as UTF-8 (Meta's docs allow them; its SDKs' ASCII-only filter would erase such names).
/// No prefix/suffix stripping: Meta's docs do not ask for it. Used for the CSV destination.
pub fn meta_name(raw: &str) -> Result<String, IdentityError> {
    let out: String = raw
        .to_lowercase()
        .chars()
        .filter(|&c| is_name_char(c) && !c.is_numeric())
        .collect();
    if out.is_empty() {
        return Err(IdentityError::InvalidName);
    }
    Ok(out)
}

/// Letters, digits and combining marks of any script are kept; whitespace, controls, and
/// punctuation, symbols, format and private-use characters are not. Without a Unicode
/// general-category table, non-ASCII punctuation and symbols are recognized by block.
fn is_name_char(c: char) -> bool {
    if c.is_alphanumeric() {
        return true;
    }
    if c.is_ascii() || c.is_whitespace() || c.is_control() {
        return false;
    }
    !matches!(c as u32,
        0x0080..=0x00BF | 0x00D7 | 0x00F7             // Latin-1 punctuation and symbols
        | 0x02B0..=0x02FF                             // spacing modifier symbols (letters kept above)
        | 0x037E | 0x0387                             // Greek question mark, ano teleia
        | 0x055A..=0x055F | 0x0589 | 0x058A           // Armenian
        | 0x05BE | 0x05C0 | 0x05C3 | 0x05C6 | 0x05F3 | 0x05F4 // Hebrew
        | 0x0600..=0x060F | 0x061B..=0x061F | 0x066A..=0x066D | 0x06D4 | 0x06DD | 0x06DE | 0x06E9 // Arabic
        | 0x0964 | 0x0965 | 0x0970                    // Devanagari danda, abbreviation sign
        | 0x0E4F | 0x0E5A | 0x0E5B                    // Thai
        | 0x10FB | 0x1360..=0x1368 | 0x166D | 0x166E | 0x16EB..=0x16ED | 0x1800..=0x180A
        | 0x2000..=0x200B | 0x200E..=0x206F           // general punctuation, keeping ZWNJ/ZWJ
        | 0x2070..=0x2BFF                             // super/subscripts, currency, arrows, math, shapes
        | 0x2E00..=0x2E7F                             // supplemental punctuation
        | 0x3000..=0x3029 | 0x3030..=0x303F           // CJK symbols and punctuation
        | 0x309B | 0x309C | 0x30A0 | 0x30FB           // kana voicing marks, double hyphen, middle dot
        | 0xE000..=0xF8FF                             // private use
        | 0xFD3E | 0xFD3F | 0xFE00..=0xFE1F | 0xFE30..=0xFE6F | 0xFEFF
        | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65 | 0xFFE0..=0xFFFF
        | 0x1D100..=0x1D24F                           // musical symbols
        | 0x1F000..=0x1FBFF                           // emoji, pictographs
        | 0xE0000..=0xE0FFF                           // tags, variation selectors supplement
        | 0xF0000..=0x10FFFF                          // private use planes
    )
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
    fn names_basic() {
        assert_eq!(google_name("  John ").unwrap(), "john");
        assert_eq!(meta_name("  John ").unwrap(), "john");
        assert_eq!(google_name("Mary  Ann").unwrap(), "mary ann");
        assert_eq!(meta_name("Mary  Ann").unwrap(), "maryann");
        assert_eq!(google_name("O'Brien-Smith").unwrap(), "obriensmith");
        assert_eq!(meta_name("O'Brien-Smith").unwrap(), "obriensmith");
        let h = us().first_name("John").unwrap();
        assert_eq!(h.google, sha256("john"));
        assert_eq!(h.meta, sha256("john"));
        assert_eq!(
            us().last_name(" Mary Ann ").unwrap().google,
            sha256("mary ann")
        );
    }

    #[test]
    fn name_prefixes_and_suffixes_google_only() {
        assert_eq!(google_name("Mrs. Mary").unwrap(), "mary");
        assert_eq!(google_name("DR John").unwrap(), "john");
        assert_eq!(google_name("Mr. Dr. John").unwrap(), "john");
        assert_eq!(google_name("Smith Jr.").unwrap(), "smith");
        assert_eq!(google_name("Smith, Jr.").unwrap(), "smith");
        assert_eq!(google_name("Smith,Jr.").unwrap(), "smith");
        assert_eq!(google_name("King III").unwrap(), "king");
        assert_eq!(google_name("Dr. John Smith, Ph.D.").unwrap(), "john smith");
        assert_eq!(google_name("Doe Sr. MD").unwrap(), "doe");
        assert_eq!(google_name("Henry 3rd").unwrap(), "henry");
        // Only at the edges, and never the last word.
        assert_eq!(google_name("Mary Drew").unwrap(), "mary drew");
        assert_eq!(google_name("Ivy Jr Smith").unwrap(), "ivy jr smith");
        assert_eq!(google_name("V").unwrap(), "v");
        assert_eq!(google_name("Md").unwrap(), "md");
        assert_eq!(google_name("Mr.").unwrap(), "mr");
        // Meta's docs ask for no stripping.
        assert_eq!(meta_name("Smith Jr.").unwrap(), "smithjr");
        assert_eq!(meta_name("Mrs. Mary").unwrap(), "mrsmary");
        let h = us().last_name("Smith Jr.").unwrap();
        assert_eq!(h.google, sha256("smith"));
        assert_eq!(h.meta, sha256("smithjr"));
    }

    #[test]
    fn non_ascii_names() {
        assert_eq!(google_name(" José ").unwrap(), "josé");
        assert_eq!(meta_name(" José ").unwrap(), "josé");
        assert_eq!(
            meta_name("Müller-Lüdenscheidt").unwrap(),
            "müllerlüdenscheidt"
        );
        assert_eq!(google_name("ÅSA").unwrap(), "åsa");
        // Final sigma lowercases correctly.
        assert_eq!(meta_name("ΟΔΥΣΣΕΥΣ").unwrap(), "οδυσσευς");
        assert_eq!(meta_name("Ольга").unwrap(), "ольга");
        assert_eq!(meta_name("山田 太郎").unwrap(), "山田太郎");
        assert_eq!(google_name("山田 太郎").unwrap(), "山田 太郎");
        // Katakana middle dot and full-width punctuation are punctuation.
        assert_eq!(meta_name("ジョン・スミス").unwrap(), "ジョンスミス");
        assert_eq!(meta_name("李（小龙）").unwrap(), "李小龙");
        // Combining marks are part of the letters: virama in Hindi, decomposed accents.
        assert_eq!(meta_name("प्रिया").unwrap(), "प्रिया");
        assert_eq!(meta_name("Jose\u{301}").unwrap(), "jose\u{301}");
        assert_eq!(meta_name("محمد").unwrap(), "محمد");
        // Curly apostrophe, emoji, zero-width space go.
        assert_eq!(meta_name("D\u{2019}Angelo\u{200b} 😀").unwrap(), "dangelo");
        let h = us().first_name("José").unwrap();
        assert_eq!(h.google, sha256("josé"));
    }

    #[test]
    fn digits_in_names() {
        assert_eq!(google_name("R2D2").unwrap(), "r2d2");
        assert_eq!(meta_name("R2D2").unwrap(), "rd");
    }

    #[test]
    fn invalid_names() {
        let n = us();
        for raw in ["", "   ", "...", "-", "'", "😀", "、"] {
            assert_eq!(
                n.first_name(raw),
                Err(IdentityError::InvalidName),
                "{raw:?}"
            );
            assert_eq!(n.last_name(raw), Err(IdentityError::InvalidName), "{raw:?}");
        }
        // Google keeps digits, Meta has nothing left: not usable for both.
        assert_eq!(n.first_name("123"), Err(IdentityError::InvalidName));
    }
}
