//! The shop's schema and its deterministic seed data: the same product and user
//! numbers always get the same names, categories, prices and passwords, so scenarios
//! and tests can rely on them (`Product 123 widget`, `user7` / `pw7`).

use serde::Serialize;

/// Tables for SQLite (`INTEGER PRIMARY KEY` is the row id, so order ids come free).
pub(crate) const SQLITE_SCHEMA: &str = "
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL
);
CREATE TABLE carts (
    user_id INTEGER NOT NULL REFERENCES users (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    qty INTEGER NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER
);
CREATE TABLE order_lines (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    qty INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
";

/// The same tables for PostgreSQL, created inside the instance's own schema (the
/// connections' `search_path`).
pub(crate) const POSTGRES_SCHEMA: &str = "
CREATE TABLE products (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL
);
CREATE TABLE carts (
    user_id BIGINT NOT NULL REFERENCES users (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    qty BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT
);
CREATE TABLE order_lines (
    order_id BIGINT NOT NULL REFERENCES orders (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    qty BIGINT NOT NULL,
    price_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
";

const NOUNS: [&str; 12] = [
    "widget",
    "gadget",
    "gizmo",
    "sprocket",
    "lamp",
    "kettle",
    "backpack",
    "headphones",
    "notebook",
    "mug",
    "chair",
    "blanket",
];

const ADJECTIVES: [&str; 10] = [
    "sturdy", "compact", "deluxe", "classic", "eco", "portable", "vintage", "smart", "handmade",
    "budget",
];

const CATEGORIES: [&str; 8] = [
    "home", "kitchen", "office", "outdoor", "audio", "travel", "toys", "garden",
];

/// A product as listed (catalog pages and search results).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ProductSummary {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub category: String,
}

/// A product in full (the detail page).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Product {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub category: String,
    pub description: String,
}

/// Product number `id` (1-based) as seeded.
pub(crate) fn product(id: u32) -> Product {
    let n = id as usize;
    let noun = NOUNS[n % NOUNS.len()];
    let adjective = ADJECTIVES[(n / NOUNS.len()) % ADJECTIVES.len()];
    let category = CATEGORIES[(n * 7 / 3) % CATEGORIES.len()];
    // A spread of prices from 1.99 to about 999, fixed per id.
    let price_cents = 199 + (u64::from(id) * 7919 % 99_800) as i64;
    Product {
        id: i64::from(id),
        name: format!("Product {id} {noun}"),
        price_cents,
        category: category.to_owned(),
        description: format!(
            "A {adjective} {noun} from our {category} range. Item number {id}, \
             shipped within two days."
        ),
    }
}

/// User number `n` (1-based): its login name and password.
pub(crate) fn user(n: u32) -> (String, String) {
    (format!("user{n}"), format!("pw{n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_data_is_deterministic_and_named_as_documented() {
        let p = product(123);
        assert_eq!(p, product(123));
        assert!(p.name.starts_with("Product 123 "), "{}", p.name);
        assert!(p.price_cents >= 199 && p.price_cents < 199 + 99_800);
        assert!(CATEGORIES.contains(&p.category.as_str()));
        assert_eq!(user(7), ("user7".to_owned(), "pw7".to_owned()));
    }

    #[test]
    fn names_cover_every_noun() {
        for noun in NOUNS {
            assert!(
                (1..=12).any(|id| product(id).name.ends_with(noun)),
                "{noun}"
            );
        }
    }
}
