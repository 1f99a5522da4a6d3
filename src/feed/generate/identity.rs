//! Who a synthetic customer is: names, countries with their postal codes, email addresses
//! and phone numbers in ranges reserved for fiction, and consent.

use rand::seq::IndexedRandom;
use rand::Rng;

use super::{timestamp, Generator};
use crate::proto::v1::{ConsentStatus, CustomerUpserted};

const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Zoë",
    "Jürgen",
    "François",
    "Amélie",
    "Siobhán",
    "Oliver",
    "Amelia",
    "Lukas",
    "Emma",
    "Léa",
    "Hugo",
    "Sophie",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Martin",
    "Bernard",
    "Dubois",
    "Lefèvre",
    "Taylor",
    "Wilson",
    "O'Brien",
    "Evans",
    "Van der Berg",
];

/// Per-country identity material. Phones are in ranges reserved for fiction or otherwise
/// harmless, yet valid for libphonenumber.
struct Country {
    code: &'static str,
    postal_codes: &'static [&'static str],
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        postal_codes: &[
            "10001", "94107", "02139", "60601", "98101", "73301", "33101",
        ],
    },
    Country {
        code: "DE",
        postal_codes: &["10115", "80331", "20095", "50667", "60311"],
    },
    Country {
        code: "GB",
        postal_codes: &["SW1A 1AA", "EC1A 1BB", "M1 1AE", "B33 8TH", "EH1 1YZ"],
    },
    Country {
        code: "FR",
        postal_codes: &["75001", "75011", "69001", "13001", "31000"],
    },
];

/// US area codes that libphonenumber knows (New York, San Francisco, Boston, Chicago, Seattle).
const US_AREA_CODES: &[u32] = &[212, 415, 617, 312, 206];

impl Generator {
    pub(super) fn consent(&mut self, roll: f64) -> (Option<i32>, Option<i32>) {
        let granted = Some(ConsentStatus::Granted as i32);
        let denied = Some(ConsentStatus::Denied as i32);
        let unspecified = Some(ConsentStatus::Unspecified as i32);
        match roll {
            r if r < 0.82 => (granted, granted),
            r if r < 0.88 => (denied, denied),
            r if r < 0.92 => (granted, denied),
            r if r < 0.96 => (None, None),
            _ => (unspecified, unspecified),
        }
    }

    /// Identity fields of a customer; consent and id are filled by the caller.
    pub(super) fn profile(&mut self, index: u64, registered_at: i64) -> CustomerUpserted {
        let country = COUNTRIES.choose(&mut self.rng).unwrap_or(&COUNTRIES[0]);
        let first = *FIRST_NAMES.choose(&mut self.rng).unwrap_or(&"Alex");
        let last = *LAST_NAMES.choose(&mut self.rng).unwrap_or(&"Doe");
        // Rarely no identifier at all: such a customer can be in audiences but never pushed.
        let anonymous = self.rng.random_bool(0.01);
        let email =
            (!anonymous && self.rng.random_bool(0.97)).then(|| self.email(index, first, last));
        let phone = (!anonymous && self.rng.random_bool(0.7)).then(|| self.phone(country.code));
        let named = self.rng.random_bool(0.9);
        let postal_code = self.rng.random_bool(0.85).then(|| {
            country
                .postal_codes
                .choose(&mut self.rng)
                .unwrap_or(&"10001")
                .to_string()
        });
        CustomerUpserted {
            email,
            phone,
            first_name: named.then(|| first.to_owned()),
            last_name: named.then(|| last.to_owned()),
            country: Some(country.code.to_owned()),
            postal_code,
            registered_at: Some(timestamp(registered_at)),
            ..Default::default()
        }
    }

    /// Mostly `user<n>@example.com`; some Gmail addresses with dots, plus tags and capitals, so
    /// normalization before hashing is exercised.
    fn email(&mut self, index: u64, first: &str, last: &str) -> String {
        let ascii = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
        };
        match self.rng.random_range(0..10) {
            0..6 => format!("user{index}@example.com"),
            6 => format!(
                "{}.{}{index}@gmail.com",
                ascii(first).to_lowercase(),
                ascii(last).to_lowercase()
            ),
            7 => format!("{}{index}+shop@gmail.com", ascii(first).to_lowercase()),
            8 => format!("{}.{}+news{index}@GMail.com", ascii(first), ascii(last)),
            _ => format!("User{index}@Example.COM"),
        }
    }

    /// An E.164 number valid for libphonenumber, in fiction-reserved ranges where one exists.
    pub(super) fn phone(&mut self, country: &str) -> String {
        match country {
            // NANP fictional 555-0100..555-0199.
            "US" => {
                let area = US_AREA_CODES.choose(&mut self.rng).copied().unwrap_or(212);
                format!("+1{area}55501{:02}", self.rng.random_range(0..100))
            }
            // Berlin landline.
            "DE" => format!("+4930{:08}", self.rng.random_range(10_000_000..100_000_000)),
            // Ofcom drama range 020 7946 0000..0999.
            "GB" => format!("+44207946{:04}", self.rng.random_range(0..1000)),
            // Arcep fiction range 01 99 00 xx xx.
            _ => format!("+3319900{:04}", self.rng.random_range(0..10_000)),
        }
    }
}
