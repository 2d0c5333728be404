//! The simulated card program: cardholders, their cards, and the merchants they buy from.
//! Everything is drawn from the seed, so the same seed gives the same world.

use cardstream_stripe::{Currency, merchant_categories};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Zipf};

use crate::ids::stripe_id;

#[derive(Debug, Clone)]
pub struct Cardholder {
    pub id: String,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub city: (&'static str, &'static str, &'static str),
    pub created: i64,
}

impl Cardholder {
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    pub fn email(&self) -> String {
        format!(
            "{}.{}@example.com",
            self.first_name.to_lowercase(),
            self.last_name.to_lowercase()
        )
    }
}

#[derive(Debug, Clone)]
pub struct Card {
    pub id: String,
    /// Index into [`World::cardholders`].
    pub cardholder: usize,
    pub currency: Currency,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub physical: bool,
    pub active: bool,
    pub created: i64,
}

#[derive(Debug, Clone)]
pub struct Merchant {
    pub name: String,
    pub category: &'static str,
    pub category_code: &'static str,
    pub network_id: String,
    pub city: (&'static str, &'static str, &'static str),
    /// Median ticket in US cents; amounts are log-normal around it.
    pub median_cents: f64,
}

#[derive(Debug)]
pub struct World {
    pub cardholders: Vec<Cardholder>,
    pub cards: Vec<Card>,
    pub merchants: Vec<Merchant>,
    card_popularity: Zipf<f64>,
    merchant_popularity: Zipf<f64>,
    card_order: Vec<usize>,
}

const FIRST: &[&str] = &[
    "Jenny", "Ahmed", "Sofia", "Kenji", "Maria", "Liam", "Aisha", "Noah", "Elena", "Mateo", "Yuki",
    "Olivia", "Chen", "Amara", "Lucas", "Priya", "Jonas", "Fatima", "Diego", "Hana",
];
const LAST: &[&str] = &[
    "Rosen", "Khan", "Rossi", "Tanaka", "Garcia", "Murphy", "Okafor", "Schmidt", "Novak", "Silva",
    "Sato", "Dubois", "Wang", "Mensah", "Moreau", "Patel", "Berg", "Haddad", "Lopez", "Kim",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("San Francisco", "CA", "US"),
    ("New York", "NY", "US"),
    ("Austin", "TX", "US"),
    ("Chicago", "IL", "US"),
    ("Seattle", "WA", "US"),
    ("London", "", "GB"),
    ("Berlin", "", "DE"),
    ("Paris", "", "FR"),
    ("Tokyo", "", "JP"),
    ("Dublin", "", "IE"),
];
const MERCHANT_WORDS: &[&str] = &[
    "Corner",
    "Blue",
    "Golden",
    "Urban",
    "Harbor",
    "Maple",
    "North",
    "Sunset",
    "Rocket",
    "Green",
    "Silver",
    "Metro",
    "Pioneer",
    "Summit",
    "Riverside",
    "Atlas",
];

/// Categories most card spend goes to, most common first, with a typical ticket in cents.
/// The remaining categories follow in Stripe's order, with a generic ticket.
const POPULAR: &[(&str, f64)] = &[
    ("grocery_stores_supermarkets", 4500.0),
    ("eating_places_restaurants", 3200.0),
    ("fast_food_restaurants", 1200.0),
    ("service_stations", 4800.0),
    ("digital_goods_media", 1500.0),
    ("taxicabs_limousines", 2200.0),
    ("drug_stores_and_pharmacies", 2600.0),
    ("miscellaneous_general_merchandise", 3800.0),
    ("computer_software_stores", 6000.0),
    ("automated_fuel_dispensers", 5000.0),
    ("bakeries", 900.0),
    ("department_stores", 7500.0),
    ("telecommunication_services", 6500.0),
    ("airlines_air_carriers", 42000.0),
    ("hotels_motels_and_resorts", 28000.0),
    ("parking_lots_garages", 1800.0),
    ("electronics_stores", 15000.0),
    ("book_stores", 2500.0),
    ("car_rental_agencies", 21000.0),
    ("utilities", 11000.0),
    ("betting_casino_gambling", 5000.0),
];

/// Card currencies and their share of cards.
const CURRENCIES: &[(Currency, u32)] = &[
    (Currency::USD, 60),
    (Currency::EUR, 20),
    (Currency::GBP, 10),
    (Currency::JPY, 10),
];

impl World {
    pub fn new(rng: &mut ChaCha8Rng, cards: usize, start: i64) -> World {
        let cards = cards.max(1);
        // About one and a half cards per cardholder.
        let holders = cards.div_ceil(3).saturating_mul(2).clamp(1, cards);
        let cardholders: Vec<Cardholder> = (0..holders)
            .map(|i| Cardholder {
                id: stripe_id(rng, "ich"),
                first_name: FIRST[rng.random_range(0..FIRST.len())],
                last_name: LAST[rng.random_range(0..LAST.len())],
                city: CITIES[rng.random_range(0..CITIES.len())],
                created: start - 86_400 + i64::try_from(i).unwrap_or(0),
            })
            .collect();
        let total_weight: u32 = CURRENCIES.iter().map(|(_, w)| w).sum();
        let cards: Vec<Card> = (0..cards)
            .map(|i| {
                // Every cardholder gets a card first; the rest go to random cardholders.
                let cardholder = if i < holders {
                    i
                } else {
                    rng.random_range(0..holders)
                };
                let mut pick = rng.random_range(0..total_weight);
                let currency = CURRENCIES
                    .iter()
                    .find(|(_, w)| {
                        let hit = pick < *w;
                        pick = pick.saturating_sub(*w);
                        hit
                    })
                    .map_or(Currency::USD, |(c, _)| *c);
                Card {
                    id: stripe_id(rng, "ic"),
                    cardholder,
                    currency,
                    last4: format!("{:04}", rng.random_range(0..10_000)),
                    exp_month: rng.random_range(1..=12),
                    exp_year: rng.random_range(2027..=2031),
                    physical: rng.random_bool(0.4),
                    active: true,
                    created: start - 43_200 + i64::try_from(i).unwrap_or(0),
                }
            })
            .collect();

        let mut categories: Vec<(&'static str, f64)> = POPULAR.to_vec();
        let mut rest: Vec<&'static str> = merchant_categories()
            .filter(|c| !POPULAR.iter().any(|(p, _)| p == c))
            .collect();
        rest.shuffle(rng);
        categories.extend(rest.into_iter().map(|c| (c, 3500.0)));
        let category_popularity =
            Zipf::new(categories.len() as f64, 1.1).unwrap_or_else(|_| unreachable!());
        let merchants: Vec<Merchant> = (0..2_000)
            .map(|i| {
                let rank = category_popularity.sample(rng) as usize;
                let (category, median_cents) = categories[rank.clamp(1, categories.len()) - 1];
                let word = MERCHANT_WORDS[rng.random_range(0..MERCHANT_WORDS.len())];
                Merchant {
                    name: format!("{word} {} #{i}", title(category)),
                    category,
                    category_code: category_code(category),
                    network_id: format!("{:010}", rng.random_range(0..10_000_000_000u64)),
                    city: CITIES[rng.random_range(0..CITIES.len())],
                    median_cents,
                }
            })
            .collect();

        let mut card_order: Vec<usize> = (0..cards.len()).collect();
        card_order.shuffle(rng);
        World {
            card_popularity: Zipf::new(cards.len() as f64, 0.8).unwrap_or_else(|_| unreachable!()),
            merchant_popularity: Zipf::new(merchants.len() as f64, 1.0)
                .unwrap_or_else(|_| unreachable!()),
            cardholders,
            cards,
            merchants,
            card_order,
        }
    }

    /// A card, some far busier than others.
    pub fn pick_card(&self, rng: &mut ChaCha8Rng) -> usize {
        let rank = self.card_popularity.sample(rng) as usize;
        self.card_order[rank.clamp(1, self.card_order.len()) - 1]
    }

    pub fn pick_merchant(&self, rng: &mut ChaCha8Rng) -> usize {
        let rank = self.merchant_popularity.sample(rng) as usize;
        rank.clamp(1, self.merchants.len()) - 1
    }

    /// A ticket at `merchant` in the card's currency, in minor units.
    pub fn amount(&self, rng: &mut ChaCha8Rng, merchant: usize, currency: Currency) -> i64 {
        let median = self.merchants[merchant].median_cents;
        let cents = LogNormal::new(median.ln(), 0.7)
            .map_or(median, |d| d.sample(rng))
            .clamp(50.0, 2_000_000.0);
        // Rough exchange rates from US cents to each currency's minor unit.
        let rate = match currency {
            Currency::EUR => 0.92,
            Currency::GBP => 0.79,
            // One cent is about 1.5 yen, and yen have no minor unit.
            Currency::JPY => 1.5,
            _ => 1.0,
        };
        ((cents * rate).round() as i64).max(1)
    }
}

fn title(category: &str) -> String {
    let first = category.split('_').next().unwrap_or(category);
    let mut chars = first.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

/// The ISO 18245 code Stripe shows next to some categories; others get a stable placeholder.
fn category_code(category: &str) -> &'static str {
    match category {
        "grocery_stores_supermarkets" => "5411",
        "eating_places_restaurants" => "5812",
        "fast_food_restaurants" => "5814",
        "service_stations" => "5541",
        "automated_fuel_dispensers" => "5542",
        "taxicabs_limousines" => "4121",
        "drug_stores_and_pharmacies" => "5912",
        "airlines_air_carriers" => "4511",
        "hotels_motels_and_resorts" => "7011",
        "digital_goods_media" => "5815",
        "betting_casino_gambling" => "7995",
        _ => "5999",
    }
}
